"""The payload's picture: a thumbnail of the whole photo, as small as the channel needs.

What the cut-away part looked like has to travel inside the photo, so it must be
small. Channels of up to ``TINY_MAX`` bytes (every working frame up to 768 px)
carry a fixed-length grid: the DCT coefficients of a small YCbCr grid of the
photo (:mod:`.grid`), bit-packed to fill the budget exactly, which the recovery
can also hold the reconstruction to (``reconstruction.consistency``). It beats a
WebP thumbnail at these sizes, whose fixed part alone is 36 bytes (a flat 16 x 16
picture, RIFF header dropped). Larger channels carry a WebP or an AVIF thumbnail,
as large as the budget allows, whichever comes closer to the photo. Both are sent
without their containers, which are the same for every file but a few fields:
WebP's 12-byte RIFF header, AVIF's 270 bytes of boxes (:mod:`.avif`). With its
boxes dropped AVIF can come closer than WebP (so both are tried); with them, WebP
had been the best per byte against JPEG, AVIF and JPEG XL. Channels whose WebP
would come out too small carry a raw RGB565 thumbnail.
"""

from __future__ import annotations

import io
import math
import struct
from functools import partial

import numpy as np
from PIL import Image

from clrnet.payload import avif, grid

_RIFF = b"RIFF"
_WEBP = b"WEBP"
QUALITIES = (75, 60, 45, 30, 20, 5)  # WebP qualities tried; the best thumbnail by error is sent
AVIF_QUALITIES = (55, 40, 30, 20, 10, 5)
_REFERENCE_SIDE = 256  # long side at which candidate thumbnails are compared with the photo


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


RAW, WEBP, AVIF = 0, 1, 2  # first byte of a message: how the thumbnail is coded
CODEC_QUALITIES = {WEBP: QUALITIES, AVIF: AVIF_QUALITIES}
TINY_MAX = 128  # budgets up to this many bytes carry the DCT grid (payload/grid.py) instead


def effective_side(message: bytes, thumb: Image.Image) -> float:
    """The long side, in pixels, of the thumbnail ``message`` is worth (its decoded
    ``thumb``'s own for WebP and RGB565; :func:`grid.effective_side` for the grid)."""
    return grid.effective_side(8 * len(message)) if len(message) <= TINY_MAX else float(max(thumb.size))


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


# the thumbnail codecs of the larger budgets: kind, encoder searched with, decoder, longest side,
# encoder of the chosen quality (AVIF: libavif's fast speed 9 searches the quality; the slower
# speed 6 then finds the side, closer to the photo at the same bytes)
CODECS = ((WEBP, encode_webp, decode_webp, 160, None),
          (AVIF, partial(avif.encode, speed=9), avif.decode, avif.MAX_SIDE, partial(avif.encode, speed=6)))


def encode_message(photo: Image.Image, budget: int, frame: tuple[int, int] | None = None) -> bytes:
    """The payload message for ``photo`` in at most ``budget`` bytes: the DCT grid
    (exactly ``budget`` bytes, up to ``TINY_MAX``; planned for ``frame``, the frame's
    size as the decoder will read it, default the photo's), a WebP thumbnail where one
    fits with a long side of at least 8 px, else the largest RGB565 thumbnail that fits."""
    w, h = photo.size
    if budget <= TINY_MAX:
        return grid.encode_grid(photo, budget, frame)
    best = None
    for kind, enc, dec, top, final in CODECS:
        try:
            err, data = encode_thumbnail(photo, budget - 1, enc, dec, max_side=top, qualities=CODEC_QUALITIES[kind],
                                         final=final)
        except ValueError:
            continue
        if max(dec(data).size) >= 8 and (best is None or err < best[0]):
            best = (err, bytes([kind]) + data)
    if best is not None:
        return best[1]
    side = 1
    while True:
        tw, th = thumbnail_size(w, h, side + 1)
        if 1 + 2 + 2 * tw * th > budget or side + 1 > 255:
            break
        side += 1
    tw, th = thumbnail_size(w, h, side) if side > 1 else (1, 1)
    if 3 + 2 * tw * th <= budget:
        return bytes([RAW]) + encode_raw(photo.resize((tw, th), Image.Resampling.BOX))
    raise ValueError(f"no thumbnail fits in {budget} bytes")


def decode_message(message: bytes, budget: int | None = None,
                   frame: tuple[int, int] | None = None) -> Image.Image:
    """Inverse of :func:`encode_message` for a channel of ``budget`` bytes (default:
    the message's length) and a frame of ``frame`` (W, H) pixels (the grid's plan
    depends on it); ValueError on anything malformed."""
    if not message:
        raise ValueError("empty payload")
    budget = len(message) if budget is None else budget
    if budget <= TINY_MAX:
        if len(message) != budget:
            raise ValueError("corrupt thumbnail: wrong length")
        if frame is None:
            raise ValueError("the grid thumbnail needs the frame's size")
        return grid.decode_grid(message, *frame)
    kind, body = message[0], message[1:]
    if kind == WEBP:
        return decode_webp(body)
    if kind == AVIF:
        return avif.decode(body)
    if kind == RAW:
        return decode_raw(body)
    raise ValueError(f"unknown thumbnail format {kind}")


