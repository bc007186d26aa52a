"""A differentiable JPEG that follows libjpeg's steps (the codec Pillow calls), for FG-JPEG's base.

Kornia's Diff-JPEG keeps every intermediate in floating point, rounds quantised coefficients with
a smooth polynomial and resamples chroma bilinearly with antialiasing. libjpeg stores YCbCr as
8-bit samples on the way in and out, averages 2 x 2 chroma blocks, rounds coefficients exactly
and upsamples chroma with its triangle ("fancy") filter. Doing the same (each rounding exact in
the forward pass, the identity in the backward pass) brings the simulation several dB closer to
Pillow's output; what is left is libjpeg's integer DCT and rounding ties.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
         14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
         49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
           47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def dct_matrix(n: int = 8) -> Tensor:
    """The orthonormal DCT-II matrix (rows are basis vectors)."""
    k = torch.arange(n, dtype=torch.float64)
    m = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m.float()


def quant_tables(quality: Tensor) -> tuple[Tensor, Tensor]:
    """libjpeg's luma and chroma tables for each quality (B,): (B, 8, 8) each, baseline (1..255)."""
    q = quality.round().clamp(1, 100).long()
    scale = torch.where(q < 50, 5000 // q, 200 - 2 * q)
    out = []
    for base in (_LUMA, _CHROMA):
        t = torch.tensor(base, dtype=torch.long).reshape(1, 8, 8)
        out.append(((t * scale[:, None, None] + 50) // 100).clamp(1, 255).float())
    return out[0], out[1]


def _round(x: Tensor) -> Tensor:
    return x + (x.round() - x).detach()


def _code(plane: Tensor, table: Tensor, d: Tensor) -> Tensor:
    """One component (B, H, W) in [0, 255] through 8 x 8 DCT, quantisation by ``table`` (B, 8, 8)
    and back, stored as 8-bit samples."""
    b, h, w = plane.shape
    p = F.pad(plane[:, None], (0, (-w) % 8, 0, (-h) % 8), mode="replicate")[:, 0]
    hh, ww = p.shape[-2:]
    blocks = (p - 128).reshape(b, hh // 8, 8, ww // 8, 8).permute(0, 1, 3, 2, 4)
    t = table[:, None, None]
    coef = _round((d @ blocks @ d.T) / t) * t
    back = (d.T @ coef @ d).permute(0, 1, 3, 2, 4).reshape(b, hh, ww)[:, :h, :w] + 128
    return _round(back).clamp(0, 255)


def jpeg_libjpeg_like(x: Tensor, quality: float | Tensor) -> Tensor:
    """(B, 3, H, W) in [0, 1] through JPEG at ``quality`` (one, or one per sample), 4:2:0, the
    way libjpeg does it; differentiable (straight-through roundings)."""
    q = torch.as_tensor(quality, dtype=x.dtype, device=x.device).reshape(-1)
    if q.numel() == 1 and x.shape[0] > 1:
        q = q.expand(x.shape[0])
    qy, qc = quant_tables(q)
    d = dct_matrix().to(x)
    v = x.clamp(0, 1) * 255
    r, g, b = v[:, 0], v[:, 1], v[:, 2]
    y = _round(0.299 * r + 0.587 * g + 0.114 * b)
    cb = _round(-0.168736 * r - 0.331264 * g + 0.5 * b + 128)
    cr = _round(0.5 * r - 0.418688 * g - 0.081312 * b + 128)
    h, w = y.shape[-2:]

    def down(c: Tensor) -> Tensor:
        return _round(F.avg_pool2d(F.pad(c[:, None], (0, w % 2, 0, h % 2), mode="replicate"), 2)[:, 0])

    def up(c: Tensor) -> Tensor:
        return _round(F.interpolate(c[:, None], scale_factor=2, mode="bilinear", align_corners=False)[:, 0, :h, :w])

    y = _code(y, qy, d)
    cb, cr = up(_code(down(cb), qc, d)), up(_code(down(cr), qc, d))
    rgb = torch.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                       y + 1.772 * (cb - 128)], 1)
    return _round(rgb).clamp(0, 255) / 255
