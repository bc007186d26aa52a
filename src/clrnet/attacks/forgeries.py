"""Manipulated photos with their masks, for the passive detector's training and evaluation.

``forge`` makes one of ``KINDS`` from a photo (and a donor photo for splicing) and returns the
edited photo with the mask of the pixels the edit replaced: splicing pastes an object-shaped
region of the donor (a union of superpixels, a smooth random outline as the paper's Bezier
contours, or with ``objects`` an image segment whose outline follows the photo's own edges), scaled, rotated, shifted and with its luminance changed, sometimes with feathered
edges; copy-move does the same within the photo; removal fills a region (object-shaped or
brush strokes) by inpainting (OpenCV Telea or Navier-Stokes, or scikit-image's biharmonic
solve); a pristine photo is returned as it is, with an empty mask. ``postprocess`` then applies
the paper's robustness operations (resize, blur, noise, JPEG) to photo and mask alike, so a
pristine photo goes through them as often as an edited one. Everything draws from ``rng``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from clrnet.attacks.edits import freeform_mask, inpaint_biharmonic, inpaint_cv, object_mask
from clrnet.attacks.real import jpeg

KINDS = ("pristine", "splice", "copymove", "removal")
AREA = (0.01, 0.30)  # share of the frame a region covers (drawn log-uniformly)


def _area(rng: np.random.Generator) -> float:
    return float(math.exp(rng.uniform(math.log(AREA[0]), math.log(AREA[1]))))


def superpixel_mask(rng: np.random.Generator, photo: np.ndarray, rate: float) -> np.ndarray:
    """An object-like region: a superpixel grown by its neighbours until it covers ``rate``."""
    from skimage.segmentation import slic

    h, w = photo.shape[:2]
    labels = slic(photo, n_segments=int(rng.integers(30, 120)), compactness=float(rng.uniform(5, 20)),
                  start_label=0, enforce_connectivity=True)
    n = int(labels.max()) + 1
    if n < 2:
        return object_mask(rng, h, w, rate)
    sizes = np.bincount(labels.ravel(), minlength=n)
    # neighbours: labels that touch horizontally or vertically
    pairs = np.concatenate([np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
                            np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1)])
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
    chosen = {int(rng.integers(n))}
    area = int(sizes[next(iter(chosen))])
    while area < rate * h * w:
        near = np.unique(np.concatenate([pairs[np.isin(pairs[:, 0], list(chosen)), 1],
                                         pairs[np.isin(pairs[:, 1], list(chosen)), 0]]))
        near = [int(k) for k in near if int(k) not in chosen]
        if not near:
            break
        k = near[int(rng.integers(len(near)))]
        chosen.add(k)
        area += int(sizes[k])
    return np.isin(labels, list(chosen))


def segment_mask(rng: np.random.Generator, photo: np.ndarray, rate: float) -> np.ndarray:
    """A region cut along the photo's own edges, as an editor cuts out an object: a graph-based
    segment (Felzenszwalb) clear of the frame's border, its holes filled, of about ``rate`` of the
    frame (superpixels when no segment fits)."""
    from scipy import ndimage
    from skimage.segmentation import felzenszwalb

    h, w = photo.shape[:2]
    labels = felzenszwalb(photo, scale=float(math.exp(rng.uniform(math.log(300), math.log(4000)))), sigma=0.8,
                          min_size=max(4, int(0.005 * h * w)))
    n = int(labels.max()) + 1
    share = np.bincount(labels.ravel(), minlength=n) / (h * w)
    border = np.zeros(n, bool)
    border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    fits = np.nonzero((share >= 0.3 * rate) & (share <= 3 * rate) & ~border)[0]
    if len(fits) == 0:
        return superpixel_mask(rng, photo, rate)
    k = fits[np.argmin(np.abs(np.log(share[fits] / rate)))] if rng.random() < 0.8 else fits[rng.integers(len(fits))]
    return ndimage.binary_fill_holes(labels == k)


def region(rng: np.random.Generator, photo: np.ndarray, rate: float | None = None, objects: float = 0.0) -> np.ndarray:
    """An object-shaped region of ``photo``: with probability ``objects`` a segment along the
    photo's edges, else superpixels or a smooth random outline."""
    h, w = photo.shape[:2]
    rate = _area(rng) if rate is None else rate
    if objects and rng.random() < objects:
        return segment_mask(rng, photo, rate)
    return superpixel_mask(rng, photo, rate) if rng.random() < 0.5 else object_mask(rng, h, w, rate)


