"""The kept part continued across the crop's edge, blended into the reconstruction.

Near the edge, the kept pixels say more about what was cut away than a coarse
thumbnail does: an edge or a texture runs on for a few pixels. OpenCV's Telea
inpainting continues them; the reconstruction (thumbnail, painting, network)
knows the layout further in. Their errors differ, so a blend beats both:
Telea's weight is ``WEIGHT * exp(-d / reach)`` at distance ``d`` from the kept
part, with ``reach`` a fraction of a thumbnail cell (the coarser the thumbnail,
the farther the kept part is worth continuing). Chosen on val, where the blend
beat the network's output; Telea's radius 3 did as well as 5 and costs less.

It is applied across the crop's edge, not around edited regions found inside the
kept part: their outline is not exact, and continuing what surrounds them carries
the edit's own pixels inwards.

Telea runs only within ``BAND`` reaches of the kept part (beyond it the weight
is below 2 %): the reconstruction stands there as known pixels, which keeps a
12-MP inspect from filling millions of pixels one by one. Where the blend is
wide (a reach of ``HALF_FROM`` pixels or more: the 5-byte thumbnails of 256 px
frames), Telea fills at half resolution: much faster at almost no cost there; with
finer thumbnails it cost more, so they keep the full resolution.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from clrnet.recovery.paint import telea_reduced

REACH = 0.2  # thumbnail cells
WEIGHT = 0.8
BAND = 4.0  # reaches
RADIUS = 3
HALF_FROM = 16.0  # reach (pixels) from which Telea runs at half resolution
HALF_RADIUS = 2  # its radius there (half-resolution pixels)


def continue_border(recovered: Tensor, keep: Tensor, distance: Tensor, cell: float) -> Tensor:
    """``recovered`` (3, H, W) in [0, 1] with Telea's continuation of the kept part
    (``keep`` (1, H, W) == 1) blended into the cut-away part near it; ``distance``
    (1, H, W) to the nearest kept pixel, ``cell`` frame pixels per thumbnail pixel."""
    import cv2

    cut = keep[0] < 0.5
    if not bool(cut.any()) or not bool((~cut).any()):
        return recovered
    reach = max(REACH * cell, 1.0)
    fill = cut & (distance[0] < BAND * reach)
    img = (recovered.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    mask = fill.numpy().astype(np.uint8)
    if reach >= HALF_FROM:  # a wide blend: continued at half resolution (a quarter of the pixels)
        telea = _telea_half(img, mask)
    else:
        img[fill.numpy()] = 0
        telea = cv2.inpaint(img, mask, RADIUS, cv2.INPAINT_TELEA)
    telea = torch.from_numpy(telea).permute(2, 0, 1).float() / 255
    w = WEIGHT * torch.exp(-distance / reach) * fill.float()
    return recovered * (1 - w) + telea * w


def _telea_half(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Telea's fill of ``mask`` (H, W; 1 = fill) in ``img`` (H, W, 3) uint8, computed at half
    resolution (:func:`paint.telea_reduced`)."""
    h, w = mask.shape
    return telea_reduced(img, (1 - mask).astype(np.float32), ((w + 1) // 2, (h + 1) // 2), HALF_RADIUS)
