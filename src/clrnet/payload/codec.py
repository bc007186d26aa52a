"""The payload's picture: a thumbnail of the whole photo, coded with WebP.

What the cut-away part looked like has to travel inside the photo, so it must be
small: a thumbnail of the whole frame, as large as the channel's byte budget
allows, compressed with a real image codec (lossy WebP through Pillow: the
best PSNR per byte among Pillow's codecs at these sizes, measured against JPEG
and AVIF). The 12-byte RIFF header is the same for every file but its length
field, so it is dropped before sending and rebuilt on receipt. Channels too small for WebP (under about 40 bytes)
carry a raw RGB565 thumbnail of a few pixels instead, and the very smallest (3
bytes) the mean colour.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from PIL import Image

_RIFF = b"RIFF"
_WEBP = b"WEBP"
QUALITIES = (60, 45, 30, 20)


def _strip(webp: bytes) -> bytes:
    if webp[:4] != _RIFF or webp[8:12] != _WEBP:
        raise ValueError("not a WebP stream")
    return webp[12:]


def _unstrip(body: bytes) -> bytes:
    return _RIFF + struct.pack("<I", len(body) + 4) + _WEBP + body


def encode_webp(thumb: Image.Image, quality: int) -> bytes:
    """A thumbnail as headerless lossy WebP bytes."""
    buf = io.BytesIO()
    thumb.convert("RGB").save(buf, format="WEBP", quality=quality, method=6)
    return _strip(buf.getvalue())


def decode_webp(body: bytes) -> Image.Image:
    """Inverse of :func:`encode_webp`; raises ValueError on a corrupt stream."""
    try:
        im = Image.open(io.BytesIO(_unstrip(body)))
        im.load()
    except Exception as e:  # Pillow raises several types on corrupt data
        raise ValueError(f"corrupt thumbnail: {e}") from None
    return im.convert("RGB")


def thumbnail_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    if width >= height:
        return long_side, max(1, round(long_side * height / width))
    return max(1, round(long_side * width / height)), long_side


RAW, WEBP = 0, 1  # first byte of a message: how the thumbnail is coded


def encode_raw(thumb: Image.Image) -> bytes:
    """A very small thumbnail as RGB565: width, height, then 2 bytes per pixel."""
    arr = np.asarray(thumb.convert("RGB"), dtype=np.uint16)
    r, g, b = arr[..., 0] >> 3, arr[..., 1] >> 2, arr[..., 2] >> 3
    packed = ((r << 11) | (g << 5) | b).astype("<u2")
    return bytes([thumb.width, thumb.height]) + packed.tobytes()


def decode_raw(body: bytes) -> Image.Image:
    if len(body) < 2:
        raise ValueError("corrupt thumbnail: too short")
    w, h = body[0], body[1]
    if w < 1 or h < 1 or len(body) != 2 + 2 * w * h:
        raise ValueError("corrupt thumbnail: size does not match")
    v = np.frombuffer(body[2:], dtype="<u2").reshape(h, w).astype(np.uint32)
    r, g, b = (v >> 11) & 31, (v >> 5) & 63, v & 31
    rgb = np.stack([(r * 255 + 15) // 31, (g * 255 + 31) // 63, (b * 255 + 15) // 31], -1).astype(np.uint8)
    return Image.fromarray(rgb)


def encode_message(photo: Image.Image, budget: int) -> bytes:
    """The payload message for ``photo`` in at most ``budget`` bytes: a WebP
    thumbnail where one fits with a long side of at least 8 px, else the largest
    RGB565 thumbnail that fits (very small channels)."""
    w, h = photo.size
    try:
        webp = encode_thumbnail(photo, budget - 1)
        if max(decode_webp(webp).size) >= 8:
            return bytes([WEBP]) + webp
    except ValueError:
        pass
    side = 1
    while True:
        tw, th = thumbnail_size(w, h, side + 1)
        if 1 + 2 + 2 * tw * th > budget or side + 1 > 255:
            break
        side += 1
    tw, th = thumbnail_size(w, h, side) if side > 1 else (1, 1)
    if 3 + 2 * tw * th <= budget:
        return bytes([RAW]) + encode_raw(photo.resize((tw, th), Image.Resampling.BOX))
    if budget >= 3:  # the smallest channels: the mean colour alone, 3 bytes
        return bytes(np.asarray(photo.convert("RGB").resize((1, 1), Image.Resampling.BOX)).reshape(3).tolist())
    raise ValueError(f"no thumbnail fits in {budget} bytes")


def decode_message(message: bytes) -> Image.Image:
    """Inverse of :func:`encode_message`; ValueError on anything malformed."""
    if not message:
        raise ValueError("empty payload")
    if len(message) == 3:  # the mean colour
        return Image.fromarray(np.frombuffer(message, dtype=np.uint8).reshape(1, 1, 3).copy())
    kind, body = message[0], message[1:]
    if kind == WEBP:
        return decode_webp(body)
    if kind == RAW:
        return decode_raw(body)
    raise ValueError(f"unknown thumbnail format {kind}")


def encode_thumbnail(photo: Image.Image, budget: int, min_side: int = 4, max_side: int = 160) -> bytes:
    """The largest thumbnail of ``photo`` whose WebP fits in ``budget`` bytes.

    Finds the largest long side (``min_side`` .. ``max_side``) that fits at the
    lowest of ``QUALITIES`` by bisection, then the highest quality that still
    fits at that side: a larger, coarser thumbnail beats a smaller, finer one.
    Raises ValueError if not even a ``min_side`` thumbnail fits.
    """
    w, h = photo.size
    top = min(max_side, max(w, h))

    def at(side: int, q: int) -> bytes:
        return encode_webp(photo.resize(thumbnail_size(w, h, side), Image.Resampling.BOX), q)

    if top < min_side or len(at(min_side, QUALITIES[-1])) > budget:
        raise ValueError(f"no thumbnail fits in {budget} bytes")
    lo, hi = min_side, top  # lo fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(at(mid, QUALITIES[-1])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    for q in QUALITIES:
        data = at(lo, q)
        if len(data) <= budget:
            return data
    raise AssertionError("unreachable: the lowest quality fitted")
