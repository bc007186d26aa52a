"""Painting the cut-away part from the decoded thumbnail.

The thumbnail, upsampled to the working frame, gives the cut-away region its
colours and layout. Where the kept part meets the cut, its detail (relative to
the upsampled thumbnail) is continued harmonically across the edge and fades
over ``reach`` pixels (1/32 of the frame), so edges and textures run on instead of stopping at a
seam. Without a thumbnail (no payload decoded) the kept part alone is inpainted: the mean
of its harmonic extension and Telea's fill, whose errors differ enough that the mean beats each
(and Telea alone) on val.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from clrnet.core.image import box_mean, plain_cpu


def upsample(thumb: Tensor, height: int, width: int) -> Tensor:
    """(B, 3, t, t') -> (B, 3, height, width), bicubic, clamped to [0, 1]."""
    return F.interpolate(thumb, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def paint(frame: Tensor, keep: Tensor, base: Tensor | None, reach: float | None = None,
          dist: Tensor | None = None) -> Tensor:
    """Fill ``frame`` (B, 3, H, W) where ``keep`` (B, 1, H, W) is 0.

    ``base`` is the upsampled thumbnail (or None: harmonic inpainting of the
    kept part alone); ``reach`` defaults to 1/32 of the long side, so the same
    scene painted at two resolutions looks the same; ``dist``: :func:`distance`
    of ``keep`` if the caller has it already."""
    if reach is None:
        reach = max(frame.shape[-2:]) / 32
    if base is None:
        fill = (harmonic_extension(frame * keep, keep) + telea(frame, keep)) / 2
        return frame * keep + fill * (1 - keep)
    detail = harmonic_extension((frame - base) * keep, keep)
    fade = torch.exp(-(distance(keep) if dist is None else dist) / reach)
    painted = (base + detail * fade).clamp(0, 1)
    return frame * keep + painted * (1 - keep)


TELEA_RADIUS = 5
TELEA_SIDE = 512  # long side (pixels) above which Telea fills at a reduced size: it walks the hole pixel by pixel


def telea(frame: Tensor, keep: Tensor) -> Tensor:
    """OpenCV's Telea inpainting of ``frame`` (B, 3, H, W) where ``keep`` (B, 1, H, W) is 0 (the kept
    pixels returned as they are); frames longer than ``TELEA_SIDE`` are filled at that size
    (:func:`telea_reduced`)."""
    import cv2

    out = []
    for f, k in zip(frame, keep):
        h, w = k.shape[-2:]
        known = (k[0].numpy() > 0.5).astype(np.float32)
        img = np.ascontiguousarray(f.permute(1, 2, 0).numpy(), np.float32) * 255 * known[..., None]
        s = min(1.0, TELEA_SIDE / max(h, w))
        if s < 1:
            filled = telea_reduced(img, known, (max(1, round(w * s)), max(1, round(h * s))), TELEA_RADIUS)
        else:
            small = np.ascontiguousarray(img.round().clip(0, 255).astype(np.uint8))
            filled = cv2.inpaint(small, (known < 0.5).astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled).permute(2, 0, 1).float() / 255)
    return frame * keep + torch.stack(out) * (1 - keep)


def telea_reduced(img: np.ndarray, known: np.ndarray, size: tuple[int, int], radius: int) -> np.ndarray:
    """Telea's fill of ``img`` (H, W, 3, levels) where ``known`` (H, W, 0/1) is 0, computed at
    ``size`` (w, h): the known pixels area-averaged (only known ones count, so the hole does not
    bleed into its rim), filled there, upsampled bilinearly; (H, W, 3) uint8."""
    import cv2

    h, w = known.shape
    num = cv2.resize(img.astype(np.float32) * known[..., None], size, interpolation=cv2.INTER_AREA)
    cov = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    small = (num / np.maximum(cov, 1e-6)[..., None]).round().clip(0, 255).astype(np.uint8)
    filled = cv2.inpaint(small, (cov < 0.5).astype(np.uint8), radius, cv2.INPAINT_TELEA)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)


