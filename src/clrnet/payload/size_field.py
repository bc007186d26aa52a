"""The size field: the working frame's exact size (2 bytes) or its shape (1 byte) at the
head of the payload, so the reader need not trust the ruler for the frame's shape."""

from __future__ import annotations

import struct

SIZE_FIELD_MIN = 16  # message bytes from which the payload carries the frame's exact size (2 bytes);
# smaller ones carry it to 1/127 of the long side in 1 byte: the ruler alone misreads the
# frame's shape when an earlier protection lies beneath


def size_field_bytes(message_bytes: int) -> int:
    return 2 if message_bytes >= SIZE_FIELD_MIN else 1


def pack_size(width: int, height: int) -> bytes:
    """The working frame's size in 2 bytes (the level, its long side, is known to the
    decoder): the short side, and whether the frame is portrait in the top bit."""
    return struct.pack("<H", min(width, height) | (0x8000 if height > width else 0))


def pack_size_short(width: int, height: int) -> bytes:
    """The frame's shape in 1 byte: portrait in the top bit, short / long side in 7 bits."""
    ratio = max(1, round(127 * min(width, height) / max(width, height)))
    return bytes([ratio | (0x80 if height > width else 0)])


def unpack_size(data: bytes, level: int) -> tuple[int, int]:
    """Inverse of :func:`pack_size` (2 bytes) or :func:`pack_size_short` (1 byte)."""
    if len(data) == 1:
        ratio = data[0] & 0x7F
        if ratio == 0:
            raise ValueError("bad frame size")
        short = max(1, min(level, round(level * ratio / 127)))
        return (short, level) if data[0] & 0x80 else (level, short)
    (v,) = struct.unpack("<H", data[:2])
    short = v & 0x7FFF
    if not 1 <= short <= level:
        raise ValueError("bad frame size")
    return (short, level) if v & 0x8000 else (level, short)
