"""Output formats of a protected photo: the input's own format unless asked otherwise.

JPEG is written at quality 95 with 4:4:4 chroma (no colour subsampling), WebP
lossless when the input was lossless and at quality 95 otherwise, PNG, and TIFF
uncompressed (Pillow's own TIFF writer: the only one that writes EXIF's
sub-directories). Any other input (BMP, GIF, PPM, ...) becomes PNG. The
protection survives each of these (``clrnet eval --formats`` measures it); a
lossy format below :data:`SAFE_QUALITY` weakens it and gets a warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from clrnet.files.imageio import save_atomic
from clrnet.files.metadata import PhotoMetadata, save_params, unsupported

FORMAT_NAMES = ("jpeg", "webp", "png", "tiff")
SUFFIXES = {"jpeg": ".jpg", "webp": ".webp", "png": ".png", "tiff": ".tif"}
INPUT_SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg", ".webp": "webp",
                  ".png": "png", ".tif": "tiff", ".tiff": "tiff"}
DEFAULT_QUALITY = 95
# below this JPEG / WebP quality the protection measurably weakens (`clrnet eval --formats`, README)
SAFE_QUALITY = 90


@dataclass(frozen=True)
class OutputFormat:
    """A container and its quality (``None``: lossless)."""

    name: str
    quality: int | None = None

    def __post_init__(self) -> None:
        if self.name not in FORMAT_NAMES:
            raise ValueError(f"unknown format {self.name!r}; choose from: {', '.join(FORMAT_NAMES)}")
        if self.quality is not None:
            if self.name not in ("jpeg", "webp"):
                raise ValueError(f"a quality applies to jpeg and webp only, not {self.name}")
            if not 1 <= self.quality <= 100:
                raise ValueError(f"quality {self.quality}: expected 1-100")
        elif self.name == "jpeg":
            object.__setattr__(self, "quality", DEFAULT_QUALITY)

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.name]

    @property
    def lossless(self) -> bool:
        return self.quality is None

    @property
    def label(self) -> str:
        if self.name == "jpeg":
            return f"JPEG {self.quality} (4:4:4)"
        if self.name == "webp":
            return "WebP lossless" if self.lossless else f"WebP {self.quality}"
        return {"png": "PNG", "tiff": "TIFF"}[self.name]

    def pillow_params(self) -> dict:
        if self.name == "jpeg":
            return {"format": "JPEG", "quality": self.quality, "subsampling": 0, "optimize": True}
        if self.name == "webp":
            if self.lossless:
                return {"format": "WEBP", "lossless": True, "quality": 80, "method": 4}
            return {"format": "WEBP", "quality": self.quality, "method": 6}
        if self.name == "png":
            return {"format": "PNG", "compress_level": 6}
        return {"format": "TIFF", "compression": "raw"}

    def warning(self) -> str | None:
        """Why this format weakens the protection, if it does."""
        if self.quality is not None and self.quality < SAFE_QUALITY:
            return (f"{self.label} weakens the protection (measured by `clrnet eval --formats`); "
                    f"use quality {SAFE_QUALITY} or more, or a lossless format")
        return None


def webp_is_lossless(path: str | Path) -> bool:
    """Whether a WebP file holds a lossless (VP8L) bitstream."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            return False
        while chunk := f.read(8):
            if len(chunk) < 8:
                return False
            kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if kind in (b"VP8L", b"VP8 "):
                return kind == b"VP8L"
            f.seek(size + (size & 1), os.SEEK_CUR)
    return False


def format_of_input(path: str | Path) -> OutputFormat:
    """The format a protected copy of ``path`` takes by default (its own)."""
    name = INPUT_SUFFIXES.get(Path(path).suffix.lower(), "png")
    if name == "webp":
        return OutputFormat("webp", None if webp_is_lossless(path) else DEFAULT_QUALITY)
    return OutputFormat(name)


def choose_format(path: str | Path, name: str | None = None, quality: int | None = None) -> OutputFormat:
    """``--format`` / ``--quality`` if given, else the input's own format."""
    if name is None:
        fmt = format_of_input(path)
        if quality is None:
            return fmt
        return OutputFormat(fmt.name, quality) if fmt.name in ("jpeg", "webp") else fmt
    name = {"jpg": "jpeg", "tif": "tiff"}.get(name.lower(), name.lower())
    return OutputFormat(name, quality)


def format_of_output(path: str | Path, quality: int | None = None) -> OutputFormat:
    """The format an explicit output file name asks for (its suffix)."""
    name = INPUT_SUFFIXES.get(Path(path).suffix.lower())
    if name is None:
        raise ValueError(f"{path}: unknown output format (use .jpg, .webp, .png or .tif)")
    return OutputFormat(name, quality)


def save_photo(image: Image.Image, path: str | Path, fmt: OutputFormat,
               metadata: PhotoMetadata | None = None, replace: bool = True) -> list[str]:
    """Write ``image`` atomically in ``fmt`` with ``metadata``; returns warnings. With
    ``replace=False`` an existing file is never overwritten (``OutputExistsError``)."""
    warnings = []
    params = fmt.pillow_params()
    if metadata is not None:
        params.update(save_params(metadata, fmt.name))
        lost = unsupported(metadata, fmt.name)
        if lost:
            warnings.append(f"{fmt.label} cannot carry {', '.join(lost)}: not kept")
        warnings.extend(metadata.notes)
    if (w := fmt.warning()) is not None:
        warnings.append(w)
    save_atomic(image, path, replace=replace, **params)
    return warnings
