"""Error correction and framing of the payload: Reed-Solomon (reedsolo) with a CRC.

The channel delivers a fixed number of bytes per working frame, some of them
wrong (JPEG, blur) and some unobserved (a thin crop may miss a few positions of
every tile). ``frame`` adds a length and a CRC-16 to the message, pads it to
the capacity and appends Reed-Solomon parity; ``unframe`` corrects errors and
erasures and returns the message only if the CRC holds, so a wrong decode (or a
wrong guess of the working frame) is rejected instead of painted.

Short channels (at most ``SHORT_MAX`` coded bytes: every working frame up to
768 px) cannot afford that framing: at 256 px it took 6 of 9 bytes, and at
768 px Reed-Solomon's parity, length and CRC-16 took 16 of 100. There the
message has a fixed length (the capacity) and only a 24-bit CRC follows it; the
inner convolutional code does all the correcting, its list decoder offering the
CRC its best candidates in turn (``inner.decode_list``), and the CRC rejects
what it could not correct (a random word passes once in 16 million tries).
"""

from __future__ import annotations

import binascii
import math
import struct
import zlib
from dataclasses import dataclass

from reedsolo import ReedSolomonError, RSCodec

HEADER = 2  # message length
TRAILER = 2  # CRC-16 (CCITT): the Reed-Solomon decoder rejects most bad blocks first
SHORT_MAX = 128  # channels of at most this many bytes are framed short: message + CRC-24
SHORT_CRC = 3


@dataclass(frozen=True)
class Plan:
    """How ``coded`` channel bytes are split into chunks of data + parity."""

    coded: int
    chunks: int
    nsym: int

    @property
    def short(self) -> bool:
        """Framed short: a message of exactly ``message`` bytes + CRC-24, no Reed-Solomon."""
        return self.chunks == 0

    @property
    def data(self) -> int:
        """Data bytes carried (before framing)."""
        return self.coded - self.chunks * self.nsym

    @property
    def message(self) -> int:
        """Largest message (after framing); in a short plan, the only message length."""
        return self.coded - SHORT_CRC if self.short else self.data - HEADER - TRAILER

    def codec(self) -> RSCodec:
        return RSCodec(self.nsym, nsize=math.ceil(self.coded / self.chunks))


def plan(coded: int, parity: float, short_max: int = SHORT_MAX) -> Plan:
    """Split ``coded`` bytes into Reed-Solomon chunks (at most 255 bytes) with a
    ``parity`` fraction of parity bytes (even per chunk); up to ``short_max``
    bytes, a short plan (no Reed-Solomon)."""
    if coded < 6:
        raise ValueError(f"channel too small: {coded} bytes")
    if coded <= short_max:
        return Plan(coded, 0, 0)
    if coded < 8:
        raise ValueError(f"channel too small for Reed-Solomon: {coded} bytes")
    chunks = math.ceil(coded / 255)
    per_chunk = math.ceil(coded / chunks)
    nsym = max(2, 2 * round(parity * per_chunk / 2))
    return Plan(coded, chunks, nsym)


def frame(message: bytes, p: Plan) -> bytes:
    """Length + message + CRC, zero-padded to the plan's data size, plus parity."""
    if len(message) > p.message:
        raise ValueError(f"message of {len(message)} bytes exceeds the capacity of {p.message}")
    if p.short:
        if len(message) != p.message:
            raise ValueError(f"a short plan carries exactly {p.message} bytes, got {len(message)}")
        return message + _crc24(message)
    body = struct.pack("<H", len(message)) + message
    body += struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))
    body += bytes(p.data - len(body))
    coded = bytes(p.codec().encode(body))
    assert len(coded) == p.coded
    return coded


def unframe(coded: bytes, p: Plan, erasures: list[int] | None = None) -> bytes | None:
    """The message, or None if the errors exceed the code or the CRC fails."""
    if len(coded) != p.coded:
        raise ValueError(f"expected {p.coded} coded bytes, got {len(coded)}")
    if p.short:
        message = coded[:p.message]
        return message if _crc24(message) == coded[p.message:] else None
    try:
        body = bytes(p.codec().decode(bytearray(coded), erase_pos=erasures or None)[0])
    except (ReedSolomonError, ValueError, IndexError, ZeroDivisionError):
        return None
    (n,) = struct.unpack("<H", body[:HEADER])
    if HEADER + n + TRAILER > len(body):
        return None
    (crc,) = struct.unpack("<H", body[HEADER + n:HEADER + n + TRAILER])
    if binascii.crc_hqx(body[:HEADER + n], 0xFFFF) != crc:
        return None
    return body[HEADER:HEADER + n]


def _crc24(data: bytes) -> bytes:
    """24 bits of zlib's CRC-32 of ``data``."""
    return struct.pack("<I", zlib.crc32(data))[:SHORT_CRC]
