"""Keyed protection: a secret key selects the patterns.

The public protection draws its ruler phases, its payload carrier, block signs and
pilot positions from fixed seeds, so anyone with the package can compute (and
subtract) them. A key (32 random bytes, ``clrnet keygen``) replaces those seeds by
ones derived from it (BLAKE2b with a label per use), and also whitens the coded
payload bits with a key stream, so without the key neither the ruler nor the pilots
correlate with anything and the payload does not decode: ``inspect`` finds no
protection instead of a wrong box.

A key also has ``variants``: that many pattern sets derived from it, one chosen for
each photo from its content (keyed, so nobody without the key can tell which photos
share one). Averaging photos of one key (Yang et al., NeurIPS 2024) then averages
different patterns, and subtracting that mixture leaves most of each photo's own;
an attacker has to sort the photos by variant first. The reader tries every
variant, so reading a photo that carries none of them takes ``variants`` times as
long. Key files written before variants existed have one.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_BYTES = 32
_FORMAT = "clrnet-key"
DEFAULT_VARIANTS = 4  # a new key's pattern sets (clrnet keygen --variants)
MAX_VARIANTS = 16


class KeyFileError(ValueError):
    """A key file that cannot be used (missing, malformed): a one-line message."""


@dataclass(frozen=True)
class ProtectionKey:
    """A secret key; ``fingerprint`` names it without revealing it."""

    secret: bytes
    variants: int = 1  # pattern sets derived from it, one per photo (chosen by ``variant_of``)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise KeyFileError(f"a key holds {KEY_BYTES} bytes, got {len(self.secret)}")
        if not isinstance(self.variants, int) or not 1 <= self.variants <= MAX_VARIANTS:
            raise KeyFileError(f"a key has 1 to {MAX_VARIANTS} variants, got {self.variants!r}")

    @property
    def fingerprint(self) -> str:
        return hashlib.blake2b(self.secret, digest_size=8, person=b"clrnet-fp").hexdigest()

    def seed(self, label: str) -> int:
        """A 31-bit seed for one use (``ruler``, ``layout``, ``whiten``, ``core``)."""
        d = hashlib.blake2b(label.encode(), key=self.secret, digest_size=4, person=b"clrnet-seed").digest()
        return int.from_bytes(d, "little") & 0x7FFFFFFF

    def variant(self, v: int) -> "ProtectionKey":
        """The key of pattern set ``v`` (a key of one variant is its own only one)."""
        if self.variants == 1:
            return self
        d = hashlib.blake2b(v.to_bytes(2, "little"), key=self.secret, digest_size=KEY_BYTES, person=b"clrnet-var")
        return ProtectionKey(d.digest())

    def variant_of(self, content: bytes) -> int:
        """Which pattern set protects the photo whose pixels are ``content``: a keyed hash,
        so the same photo always gets the same one and without the key it looks random."""
        d = hashlib.blake2b(content, key=self.secret, digest_size=8, person=b"clrnet-pick").digest()
        return int.from_bytes(d, "little") % self.variants


def generate_key(variants: int = DEFAULT_VARIANTS) -> ProtectionKey:
    """A new random key (the operating system's CSPRNG) with ``variants`` pattern sets."""
    return ProtectionKey(secrets.token_bytes(KEY_BYTES), variants)


def key_json(key: ProtectionKey) -> str:
    return json.dumps({"format": _FORMAT, "version": 1, "secret": key.secret.hex(), "variants": key.variants,
                       "fingerprint": key.fingerprint}, indent=2) + "\n"


def load_key(path: str | Path) -> ProtectionKey:
    """Read a key file written by ``clrnet keygen``; KeyFileError names the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("not a clrnet key file")
        key = ProtectionKey(bytes.fromhex(data["secret"]), data.get("variants", 1))
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise KeyFileError(f"{path}: not a usable clrnet key file ({e})") from None
    if data.get("fingerprint") not in (None, key.fingerprint):
        raise KeyFileError(f"{path}: the key does not match its fingerprint (damaged file)")
    return key
