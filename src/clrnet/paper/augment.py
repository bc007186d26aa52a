"""Tamper-based data augmentation: paste unrelated content into a fraction of
training photos through free-form masks, so cut-away objects can only come
back through the protection, not through the image prior."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor


def free_form_mask(rng: np.random.Generator, height: int, width: int, max_strokes: int = 4,
                   max_vertices: int = 8, max_width_frac: float = 0.12) -> Tensor:
    """A random brush-stroke mask (H, W) in {0, 1}, in the style of DeepFill v2:
    strokes of random vertices, angles, lengths and brush widths."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    diag = math.hypot(height, width)
    for _ in range(int(rng.integers(1, max_strokes + 1))):
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        brush = int(rng.uniform(0.03, max_width_frac) * diag) + 1
        for _ in range(int(rng.integers(2, max_vertices + 1))):
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(0.05, 0.25) * diag
            nx = float(np.clip(x + length * math.cos(angle), 0, width - 1))
            ny = float(np.clip(y + length * math.sin(angle), 0, height - 1))
            draw.line([(x, y), (nx, ny)], fill=255, width=brush)
            r = brush / 2
            draw.ellipse([nx - r, ny - r, nx + r, ny + r], fill=255)
            x, y = nx, ny
    return torch.from_numpy(np.asarray(mask) > 127).float()


def tamper_augment(images: Tensor, rng: np.random.Generator, rate: float = 0.15) -> Tensor:
    """I_aug = I (1 - M) + R M for a fraction ``rate`` of the batch, R being another
    photo of the batch and M a free-form mask."""
    b, _, h, w = images.shape
    out = images.clone()
    for i in range(b):
        if b > 1 and rng.random() < rate:
            j = (i + 1 + int(rng.integers(b - 1))) % b
            m = free_form_mask(rng, h, w).to(images)
            out[i] = images[i] * (1 - m) + images[j].flip(-1) * m
    return out
