"""The inpainting baselines the recovery is compared with (OpenCV's Telea, scikit-image's
biharmonic), and the flat-area change of a protected photo."""

from __future__ import annotations

import numpy as np
import torch

from clrnet.core.geometry import resize
from clrnet.core.image import local_std, luminance


def inpaint_biharmonic(image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Classical inpainting of the cut-away region (keep == 0), scikit-image biharmonic."""
    from skimage.restoration import inpaint_biharmonic as _ib

    arr = image.permute(1, 2, 0).double().numpy()
    out = _ib(arr, (keep.numpy() < 0.5), channel_axis=-1)
    return torch.from_numpy(out).permute(2, 0, 1).float().clamp(0, 1)


def flat_rms(protected: torch.Tensor, original: torch.Tensor, threshold: float = 2.0) -> float:
    """rms (levels) of the change where the original's 7 x 7 local std is below ``threshold`` levels."""
    flat = local_std(luminance(original[None]) * 255, 7)[0, 0] < threshold
    if not bool(flat.any()):
        return float("nan")
    return float(((protected - original) * 255)[:, flat].pow(2).mean().sqrt())


def inpaint_telea(image: torch.Tensor, keep: torch.Tensor, radius: int = 5) -> torch.Tensor:
    import cv2

    arr = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = cv2.inpaint(arr, (keep.numpy() < 0.5).astype(np.uint8), radius, cv2.INPAINT_TELEA)
    return torch.from_numpy(out).permute(2, 0, 1).float() / 255


def inpaint_biharmonic_small(image: torch.Tensor, keep: torch.Tensor, long_side: int = 256) -> torch.Tensor:

    _, h, w = image.shape
    s = min(1.0, long_side / max(h, w))
    sh, sw = max(8, round(h * s)), max(8, round(w * s))
    small = resize(image[None], sh, sw)[0]
    ks = (resize(keep[None, None], sh, sw)[0, 0] > 0.999).float()
    filled = inpaint_biharmonic(small * ks, ks)
    up = resize(filled[None], h, w)[0] if (sh, sw) != (h, w) else filled
    return image * keep + up * (1 - keep)