def _transform(rng: np.random.Generator, h: int, w: int, box: tuple[int, int, int, int], big: bool) -> np.ndarray:
    """A 2 x 3 similarity that moves the region's box somewhere inside an h x w frame."""
    y0, x0, y1, x1 = box
    s = float(rng.uniform(0.5, 1.5) if big else rng.uniform(0.7, 1.3))
    s = min(s, 0.95 * h / max(1, y1 - y0), 0.95 * w / max(1, x1 - x0))
    a = float(rng.uniform(-30, 30) if big else rng.uniform(-20, 20))
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    m = cv2.getRotationMatrix2D((cx, cy), a, s)
    rh, rw = (y1 - y0) * s / 2, (x1 - x0) * s / 2
    ty = rng.uniform(min(rh, h / 2), max(h - rh, h / 2))
    tx = rng.uniform(min(rw, w / 2), max(w - rw, w / 2))
    m[0, 2] += tx - cx
    m[1, 2] += ty - cy
    return m


def paste(rng: np.random.Generator, photo: np.ndarray, source: np.ndarray, same: bool,
          objects: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A region of ``source`` pasted into ``photo`` after a similarity and a luminance change;
    the mask is where it landed (a feathered edge blends a rim of a few pixels around it)."""
    h, w = photo.shape[:2]
    for _ in range(8):
        m = region(rng, source, objects=objects)
        ys, xs = np.nonzero(m)
        if len(ys) >= 16:
            break
    box = (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
    t = _transform(rng, h, w, box, big=not same)
    alpha = cv2.warpAffine(m.astype(np.float32), t, (w, h), flags=cv2.INTER_LINEAR)
    patch = cv2.warpAffine(source.astype(np.float32), t, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    if not same or rng.random() < 0.3:
        patch = patch * float(rng.uniform(0.8, 1.2)) + float(rng.uniform(-20, 20))
    mask = alpha >= 0.5
    alpha = mask.astype(np.float32)
    if rng.random() < 0.3:  # feathered edges, as a careful editor blends them
        alpha = cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.8, 2.5)))
        alpha[alpha < 0.05] = 0  # the rim ends within about two sigmas of the outline
    out = photo.astype(np.float32) * (1 - alpha[..., None]) + patch * alpha[..., None]
    return np.clip(out, 0, 255).round().astype(np.uint8), mask


def remove(rng: np.random.Generator, photo: np.ndarray, objects: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A region filled by inpainting from its surroundings."""
    h, w = photo.shape[:2]
    rate = _area(rng) * 0.6
    mask = region(rng, photo, rate, objects) if rng.random() < 0.6 else freeform_mask(rng, h, w, rate)
    mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    u = rng.random()
    if u < 0.4:
        out = inpaint_cv(photo, mask, cv2.INPAINT_TELEA)
    elif u < 0.8:
        out = inpaint_cv(photo, mask, cv2.INPAINT_NS)
    else:
        out = inpaint_biharmonic(photo, mask)
    return out, mask


def forge(kind: str, photo: np.ndarray, rng: np.random.Generator,
          donor: np.ndarray | None = None, objects: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(edited photo, mask of the replaced pixels) for one of ``KINDS``; ``objects`` is the share
    of regions cut along the photo's edges (``segment_mask``)."""
    if kind == "pristine":
        return photo.copy(), np.zeros(photo.shape[:2], bool)
    if kind == "splice":
        if donor is None:
            raise ValueError("splice needs a donor photo")
        return paste(rng, photo, donor, same=False, objects=objects)
    if kind == "copymove":
        return paste(rng, photo, photo, same=True, objects=objects)
    if kind == "removal":
        return remove(rng, photo, objects)
    raise ValueError(f"unknown forgery {kind!r}; choose from: {', '.join(KINDS)}")


def postprocess(rng: np.random.Generator, photo: np.ndarray, mask: np.ndarray,
                p: float = 0.5, resize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Each of resize (0.5 to 1.5; not when ``resize`` is False), blur, noise and JPEG (60 to 95)
    with probability ``p``."""
    if resize and rng.random() < p:
        s = float(rng.uniform(0.5, 1.5))
        h, w = mask.shape
        size = (max(8, round(w * s)), max(8, round(h * s)))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    if rng.random() < p / 2:
        photo = cv2.GaussianBlur(photo, (3, 3) if rng.random() < 0.7 else (5, 5), 0)
    if rng.random() < p / 2:
        noise = rng.normal(0, float(rng.uniform(1, 6)), photo.shape)
        photo = np.clip(photo + noise, 0, 255).round().astype(np.uint8)
    if rng.random() < p:
        photo = np.array(jpeg(Image.fromarray(photo), int(rng.integers(60, 96))))
    return photo, mask
