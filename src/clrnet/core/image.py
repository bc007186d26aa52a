"""Image conversions (PIL <-> tensor), luminance, and box means and local standard deviations."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor


def pil_to_tensor(image: Image.Image) -> Tensor:
    """RGB PIL image -> (3, H, W) float in [0, 1]."""
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255


def tensor_to_pil(x: Tensor) -> Image.Image:
    """(3, H, W) float in [0, 1] -> RGB PIL image (rounded to 8 bits)."""
    arr = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr)


def luminance(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) luma (BT.601)."""
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def plain_cpu(*ts: Tensor) -> bool:
    """CPU float32 tensors without gradients: OpenCV can do the work."""
    return all(not t.requires_grad and t.device.type == "cpu" and t.dtype == torch.float32 for t in ts)


def box_mean(y: Tensor, window: int) -> Tensor:
    """Mean over a ``window`` x ``window`` neighbourhood of (B, C, H, W), edges
    replicated, same size (OpenCV's box filter where no gradient is needed: torch's
    pooling is much slower on the CPU)."""
    if plain_cpu(y):
        import cv2

        b, c, h, w = y.shape
        planes = y.reshape(b * c, h, w).numpy()
        out = np.empty_like(planes)
        for p, o in zip(planes, out):
            cv2.blur(p, (window, window), dst=o, borderType=cv2.BORDER_REPLICATE)
        return torch.from_numpy(out).reshape(b, c, h, w)
    pad = window // 2
    y = F.avg_pool2d(F.pad(y, (pad, pad, 0, 0), mode="replicate"), (1, window), 1)
    return F.avg_pool2d(F.pad(y, (0, 0, pad, pad), mode="replicate"), (window, 1), 1)


def local_std(y: Tensor, window: int = 7) -> Tensor:
    """Standard deviation over a ``window`` x ``window`` neighbourhood, same size."""
    mean = box_mean(y, window)
    sq = box_mean(y * y, window)
    return (sq - mean * mean).clamp_min(0).sqrt()
