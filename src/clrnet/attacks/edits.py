"""Real tampering operations and their masks (for ``clrnet eval --tamper`` and the tests).

Each edit takes an RGB photo (H, W, 3) uint8 and a boolean mask (H, W) of the region to
change and returns the edited photo: splicing (the region from another photo), copy-move
(the region filled from elsewhere in the same photo), and object removal by inpainting
(OpenCV Telea and Navier-Stokes, scikit-image's biharmonic solve, and a smooth fill).
Masks are free-form brush strokes or object-like blobs covering a chosen share of the frame.
"""

from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

EDITS = ("splice", "copymove", "telea", "ns", "biharmonic", "smooth")
MASK_KINDS = ("freeform", "object")
BIHARMONIC_SIDE = 256  # biharmonic is solved at this long side at most, then upscaled (an exact
# solve on a native photo takes minutes)


def object_mask(rng: np.random.Generator, h: int, w: int, rate: float) -> np.ndarray:
    """An object-like blob (a star-shaped region with a smooth random outline) of about
    ``rate`` of the frame's area, at a random place that keeps it inside the frame."""
    n = 64
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in (2, 3, 4):
        r += rng.uniform(0, 0.25 / k * 2) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    aspect = rng.uniform(0.6, 1.6)
    area_unit = 0.5 * float(np.sum(r * r)) * (2 * math.pi / n)  # polygon area for scale 1
    scale = math.sqrt(rate * h * w / area_unit)
    sx, sy = scale * math.sqrt(aspect), scale / math.sqrt(aspect)
    px, py = r * np.cos(t) * sx, r * np.sin(t) * sy
    rx, ry = float(np.abs(px).max()), float(np.abs(py).max())
    cx = rng.uniform(min(rx, w / 2), max(w - rx, w / 2))
    cy = rng.uniform(min(ry, h / 2), max(h - ry, h / 2))
    pts = np.stack([px + cx, py + cy], 1).round().astype(np.int32)
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [pts], 1)
    return m.astype(bool)


def freeform_mask(rng: np.random.Generator, h: int, w: int, rate: float) -> np.ndarray:
    """Free-form brush strokes (thick random polylines, as inpainting tools are used)
    drawn until they cover about ``rate`` of the frame."""
    m = np.zeros((h, w), np.uint8)
    side = min(h, w)
    target = rate * h * w
    for _ in range(400):
        if m.sum() >= target:
            break
        width = max(2, int(rng.uniform(0.08, 0.16) * side))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(2, 6))):
            angle += rng.uniform(-1.2, 1.2)
            length = rng.uniform(0.1, 0.3) * side
            nx = float(np.clip(x + length * math.cos(angle), 0, w - 1))
            ny = float(np.clip(y + length * math.sin(angle), 0, h - 1))
            cv2.line(m, (int(x), int(y)), (int(nx), int(ny)), 1, width)
            x, y = nx, ny
            if m.sum() >= target:
                break
    return m.astype(bool)


def make_mask(kind: str, rng: np.random.Generator, h: int, w: int, rate: float) -> np.ndarray:
    if kind == "object":
        return object_mask(rng, h, w, rate)
    if kind == "freeform":
        return freeform_mask(rng, h, w, rate)
    raise ValueError(f"unknown mask kind {kind!r}; choose from: {', '.join(MASK_KINDS)}")


def splice(photo: np.ndarray, mask: np.ndarray, donor: np.ndarray) -> np.ndarray:
    """The masked region taken from ``donor`` (another photo, resized to this one)."""
    h, w = mask.shape
    if donor.shape[:2] != (h, w):
        donor = cv2.resize(donor, (w, h), interpolation=cv2.INTER_AREA)
    out = photo.copy()
    out[mask] = donor[mask]
    return out


def copy_move(photo: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The masked region filled from the same photo shifted by a random offset (at least
    a fifth of the frame on one axis; wrapping at the borders)."""
    h, w = mask.shape
    while True:
        dy, dx = int(rng.integers(-h // 2, h // 2 + 1)), int(rng.integers(-w // 2, w // 2 + 1))
        if abs(dy) >= h / 5 or abs(dx) >= w / 5:
            break
    moved = np.roll(photo, (dy, dx), axis=(0, 1))
    out = photo.copy()
    out[mask] = moved[mask]
    return out


def inpaint_cv(photo: np.ndarray, mask: np.ndarray, method: int) -> np.ndarray:
    return cv2.inpaint(np.ascontiguousarray(photo), mask.astype(np.uint8) * 255, 5, method)


def inpaint_biharmonic(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """scikit-image's biharmonic inpainting (at ``BIHARMONIC_SIDE`` at most, upscaled)."""
    from skimage.restoration import inpaint_biharmonic as solve

    h, w = mask.shape
    f = min(1.0, BIHARMONIC_SIDE / max(h, w))
    small, m = photo, mask
    if f < 1:
        sw, sh = max(1, round(w * f)), max(1, round(h * f))
        small = cv2.resize(photo, (sw, sh), interpolation=cv2.INTER_AREA)
        m = cv2.resize(mask.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST).astype(bool)
    filled = solve(small.astype(np.float64) / 255, m, channel_axis=-1)
    filled = (np.clip(filled, 0, 1) * 255).round().astype(np.uint8)
    if f < 1:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
    out = photo.copy()
    out[mask] = filled[mask]
    return out


def smooth_fill(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The region filled with a heavily blurred continuation of its surroundings
    (normalised convolution: what a "remove" brush with a soft fill does)."""
    keep = (~mask).astype(np.float32)
    sigma = max(mask.shape) / 16
    num = cv2.GaussianBlur(photo.astype(np.float32) * keep[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(keep, (0, 0), sigma)[..., None]
    fill = np.where(den > 1e-4, num / np.maximum(den, 1e-4), photo[keep > 0].mean(0) if keep.any() else 128)
    out = photo.copy()
    out[mask] = np.clip(fill, 0, 255).round().astype(np.uint8)[mask]
    return out


def apply_edit(name: str, photo: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
               donor: np.ndarray | None = None) -> np.ndarray:
    """Edit ``photo`` inside ``mask`` with the named operation (one of ``EDITS``)."""
    ops: dict[str, Callable[[], np.ndarray]] = {
        "splice": lambda: splice(photo, mask, donor if donor is not None else photo[::-1, ::-1]),
        "copymove": lambda: copy_move(photo, mask, rng),
        "telea": lambda: inpaint_cv(photo, mask, cv2.INPAINT_TELEA),
        "ns": lambda: inpaint_cv(photo, mask, cv2.INPAINT_NS),
        "biharmonic": lambda: inpaint_biharmonic(photo, mask),
        "smooth": lambda: smooth_fill(photo, mask),
    }
    if name not in ops:
        raise ValueError(f"unknown edit {name!r}; choose from: {', '.join(EDITS)}")
    return ops[name]()
