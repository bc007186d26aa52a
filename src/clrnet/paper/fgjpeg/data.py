"""The QF predictor's data: real Pillow JPEGs of photo regions at the classes' quality factors,
and its training config."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from clrnet.paper.fgjpeg.predictor import QFS


class QFConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt setting is an error, not a default

    name: str = "qf-predictor"
    init: str | None = None  # weights (.safetensors) to start from: a fine-tune
    gray: float = 0.0  # share of samples made grey before compression (scans, screenshots, old photos)
    double: float = 0.0  # share compressed once before (any quality, half the time off the final grid)
    blocks: int = 5
    tile: int = 64
    batch_size: int = 32
    steps: int = 3000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_every: int = 250
    val_photos: int = 50
    checkpoint_every: int = 50
    seed: int = 0
    threads: int = 2
    workers: int = 1


def encode(region: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    """``region`` (H, W, 3) uint8 through Pillow's JPEG at ``quality`` (``subsampling`` 0: 4:4:4,
    2: 4:2:0) and back."""
    buf = io.BytesIO()
    Image.fromarray(region).save(buf, format="JPEG", quality=int(quality), subsampling=subsampling)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def make_sample(photo: np.ndarray, rng: np.random.Generator, label: int, tile: int, gray: float = 0.0,
                double: float = 0.0) -> np.ndarray:
    """(tile, tile, 3) uint8: a region of ``photo`` compressed at ``QFS[label]`` (grey first with
    probability ``gray``; with probability ``double`` compressed before at any quality, as video
    frames and re-shared photos are, half the time on a grid shifted from the last one)."""
    h, w = photo.shape[:2]
    side = tile + 16
    if min(h, w) < side:  # a small photo: enlarged to hold a region
        f = side / min(h, w)
        photo = np.asarray(Image.fromarray(photo).resize((max(side, round(w * f)), max(side, round(h * f))),
                                                         Image.Resampling.BICUBIC))
        h, w = photo.shape[:2]
    if rng.random() < 0.5:
        s = float(rng.uniform(0.5, 1.0))
        size = (max(tile + 16, round(w * s)), max(tile + 16, round(h * s)))
        photo = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
        h, w = photo.shape[:2]
    y, x = int(rng.integers(0, max(1, h - side + 1))), int(rng.integers(0, max(1, w - side + 1)))
    region = np.ascontiguousarray(photo[y:y + side, x:x + side])
    if gray and rng.random() < gray:
        region = np.repeat(np.asarray(Image.fromarray(region).convert("L"))[..., None], 3, 2)
    if double and rng.random() < double:
        region = encode(region, int(rng.integers(10, 101)))
        if rng.random() < 0.5:
            dy, dx = int(rng.integers(1, 8)), int(rng.integers(1, 8))
            region = np.ascontiguousarray(region[dy:, dx:])
    out = encode(region, QFS[label], 0 if rng.random() < 0.25 else 2)
    oy, ox = int(rng.integers(0, out.shape[0] - tile + 1)), int(rng.integers(0, out.shape[1] - tile + 1))
    return out[oy:oy + tile, ox:ox + tile]