def encode_thumbnail(photo: Image.Image, budget: int, encode=encode_webp, decode=decode_webp, min_side: int = 4,
                     max_side: int = 160, qualities: tuple[int, ...] = QUALITIES,
                     final=None) -> tuple[float, bytes]:
    """The thumbnail of ``photo`` in at most ``budget`` bytes (``encode(thumb,
    quality)``, WebP by default) that, upsampled, comes closest to the photo, and its
    mean squared error.

    For each of ``qualities`` the largest long side (``min_side`` .. ``max_side``)
    that fits is found (:func:`_largest_fitting`); of these candidates (a larger,
    coarser thumbnail or a smaller, finer one) the one with the least squared error
    against the photo (both at ``_REFERENCE_SIDE``) is sent. With ``final`` (a slower,
    better encoder) the search runs on ``encode``, and at the chosen quality the side
    is searched again with ``final``; the better of the two is sent. Raises ValueError
    if not even a ``min_side`` thumbnail fits.
    """
    w, h = photo.size
    top = min(max_side, max(w, h))
    # every side is shrunk from one copy of the photo at 4 x the largest side (a box
    # filter of a box filter): a 12 MP photo is not read again for each side tried
    base = photo.convert("RGB")
    if max(w, h) > 4 * top:
        base = base.resize(thumbnail_size(w, h, 4 * top), Image.Resampling.BOX)
    shrunk: dict[int, Image.Image] = {}  # the qualities' searches visit the same sides
    coded: dict[tuple[int, int, object], bytes] = {}  # and a search asks again for what it was given

    def at(side: int, q: int, coder=encode) -> bytes:
        if side not in shrunk:
            shrunk[side] = base.resize(thumbnail_size(w, h, side), Image.Resampling.BOX)
        if (side, q, coder) not in coded:
            coded[side, q, coder] = coder(shrunk[side], q)
        return coded[side, q, coder]

    if top < min_side or len(at(min_side, qualities[-1])) > budget:
        raise ValueError(f"no thumbnail fits in {budget} bytes")
    ref_size = thumbnail_size(w, h, min(_REFERENCE_SIDE, max(w, h)))
    ref = np.asarray(base.resize(ref_size, Image.Resampling.BOX), dtype=np.float32)

    def error(data: bytes) -> float:
        up = decode(data).resize(ref_size, Image.Resampling.BICUBIC)
        return float(np.mean((np.asarray(up, dtype=np.float32) - ref) ** 2))

    best: tuple[float, bytes, int, int] | None = None  # error, bytes, side, quality
    start = min_side  # a lower quality fits a side at least as large: its search starts there
    for q in qualities:
        if len(at(start, q)) > budget:
            start = min_side
            if len(at(start, q)) > budget:
                continue
        start, data = _largest_fitting(lambda side: at(side, q), start, top, budget)
        err = error(data)
        if best is None or err < best[0]:
            best = (err, data, start, q)
    assert best is not None  # the lowest quality fitted at min_side
    if final is not None:
        side, q = best[2], best[3]
        while side > min_side and len(at(side, q, final)) > budget:
            side -= max(1, side // 24)
        if len(at(side, q, final)) <= budget:
            side, data = _largest_fitting(lambda s: at(s, q, final), side, top, budget)
            err = error(data)
            if err < best[0]:
                best = (err, data, side, q)
    return best[0], best[1]


def _largest_fitting(coded, lo: int, hi: int, budget: int) -> tuple[int, bytes]:
    """The side in ``lo`` .. ``hi`` (``coded(lo)`` fits ``budget``) whose bytes
    ``coded(side)`` fit and lie within 2 % of the largest that does, with those bytes.
    A false-position search on log bytes against log side (the bytes of a picture
    grow about as a power of its side): each step aims where the line through the
    largest fitting side and the smallest failing one meets the budget; every third
    step halves the interval instead, so it never takes much longer than bisection
    and usually takes fewer encodings."""
    data = coded(lo)
    fail: tuple[int, int] | None = None  # (side, bytes) of the smallest side known not to fit
    step = 0
    while hi - lo > lo // 48:
        step += 1
        if step % 3 == 0:
            mid = (lo + hi + 1) // 2
        else:
            slope = 1.6 if fail is None else max(0.3, math.log(fail[1] / len(data)) / math.log(fail[0] / lo))
            mid = min(hi, max(lo + 1, int(lo * (budget / len(data)) ** (1 / slope))))
        got = coded(mid)
        if len(got) <= budget:
            lo, data = mid, got
        else:
            hi, fail = mid - 1, (mid, len(got))
    return lo, data
