"""The JPEG simulators the attack layer can train with (``attack.jpeg`` in the config):

- ``real``: Pillow's JPEG in the forward pass, the gradient straight through (the default);
- ``diff``: kornia's differentiable JPEG (fixed libjpeg tables scaled by quality, smooth rounding);
- ``codec``: our differentiable JPEG that follows libjpeg's steps (``codec.py``), FG-JPEG's base;
- ``mask``: HiDDeN's JPEG-Mask: 8 x 8 DCT of YCbCr, only the 5 x 5 lowest coefficients of Y and
  3 x 3 of Cb and Cr kept (quality-blind, as published);
- ``mixup``: JPEG-Mixup as we read RWN: a per-sample convex mix of the real JPEG and Diff-JPEG,
  the weight uniform in [0, 1], the gradient through Diff-JPEG's share;
- ``fg``: FG-JPEG's generator (``paper/fgjpeg``), frozen, the gradient through it.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
from torch import Tensor

from clrnet.paper.attacks.codec import dct_matrix, jpeg_libjpeg_like
from clrnet.paper.attacks.functional import jpeg_differentiable, jpeg_pillow

JpegSimulator = Literal["real", "diff", "codec", "mask", "mixup", "fg"]
SIMULATORS: tuple[str, ...] = ("real", "diff", "codec", "mask", "mixup", "fg")

_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def jpeg_mask(x: Tensor, keep_luma: int = 5, keep_chroma: int = 3) -> Tensor:
    """HiDDeN's JPEG-Mask of (B, 3, H, W) in [0, 1] (any size: edges padded by replication to
    whole 8 x 8 blocks, then cut back)."""
    b, _, h, w = x.shape
    ph, pw = (-h) % 8, (-w) % 8
    xp = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    ycc = torch.einsum("ij,bjhw->bihw", _YCC.to(x), xp)
    d = dct_matrix().to(x)
    H, W = xp.shape[-2:]
    blocks = ycc.reshape(b, 3, H // 8, 8, W // 8, 8).permute(0, 1, 2, 4, 3, 5)
    coef = d @ blocks @ d.T
    mask = torch.zeros(3, 8, 8, device=x.device, dtype=x.dtype)
    mask[0, :keep_luma, :keep_luma] = 1
    mask[1:, :keep_chroma, :keep_chroma] = 1
    back = d.T @ (coef * mask[None, :, None, None]) @ d
    ycc = back.permute(0, 1, 2, 4, 3, 5).reshape(b, 3, H, W)
    rgb = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_YCC).to(x), ycc)
    return rgb[..., :h, :w]


def jpeg_mixup(x: Tensor, quality: int | list[int], generator: torch.Generator | None = None) -> Tensor:
    """JPEG-Mixup: lambda * real + (1 - lambda) * Diff-JPEG per sample, lambda ~ U(0, 1)."""
    qs = [quality] * x.shape[0] if isinstance(quality, int) else list(quality)
    lam = torch.rand((x.shape[0], 1, 1, 1), generator=generator).to(x)
    sim = jpeg_differentiable(x, torch.tensor(qs, dtype=x.dtype))
    real = jpeg_pillow(x, qs).detach()
    return lam * real + (1 - lam) * sim


def simulate(name: str, x: Tensor, quality: int | list[int], fg: Callable[[Tensor, Tensor], Tensor] | None = None,
             generator: torch.Generator | None = None) -> Tensor:
    """``x`` through the JPEG simulator ``name`` at ``quality`` (one, or one per sample)."""
    qs = [quality] * x.shape[0] if isinstance(quality, int) else list(quality)
    q = torch.tensor(qs, dtype=x.dtype, device=x.device)
    if name == "real":
        return jpeg_pillow(x, qs)
    if name == "diff":
        return jpeg_differentiable(x, q)
    if name == "codec":
        return jpeg_libjpeg_like(x, q)
    if name == "mask":
        return jpeg_mask(x)
    if name == "mixup":
        return jpeg_mixup(x, qs, generator)
    if name == "fg":
        if fg is None:
            raise ValueError("the fg simulator needs FG-JPEG's generator")
        return fg(x, q)
    raise ValueError(f"unknown JPEG simulator {name!r} (one of {', '.join(SIMULATORS)})")
