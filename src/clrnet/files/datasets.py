"""The shared datasets: where they are ($CLRNET_DATA), the images of a folder, and photos brought
to a size (square, long x short, or native)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from clrnet.core.geometry import resize
from clrnet.core.image import pil_to_tensor

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


DATA_ENV = "CLRNET_DATA"


def default_data_root() -> Path:
    """``$CLRNET_DATA`` or ``../shared/datasets`` beside the working directory."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    for base in (Path.cwd(), *Path.cwd().parents):
        cand = base / "shared" / "datasets"
        if cand.is_dir():
            return cand
        cand = base.parent / "shared" / "datasets"
        if cand.is_dir():
            return cand
    return Path("../shared/datasets")


def list_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder``, sorted, recursively."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of photos")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def load_square(path: str | Path, size: int) -> Tensor:
    """A whole photo brought to the native ``size`` x ``size`` (bilinear, antialiased)."""
    with Image.open(path) as im:
        x = pil_to_tensor(im)
    return resize(x[None], size, size)[0]


def parse_size(size: str) -> tuple[int, int] | None:
    """``--size``: 'native' (None), a square side 'N', or 'LxS' (a long and a short
    side, each photo keeping its orientation: '768x512' is Kodak's own frame);
    ValueError if it is none of these or a side is under 32 px."""
    if size == "native":
        return None
    parts = size.lower().split("x")
    if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
        raise ValueError(f"--size {size!r}: expected 'native', a side (256) or long x short (768x512)")
    long, short = int(parts[0]), int(parts[-1])
    if min(long, short) < 32 or short > long:
        raise ValueError(f"--size {size!r}: sides of at least 32 px, the long one first")
    return long, short


def bring_to(im: Image.Image, size: str) -> Image.Image:
    """``im`` at ``size`` (:func:`parse_size`), bicubic; a portrait photo brought to
    'LxS' becomes S x L."""
    sides = parse_size(size)
    if sides is None:
        return im
    long, short = sides
    target = (long, short) if im.width >= im.height else (short, long)
    return im if im.size == target else im.resize(target, Image.Resampling.BICUBIC)


def load_at(path: Path, size: str) -> torch.Tensor:
    return pil_to_tensor(bring_to(Image.open(path).convert("RGB"), size))


def load_rgb(paths: list[Path]) -> list[np.ndarray]:
    """Each photo of ``paths`` as an (H, W, 3) uint8 array (the trainers' photos in memory)."""
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out
