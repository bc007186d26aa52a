"""Alignment: what the ruler's matched filter reads, and a fragment resampled onto the
pixel grid of a working frame at a box."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from clrnet.core.geometry import Box, resize
from clrnet.core.jnd import jnd_map
from clrnet.sync.ruler import RulerReadout


@dataclass(frozen=True)
class RulerInput:
    """How a received photo is brought to the readout: its size, and the JND map's
    parameters when the readout weighs by it (the ruler is shaped by it); None: unweighted."""

    size: int = 256
    jnd: tuple[float, float, float] | None = None  # floor, slope, cap

    def of(self, received: Tensor) -> tuple[Tensor, Tensor | None]:
        """The photo (3, h, w) at the readout's size, and its JND map there (the gain)."""
        n = self.size
        gain = None
        if self.jnd is not None:
            m = jnd_map(received[None].float(), *self.jnd)
            gain = resize(m, n, n)[:, 0]
        return resize(received[None].float(), n, n), gain


def read_ruler(readout: RulerReadout, source: RulerInput, received: Tensor) -> tuple[Box, float, float]:
    """Box, crop-score logit and ruler strength of a received (3, h, w)."""
    boxes, logits, strength = readout.read(*source.of(received))
    return tuple(float(v) for v in boxes[0]), float(logits[0]), float(strength[0])  # type: ignore[return-value]


def resample(received: Tensor, box: Box, width: int, height: int) -> tuple[Tensor, int, int]:
    """The received (3, h, w), placed at ``box`` of a ``width`` x ``height`` frame,
    sampled at the frame's pixel centres inside the box: (3, h', w'), y0, x0."""
    x0, y0, x1, y1 = box
    kx0, kx1 = math.ceil(x0 * width - 0.5), math.floor(x1 * width - 0.5) + 1
    ky0, ky1 = math.ceil(y0 * height - 0.5), math.floor(y1 * height - 0.5) + 1
    # at least one frame pixel, also for a box that lies off the frame (a sliver of a photo)
    kx0, ky0 = min(max(kx0, 0), width - 1), min(max(ky0, 0), height - 1)
    kx1, ky1 = max(min(kx1, width), kx0 + 1), max(min(ky1, height), ky0 + 1)
    src = received[None].float()
    nw, nh = max(kx1 - kx0, 1), max(ky1 - ky0, 1)
    if src.shape[-1] > 1.25 * nw or src.shape[-2] > 1.25 * nh:  # antialias before sampling
        src = resize(src, nh, nw)
    gx = (((torch.arange(kx0, kx1) + 0.5) / width - x0) / max(x1 - x0, 1e-6)) * 2 - 1
    gy = (((torch.arange(ky0, ky1) + 0.5) / height - y0) / max(y1 - y0, 1e-6)) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0], ky0, kx0
