"""AVIF thumbnails without their container: only the AV1 bitstream travels.

An AVIF file from Pillow is about 270 bytes of boxes (file type, item location,
properties) around the AV1 data, and for a small 8-bit 4:2:0 picture every one
of them follows from the picture's width and height and the data's length. So
the payload sends ``width, height`` and the AV1 data (its leading temporal
delimiter, always the same two bytes, dropped too), and the receiver packs the
boxes again. :func:`encode` checks that packing gives Pillow's file back byte for
byte; where it does not (another libavif), it raises, and the caller sends WebP.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, features

_TD = b"\x12\x00"  # the AV1 temporal delimiter OBU every file's data starts with
_AV1C = b"\x81\x00\x0c\x00"  # profile 0, level 2.0, 8 bit, 4:2:0: any picture up to 255 x 255
_NCLX = b"nclx\x00\x01\x00\x0d\x00\x06\x80"  # BT.709 primaries, sRGB transfer, BT.601 matrix, full range
MAX_SIDE = 255  # the width and height travel in one byte each


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, body: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + body)


def pack(width: int, height: int, data: bytes) -> bytes:
    """The AVIF file around ``data`` (an AV1 key frame without its temporal delimiter)."""
    av1 = _TD + data
    ftyp = _box(b"ftyp", b"avif" + b"\x00" * 4 + b"avifmif1miafMA1B")
    hdlr = _full(b"hdlr", b"\x00" * 4 + b"pict" + b"\x00" * 13)
    pitm = _full(b"pitm", struct.pack(">H", 1))
    iinf = _full(b"iinf", struct.pack(">H", 1) + _full(b"infe", struct.pack(">HH", 1, 0) + b"av01Color\x00", 2))
    ipco = _box(b"ipco", _full(b"ispe", struct.pack(">II", width, height))
                + _full(b"pixi", b"\x03\x08\x08\x08") + _box(b"av1C", _AV1C) + _box(b"colr", _NCLX))
    ipma = _full(b"ipma", struct.pack(">IHB", 1, 1, 4) + bytes([0x01, 0x02, 0x83, 0x04]))
    iprp = _box(b"iprp", ipco + ipma)

    def meta(offset: int) -> bytes:
        iloc = _full(b"iloc", b"\x44\x00" + struct.pack(">HHHHII", 1, 1, 0, 1, offset, len(av1)))
        return _full(b"meta", hdlr + pitm + iloc + iinf + iprp)

    head = len(ftyp) + len(meta(0)) + 8  # the data's offset: after ftyp, meta and mdat's header
    return ftyp + meta(head) + _box(b"mdat", av1)


def unpack(avif: bytes) -> bytes:
    """The AV1 data of a file :func:`pack` would rebuild; ValueError otherwise."""
    i = avif.find(b"mdat")
    if i < 4 or avif[i + 4:i + 6] != _TD:
        raise ValueError("not a single-item AVIF file")
    return avif[i + 6:]


def encode(thumb: Image.Image, quality: int, speed: int = 6) -> bytes:
    """``thumb`` as width, height and its AV1 data; ValueError if this Pillow's AVIF
    is not what :func:`pack` rebuilds (the caller then uses another codec)."""
    w, h = thumb.size
    if not features.check("avif"):
        raise ValueError("this Pillow has no AVIF")
    if max(w, h) > MAX_SIDE:
        raise ValueError(f"an AVIF thumbnail is at most {MAX_SIDE} px a side")
    buf = io.BytesIO()
    thumb.convert("RGB").save(buf, format="AVIF", quality=quality, speed=speed)
    whole = buf.getvalue()
    data = unpack(whole)
    if pack(w, h, data) != whole:
        raise ValueError("this Pillow's AVIF container differs from the one rebuilt")
    return bytes([w, h]) + data


def decode(body: bytes) -> Image.Image:
    """Inverse of :func:`encode`; ValueError on a corrupt stream."""
    if len(body) < 3 or body[0] < 1 or body[1] < 1:
        raise ValueError("corrupt thumbnail: too short")
    if not features.check("avif"):
        raise ValueError("the thumbnail is AVIF and this Pillow cannot read it (Pillow >= 11.3 can)")
    try:
        im = Image.open(io.BytesIO(pack(body[0], body[1], body[2:])))
        im.load()
    except Exception as e:  # Pillow raises several types on corrupt data
        raise ValueError(f"corrupt thumbnail: {e}") from None
    if im.size != (body[0], body[1]):
        raise ValueError("corrupt thumbnail: size does not match")
    return im.convert("RGB")