def distance(keep: Tensor) -> Tensor:
    """Euclidean distance (pixels) of every pixel to the nearest kept one, (B, 1, H, W)
    (OpenCV's exact transform: scipy's ``distance_transform_edt`` to 1e-4, much faster)."""
    import cv2

    out = []
    for k in keep:
        free = (k[0].numpy() < 0.5).astype(np.uint8)
        if free.all():  # nothing kept: everything infinitely far
            d = np.full(free.shape, np.inf, np.float32)
        else:
            d = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        out.append(torch.from_numpy(d))
    return torch.stack(out)[:, None]


def harmonic_extension(values: Tensor, keep: Tensor, iterations: int = 20) -> Tensor:
    """Extend ``values`` (B, C, H, W), known where ``keep`` (B, 1, H, W) is 1, into the
    rest by Jacobi iterations of Laplace's equation, coarse to fine (so far
    regions converge in few iterations). Without gradients on the CPU it runs in
    OpenCV on (H, W, C) arrays (the same iterations, faster on large frames)."""
    if plain_cpu(values, keep):
        out = [_harmonic_np(np.ascontiguousarray(v.permute(1, 2, 0).numpy()), k[0].numpy() > 0.5, iterations)
               for v, k in zip(values, keep)]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()
    h, w = values.shape[-2:]
    guess = torch.zeros_like(values)
    if min(h, w) >= 16:
        k2 = F.avg_pool2d(keep, 2)
        v2 = F.avg_pool2d(values * keep, 2) / k2.clamp_min(1e-6)
        coarse = harmonic_extension(v2 * (k2 > 0), (k2 > 0.5).to(keep.dtype), iterations)
        guess = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    x = values * keep + guess * (1 - keep)
    for _ in range(iterations if min(h, w) > 32 else 5 * iterations):  # coarse levels are cheap
        x = values * keep + box_mean(x, 3) * (1 - keep)
    return x


def _pool2(a: np.ndarray) -> np.ndarray:
    """2 x 2 means of (H, W, ...) (odd last row/column dropped, as avg_pool2d)."""
    h, w = a.shape[0] // 2, a.shape[1] // 2
    return a[:2 * h, :2 * w].reshape(h, 2, w, 2, *a.shape[2:]).mean((1, 3))


def _harmonic_np(values: np.ndarray, known: np.ndarray, iterations: int) -> np.ndarray:
    """:func:`harmonic_extension` of one (H, W, C) float32 array, ``known`` (H, W) bool
    (two preallocated buffers: at 2048 px a fresh array per blur costs more than the blur)."""
    import cv2

    h, w = known.shape
    values = values * known[..., None]
    if min(h, w) >= 16:
        k2 = _pool2(known.astype(np.float32))
        v2 = _pool2(values) / np.maximum(k2, 1e-6)[..., None]
        coarse = _harmonic_np((v2 * (k2 > 0)[..., None]).astype(np.float32), k2 > 0.5, iterations)
        x = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    else:
        x = np.zeros_like(values)
    cv2.copyTo(values, known.astype(np.uint8), x)
    free = (~known).astype(np.uint8)
    blurred = np.empty_like(x)
    for _ in range(iterations if min(h, w) > 32 else 5 * iterations):  # coarse levels are cheap
        cv2.blur(x, (3, 3), dst=blurred, borderType=cv2.BORDER_REPLICATE)
        cv2.copyTo(blurred, free, x)
    return x


def distance_to(keep: Tensor) -> Tensor:
    """Chessboard distance (pixels) of every pixel to the nearest kept one (B, 1, H, W)."""
    dist = torch.zeros_like(keep)
    cur = keep
    for step in range(1, max(keep.shape[-2:])):
        nxt = F.max_pool2d(cur, 3, 1, 1)
        dist = dist + (nxt - cur) * step
        if bool((nxt > 0.5).all()):
            break
        cur = nxt
    return dist
