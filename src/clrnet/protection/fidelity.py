"""The change kept under an SSIM floor as well as under the JND.

The JND map bounds the change pixel by pixel, and ``max_rms`` bounds its
energy (PSNR). SSIM judges the change against local contrast instead, and a
photo whose moderate texture takes a large share of the change can fall
below it while meeting both. :func:`keep_ssim` measures the protected photo's
SSIM and, where it is below the target, scales the whole change down
(1 - SSIM grows about as the square of the amplitude) until it is not: the few
photos this touches carry a slightly weaker mark, the others are unchanged.
"""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor

MAX_PIXELS = 2_000_000  # above this, SSIM is estimated on fixed patches (it is a local measure)
PATCH = 512
TRIES = 4


def quantize(image: Tensor) -> Tensor:
    """[0, 1] -> the 8-bit levels a protected photo is written with."""
    return (image.clamp(0, 1) * 255).round() / 255


def fast_ssim(a: Tensor, b: Tensor) -> float:
    """Mean SSIM of two images (C, H, W) in [0, 1]: the same measure as
    :func:`clrnet.core.metrics.ssim` (11 x 11 Gaussian window, sigma 1.5, 'valid' borders),
    with the window applied by OpenCV as two 1-D passes in single precision: much
    faster than the metric's double-precision 2-D window, equal to 1e-4 (tested).
    Images narrower than the window have no valid pixel: 1.0 (nothing to measure)."""
    import cv2

    if min(a.shape[-2:]) < 11:
        return 1.0
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    g = cv2.getGaussianKernel(11, 1.5, cv2.CV_32F)

    def blur(t: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(t, -1, g, g, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    total = 0.0
    for x, y in zip(a.float().numpy(), b.float().numpy()):
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        total += float(m.mean(dtype=np.float64))
    return total / a.shape[0]


def _regions(h: int, w: int) -> list[tuple[slice, slice]]:
    """Where SSIM is measured: the whole photo up to ``MAX_PIXELS``, else five fixed
    patches (the centre and the four quarters' centres)."""
    if h * w <= MAX_PIXELS:
        return [(slice(0, h), slice(0, w))]
    ph, pw = min(PATCH, h), min(PATCH, w)
    centres = [(h // 2, w // 2), (h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4),
               (3 * h // 4, 3 * w // 4)]
    out = []
    for cy, cx in centres:
        y0, x0 = min(max(cy - ph // 2, 0), h - ph), min(max(cx - pw // 2, 0), w - pw)
        out.append((slice(y0, y0 + ph), slice(x0, x0 + pw)))
    return out


def _mean_ssim(pairs: list[tuple[Tensor, Tensor]]) -> float:
    return sum(fast_ssim(x, y) for x, y in pairs) / len(pairs)


def ssim_estimate(a: Tensor, b: Tensor) -> float:
    """SSIM of two photos (3, H, W); on large photos the mean over five fixed patches,
    which keeps 12 MP within the speed budget (SSIM is a local measure)."""
    return _mean_ssim([(a[:, ys, xs], b[:, ys, xs]) for ys, xs in _regions(*a.shape[-2:])])


def keep_ssim(image: Tensor, delta: Tensor, target: float) -> Tensor:
    """``delta`` (1 or 3, H, W), scaled down if needed so that the 8-bit protected photo
    ``image + delta`` keeps an SSIM of at least ``target`` against ``image`` (3, H, W);
    ``target`` <= 0 turns the check off. Only the measured regions are quantized."""
    if target <= 0:
        return delta
    parts = [(image[:, ys, xs], delta[:, ys, xs]) for ys, xs in _regions(*image.shape[-2:])]

    def at(scale: float) -> float:
        return _mean_ssim([(quantize(x + scale * d), x) for x, d in parts])

    s = at(1.0)
    scale = 1.0
    for _ in range(TRIES):
        if s >= target:
            break
        scale *= min(0.97, math.sqrt((1 - target) / max(1 - s, 1e-9)))
        s = at(scale)
    return delta * scale
