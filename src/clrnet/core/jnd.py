"""Perceptual shaping: how much change each pixel can hide (a just-noticeable-difference map).

The eye sees a faint pattern on a flat wall or a clear sky, and misses a much
stronger one in foliage, hair or along edges (contrast masking); it is also
less sensitive in very dark and very bright areas (luminance adaptation).
``jnd_map`` turns that into the rms (in 8-bit levels) of the change allowed at
every pixel: ``floor`` where the photo is flat, growing with the local
standard deviation up to ``cap``. Both the ruler and the payload are
multiplied by it, so flat areas get about a level of change and texture gets
several. The map is smooth (it is computed from local statistics), so the
decoder can recompute it from the received photo and weigh what it reads.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from clrnet.core.image import box_mean, local_std, luminance, plain_cpu


def jnd_map(x: Tensor, floor: float = 1.0, slope: float = 0.22, cap: float = 9.0,
            dark: float = 0.5) -> Tensor:
    """Allowed change (rms, 8-bit levels) per pixel of (B, 3, H, W) photos in [0, 1].

    ``floor`` + ``slope`` x the 7 x 7 local standard deviation (levels) above 2, at most
    ``cap``; the part above the floor raised by up to ``dark`` x itself in the darkest
    and brightest tenth of the range, where the eye is least sensitive.
    """
    y = luminance(x)
    if plain_cpu(y):  # the same map in place on NumPy planes: faster on large photos
        out = np.stack([_jnd_plane(p, floor, slope, cap, dark) for p in y[:, 0].numpy()])
        return torch.from_numpy(out)[:, None]
    sd = local_std(y * 255, 7)
    texture = box_mean(sd, 5)  # smooth: no hard seams
    # min: the flat side of an edge stays calm; below 2 levels of local std (flat) only the floor
    masking = slope * (torch.minimum(sd, texture) - 2).clamp_min(0)
    lum = box_mean(y, 7)
    extreme = ((0.1 - lum).clamp_min(0) + (lum - 0.9).clamp_min(0)) / 0.1
    # the raise applies to the masking term: a flat dark or bright area keeps the floor
    return (floor + masking * (1 + dark * extreme.clamp(0, 1))).clamp(max=cap)


def _jnd_plane(y: np.ndarray, floor: float, slope: float, cap: float, dark: float) -> np.ndarray:
    """:func:`jnd_map` of one luma plane (H, W) in [0, 1], float32."""
    import cv2

    def blur(a: np.ndarray, k: int) -> np.ndarray:
        return cv2.blur(a, (k, k), borderType=cv2.BORDER_REPLICATE)

    y255 = y * np.float32(255)
    mean = blur(y255, 7)
    sd = blur(y255 * y255, 7)
    sd -= mean * mean
    np.sqrt(np.maximum(sd, 0, out=sd), out=sd)
    masking = np.minimum(sd, blur(sd, 5))
    masking -= 2
    np.maximum(masking, 0, out=masking)
    masking *= np.float32(slope)
    mean *= np.float32(1 / 255)  # the 7 x 7 mean luma in [0, 1]
    extreme = np.maximum(np.float32(0.1) - mean, 0)
    extreme += np.maximum(mean - np.float32(0.9), 0)
    extreme *= np.float32(dark / 0.1)
    np.minimum(extreme, np.float32(dark), out=extreme)
    extreme += 1
    masking *= extreme
    masking += np.float32(floor)
    return np.minimum(masking, np.float32(cap), out=masking)


class JND(nn.Module):
    """Module wrapper of :func:`jnd_map` with fixed parameters."""

    def __init__(self, floor: float = 1.0, slope: float = 0.22, cap: float = 9.0, dark: float = 0.5) -> None:
        super().__init__()
        self.floor, self.slope, self.cap, self.dark = floor, slope, cap, dark

    def forward(self, x: Tensor) -> Tensor:
        return jnd_map(x, self.floor, self.slope, self.cap, self.dark)
