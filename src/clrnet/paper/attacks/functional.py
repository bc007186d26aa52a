"""Image post-processing attacks as torch functions on (B, 3, H, W) in [0, 1].

Each simulates a real operation (Pillow / scikit-image, see :mod:`.real`) and
is tested against it. Non-differentiable ones (real JPEG, rounding) pass
gradients straight through: ``sim + (real - sim).detach()``.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import gaussian_blur2d
from kornia.filters import median_blur as _kmedian
from PIL import Image
from torch import Tensor

from clrnet.core.geometry import resize


def straight_through(sim: Tensor, real: Tensor) -> Tensor:
    """Forward value ``real``, gradient of ``sim``."""
    return sim + (real - sim).detach()


def round_8bit(x: Tensor) -> Tensor:
    """Clip to [0, 1] and round to the 256 levels an 8-bit file stores (no gradient)."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def quantize(x: Tensor) -> Tensor:
    """Round to 8-bit levels (clipping to [0, 1]) with an identity gradient."""
    return straight_through(x, round_8bit(x))


def to_uint8(x: Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounding like Pillow would store it."""
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def from_uint8(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1).float() / 255


def jpeg_pillow(x: Tensor, quality: int | list[int]) -> Tensor:
    """Real JPEG through Pillow's libjpeg (4:2:0, like ``Image.save(..., quality=q)``);
    gradient passes straight through."""
    qs = [quality] * x.shape[0] if isinstance(quality, int) else list(quality)
    out = []
    for img, q in zip(x, qs):
        buf = io.BytesIO()
        Image.fromarray(to_uint8(img)).save(buf, format="JPEG", quality=int(q))
        out.append(from_uint8(np.asarray(Image.open(buf).convert("RGB"))))
    return straight_through(x, torch.stack(out).to(x))


def jpeg_differentiable(x: Tensor, quality: float | Tensor) -> Tensor:
    """Differentiable JPEG simulation (kornia), per-sample quality allowed."""
    q = torch.as_tensor(quality, dtype=x.dtype, device=x.device).reshape(-1)
    if q.numel() == 1 and x.shape[0] > 1:
        q = q.expand(x.shape[0])
    return jpeg_codec_differentiable(x.clamp(0, 1), q)


def rescale(x: Tensor, scale: float) -> Tensor:
    """Scale both sides by ``scale`` (bilinear, antialiased when shrinking)."""
    h, w = x.shape[-2:]
    return resize(x, max(1, round(h * scale)), max(1, round(w * scale)))


def gaussian_blur(x: Tensor, sigma: float, kernel_size: int | None = None) -> Tensor:
    """Gaussian blur, kernel of +-3 sigma (odd), reflected borders."""
    k = kernel_size or max(3, 2 * int(np.ceil(3 * sigma)) + 1)
    return gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")


def median_blur(x: Tensor, kernel_size: int = 3) -> Tensor:
    """Median filter over a k x k window (Pillow's MedianFilter away from borders);
    the gradient is taken from kornia's median."""
    return _kmedian(x, (kernel_size, kernel_size))


def awgn(x: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """Additive white Gaussian noise of std ``sigma`` (in [0, 1] units), clipped."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (x + sigma * noise).clamp(0, 1)


def pixel_dropout(x: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """Set a fraction ``rate`` of pixels (all channels) to black, like scikit-image's
    ``random_noise(mode='pepper')`` applied per pixel."""
    b, _, h, w = x.shape
    keep = torch.rand((b, 1, h, w), generator=generator, device=x.device) >= rate
    return x * keep.to(x.dtype)


def contrast(x: Tensor, factor: float) -> Tensor:
    """Pillow's ``ImageEnhance.Contrast``: blend with the mean grey level."""
    lum = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    mean = (lum.mean(dim=(-2, -1)) * 255).round()[:, None, None, None] / 255
    return (mean + factor * (x - mean)).clamp(0, 1)


def brightness(x: Tensor, delta: float) -> Tensor:
    """Add ``delta`` (in [0, 1] units; +20 grey levels = 20/255) and clip."""
    return (x + delta).clamp(0, 1)
