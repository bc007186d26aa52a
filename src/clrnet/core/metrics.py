"""Quality and localisation metrics, per image.

PSNR and SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, 'valid'
borders, like scikit-image with ``gaussian_weights=True``) on [0, 1] images;
pixel F1 = 2TP / (2TP + FP + FN) and IoU of crop masks; accuracy of the crop
decision.
"""

from __future__ import annotations

import math

from kornia.metrics import ssim as _kornia_ssim
from torch import Tensor


def psnr(a: Tensor, b: Tensor, mask: Tensor | None = None, data_range: float = 1.0) -> float:
    """PSNR in dB of two images (C, H, W); over pixels where ``mask`` (H, W) is 1 if given."""
    diff = (a.double() - b.double()) ** 2
    if mask is not None:
        m = mask.to(diff).expand_as(diff)
        if m.sum() == 0:
            return float("nan")
        mse = (diff * m).sum() / m.sum()
    else:
        mse = diff.mean()
    if mse == 0:
        return float("inf")
    return float(10 * math.log10(data_range ** 2 / float(mse)))


def ssim(a: Tensor, b: Tensor, mask: Tensor | None = None, data_range: float = 1.0) -> float:
    """Mean SSIM of two images (C, H, W), averaged over channels; with ``mask`` (H, W),
    the mean of the SSIM map over the masked pixels (windows centred there)."""
    m = _kornia_ssim(a[None].double(), b[None].double(), window_size=11, max_val=data_range,
                     padding="valid")
    if mask is None:
        return float(m.mean())
    r = (a.shape[-1] - m.shape[-1]) // 2  # 'valid' borders: the map is 2r smaller
    inner = mask[r:mask.shape[0] - r, r:mask.shape[1] - r].to(m)
    if inner.sum() == 0:
        return float("nan")
    return float((m[0] * inner).sum() / (inner.sum() * m.shape[1]))


def mask_f1(pred: Tensor, target: Tensor) -> float:
    """Pixel-level F1 of two binary masks (H, W); 1.0 when both are empty."""
    p, t = pred.bool(), target.bool()
    tp = (p & t).sum().item()
    fp = (p & ~t).sum().item()
    fn = (~p & t).sum().item()
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2 * tp / denom


def mask_iou(pred: Tensor, target: Tensor) -> float:
    p, t = pred.bool(), target.bool()
    union = (p | t).sum().item()
    return 1.0 if union == 0 else (p & t).sum().item() / union


def accuracy(pred: list[bool], truth: list[bool]) -> float:
    return sum(p == t for p, t in zip(pred, truth)) / max(1, len(truth))


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of a 95 % normal confidence interval (NaNs dropped)."""
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return float("nan"), float("nan")
    mean = sum(v) / len(v)
    if len(v) < 2:
        return mean, float("nan")
    var = sum((x - mean) ** 2 for x in v) / (len(v) - 1)
    return mean, 1.96 * math.sqrt(var / len(v))
