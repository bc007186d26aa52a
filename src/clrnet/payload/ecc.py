"""Error correction and framing of the payload: Reed-Solomon (reedsolo) with a CRC.

The channel delivers a fixed number of bytes per working frame, some of them
wrong (JPEG, blur) and some unobserved (a thin crop may miss a few positions of
every tile). ``frame`` adds a length and a CRC-16 to the message, pads it to
the capacity and appends Reed-Solomon parity; ``unframe`` corrects errors and
erasures and returns the message only if the CRC holds, so a wrong decode (or a
wrong guess of the working frame) is rejected instead of painted.
"""

from __future__ import annotations

import binascii
import math
import struct
from dataclasses import dataclass

from reedsolo import ReedSolomonError, RSCodec

HEADER = 2  # message length
TRAILER = 2  # CRC-16 (CCITT): the Reed-Solomon decoder rejects most bad blocks first


@dataclass(frozen=True)
class Plan:
    """How ``coded`` channel bytes are split into chunks of data + parity."""

    coded: int
    chunks: int
    nsym: int

    @property
    def data(self) -> int:
        """Data bytes carried (before framing)."""
        return self.coded - self.chunks * self.nsym

    @property
    def message(self) -> int:
        """Largest message (after framing)."""
        return self.data - HEADER - TRAILER

    def codec(self) -> RSCodec:
        return RSCodec(self.nsym, nsize=math.ceil(self.coded / self.chunks))


def plan(coded: int, parity: float) -> Plan:
    """Split ``coded`` bytes into Reed-Solomon chunks (at most 255 bytes) with a
    ``parity`` fraction of parity bytes (even per chunk)."""
    if coded < 8:
        raise ValueError(f"channel too small: {coded} bytes")
    chunks = math.ceil(coded / 255)
    per_chunk = math.ceil(coded / chunks)
    nsym = max(2, 2 * round(parity * per_chunk / 2))
    return Plan(coded, chunks, nsym)


def frame(message: bytes, p: Plan) -> bytes:
    """Length + message + CRC, zero-padded to the plan's data size, plus parity."""
    if len(message) > p.message:
        raise ValueError(f"message of {len(message)} bytes exceeds the capacity of {p.message}")
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
