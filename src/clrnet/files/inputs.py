"""Turning what a user types (files, folders, globs) into a list of photos.

Each photo keeps a *relative name*: its path under the folder it was found in
(or its file name), which names its outputs, so a folder's structure is kept in
the output folder.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm",
                  ".pgm", ".pnm"}
GLOB_CHARS = set("*?[")


class InputPatternError(ValueError):
    """An input that names no photo (no such file, an empty folder, a glob matching nothing)."""


@dataclass(frozen=True)
class InputPhoto:
    path: Path
    relative: Path  # names the outputs: OUTDIR / relative


def is_pattern(text: str) -> bool:
    return any(c in GLOB_CHARS for c in text) and not Path(text).exists()


def _folder(folder: Path, recursive: bool) -> list[InputPhoto]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return [InputPhoto(p, p.relative_to(folder)) for p in sorted(found)
            if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".")]


def expand_inputs(inputs: Iterable[str | Path], recursive: bool = False) -> list[InputPhoto]:
    """Files as given, folders' photos (``recursive``: and their subfolders'), globs' matches.

    Raises InputPatternError naming the first input that yields no photo; a
    photo named twice is listed once.
    """
    photos: list[InputPhoto] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if is_pattern(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=recursive))
            found = [InputPhoto(p, Path(p.name)) for p in matches
                     if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES]
            if not found:
                raise InputPatternError(f"{text}: no photo matches this pattern")
        elif path.is_dir():
            found = _folder(path, recursive)
            if not found:
                hint = "" if recursive else " (use --recursive for its subfolders)"
                raise InputPatternError(f"{path}: folder holds no photo{hint}")
        elif path.exists():
            found = [InputPhoto(path, Path(path.name))]
        else:
            raise InputPatternError(f"{path}: no such file or folder")
        photos.extend(found)
    seen: set[Path] = set()
    unique = []
    for p in photos:
        key = p.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def is_batch(inputs: list[str | Path]) -> bool:
    """One existing file is a single job; anything else (several, a folder, a glob) a batch."""
    return len(inputs) != 1 or Path(inputs[0]).is_dir() or is_pattern(str(inputs[0]))
