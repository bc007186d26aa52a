"""Crop geometry: boxes, masks, crops and ZR (zero-padding and resizing).

A box is (x0, y0, x1, y1): the kept part of the original frame, normalised to
[0, 1]. ZR places a received image back into the frame at a box, leaving the
cut-away region zero; with the exact box it inverts the crop exactly. Masks are
(H, W) float tensors (1 = kept), so tamper masks of any shape fit the same
code paths as rectangles.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Box = tuple[float, float, float, float]
FULL_FRAME: Box = (0.0, 0.0, 1.0, 1.0)


def sample_crop_box(rng: np.random.Generator, width: int, height: int, min_area: float = 0.25,
                    max_area: float = 1.0, max_aspect: float = 2.0) -> Box:
    """A random rectangle keeping ``r_c`` of the area (uniform in [min_area, max_area]),
    of random aspect (log-uniform up to ``max_aspect`` relative to the frame) and
    random position, snapped to whole pixels of a ``width`` x ``height`` frame."""
    area = rng.uniform(min_area, max_area)
    ratio = math.exp(rng.uniform(-math.log(max_aspect), math.log(max_aspect)))
    w = min(math.sqrt(area * ratio), 1.0)
    h = min(area / w, 1.0)
    w = min(area / h, 1.0)
    pw, ph = max(1, round(w * width)), max(1, round(h * height))
    px, py = int(rng.integers(0, width - pw + 1)), int(rng.integers(0, height - ph + 1))
    return (px / width, py / height, (px + pw) / width, (py + ph) / height)


def box_to_pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Round a normalised box to pixel edges (left, top, right, bottom), never empty."""
    x0, y0, x1, y1 = (float(v) for v in box)
    left = min(max(round(x0 * width), 0), width - 1)
    top = min(max(round(y0 * height), 0), height - 1)
    right = min(max(round(x1 * width), left + 1), width)
    bottom = min(max(round(y1 * height), top + 1), height)
    return left, top, right, bottom


def box_area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two normalised boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def crop(image: Tensor, box: Box) -> Tensor:
    """Region selection RS: the pixels of ``image`` (..., H, W) inside ``box``."""
    h, w = image.shape[-2:]
    left, top, right, bottom = box_to_pixels(box, w, h)
    return image[..., top:bottom, left:right]


def box_mask(box: Box, height: int, width: int) -> Tensor:
    """Hard (H, W) mask, 1 inside the box, with the same pixel rounding as :func:`crop`."""
    left, top, right, bottom = box_to_pixels(box, width, height)
    m = torch.zeros(height, width)
    m[top:bottom, left:right] = 1.0
    return m


def soft_box_mask(boxes: Tensor, height: int, width: int, softness: float = 1.0) -> Tensor:
    """Differentiable (B, 1, H, W) mask of boxes (B, 4): products of sigmoids whose
    edge width is ``softness`` pixels, so a BCE on masks trains box corners."""
    xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width
    ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height
    tx, ty = softness / width, softness / height
    x0, y0, x1, y1 = (boxes[:, i, None] for i in range(4))
    mx = torch.sigmoid((xs - x0) / tx) * torch.sigmoid((x1 - xs) / tx)  # (B, W)
    my = torch.sigmoid((ys - y0) / ty) * torch.sigmoid((y1 - ys) / ty)  # (B, H)
    return (my[:, :, None] * mx[:, None, :])[:, None]


def resize(image: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize of (B, C, H, W) with antialiasing when shrinking; exact identity
    when the size does not change."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    shrink = height < image.shape[-2] or width < image.shape[-1]
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False,
                         antialias=shrink)


def window_of_resize(image: Tensor, height: int, width: int, window: tuple[int, int, int, int],
                     margin: int = 4) -> tuple[Tensor, float, float]:
    """The (top, left, h, w) ``window`` of ``resize(image, height, width)``, computed from
    the part of ``image`` it needs only when that shrinks a large image (a 256 px patch of
    a 12 MP photo brought to a working scale need not resize all of it). Returns the
    window (B, C, h, w) and its exact top and left in the resized image: the part's
    pixel grid keeps the scale exactly but sits a fraction of a pixel off the whole
    image's, so the window may start up to half a pixel from the one asked for."""
    big_h, big_w = image.shape[-2:]
    top, left, wh, ww = window
    sy, sx = height / big_h, width / big_w
    if sy >= 1 or sx >= 1 or height * width <= 2 * (wh + 2 * margin) * (ww + 2 * margin):
        return resize(image, height, width)[..., top:top + wh, left:left + ww], float(top), float(left)
    y0, x0 = max(0, math.floor((top - margin) / sy)), max(0, math.floor((left - margin) / sx))
    y1 = min(big_h, math.ceil((top + wh + margin) / sy))
    x1 = min(big_w, math.ceil((left + ww + margin) / sx))
    part = F.interpolate(image[..., y0:y1, x0:x1], scale_factor=(sy, sx), mode="bilinear", align_corners=False,
                         antialias=True, recompute_scale_factor=False)
    # the part's pixel i sits at i + y0 * sy in the whole image's resized grid
    iy, ix = round(top - y0 * sy), round(left - x0 * sx)
    return part[..., iy:iy + wh, ix:ix + ww], iy + y0 * sy, ix + x0 * sx


def zero_pad_resize(received: Tensor, box: Box, height: int, width: int) -> Tensor:
    """ZR: resize a received image (B, C, h, w) to the box's size inside an
    ``height`` x ``width`` frame and paste it there; the rest stays zero."""
    left, top, right, bottom = box_to_pixels(box, width, height)
    out = received.new_zeros(*received.shape[:-2], height, width)
    out[..., top:bottom, left:right] = resize(received, bottom - top, right - left)
    return out


def shift_to_box(image: Tensor, true_box: Box, pred_box: Box) -> Tensor:
    """Warp (B, C, H, W) by the axis-aligned affine map sending ``true_box`` onto
    ``pred_box``: the ground truth a recovery from a slightly wrong box should match."""
    tx0, ty0, tx1, ty1 = true_box
    px0, py0, px1, py1 = pred_box
    sx = (tx1 - tx0) / max(px1 - px0, 1e-6)
    sy = (ty1 - ty0) / max(py1 - py0, 1e-6)
    # output u in [0,1] -> source tx0 + (u - px0) * sx ; in [-1,1] coordinates:
    ax, bx = sx, 2 * (tx0 - px0 * sx) + sx - 1
    ay, by = sy, 2 * (ty0 - py0 * sy) + sy - 1
    theta = image.new_tensor([[ax, 0.0, bx], [0.0, ay, by]]).expand(image.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"WIDTHxHEIGHT"`` as (W, H); None for an empty text; ValueError for anything else."""
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        w = h = 0
    if w < 1 or h < 1:
        raise ValueError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 768x512")
    return w, h
