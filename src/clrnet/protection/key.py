"""Keyed protection: a secret key selects the patterns.

The public protection draws its ruler phases, its payload carrier, block signs and
pilot positions from fixed seeds, so anyone with the package can compute (and
subtract) them. A key (32 random bytes, ``clrnet keygen``) replaces those seeds by
ones derived from it (BLAKE2b with a label per use), and also whitens the coded
payload bits with a key stream, so without the key neither the ruler nor the pilots
correlate with anything and the payload does not decode: ``inspect`` finds no
protection instead of a wrong box.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_BYTES = 32
_FORMAT = "clrnet-key"


class KeyFileError(ValueError):
    """A key file that cannot be used (missing, malformed): a one-line message."""


@dataclass(frozen=True)
class ProtectionKey:
    """A secret key; ``fingerprint`` names it without revealing it."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise KeyFileError(f"a key holds {KEY_BYTES} bytes, got {len(self.secret)}")

    @property
    def fingerprint(self) -> str:
        return hashlib.blake2b(self.secret, digest_size=8, person=b"clrnet-fp").hexdigest()

    def seed(self, label: str) -> int:
        """A 31-bit seed for one use (``ruler``, ``layout``, ``whiten``)."""
        d = hashlib.blake2b(label.encode(), key=self.secret, digest_size=4, person=b"clrnet-seed").digest()
        return int.from_bytes(d, "little") & 0x7FFFFFFF


def generate_key() -> ProtectionKey:
    """A new random key (the operating system's CSPRNG)."""
    return ProtectionKey(secrets.token_bytes(KEY_BYTES))


def key_json(key: ProtectionKey) -> str:
    return json.dumps({"format": _FORMAT, "version": 1, "secret": key.secret.hex(),
                       "fingerprint": key.fingerprint}, indent=2) + "\n"


def load_key(path: str | Path) -> ProtectionKey:
    """Read a key file written by ``clrnet keygen``; KeyFileError names the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("not a clrnet key file")
        key = ProtectionKey(bytes.fromhex(data["secret"]))
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise KeyFileError(f"{path}: not a usable clrnet key file ({e})") from None
    if data.get("fingerprint") not in (None, key.fingerprint):
        raise KeyFileError(f"{path}: the key does not match its fingerprint (damaged file)")
    return key
