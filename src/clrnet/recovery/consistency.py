"""Making the recovered frame agree with what the thumbnail says about it.

The small channels' thumbnail (:mod:`clrnet.payload.grid`) is not a picture to be
upsampled but a set of measurements of the whole frame: the DCT coefficients of
its cells' box means, each known to within its quantisation step. The kept part
is known too. So the cut-away part of a cell whose kept part is brighter than
the cell's mean must be darker than it: upsampling (and the network, and the
border's continuation) ignore that.

:func:`project` moves the cut-away pixels, and only them, until every measured
quantity of the frame lies in its interval (a quantity already inside its
interval is left alone: the projection changes nothing it does not have to).
The correction of a cell is spread over its cut-away pixels, divided by their
share of the cell, and smoothed by bilinear interpolation between cells; a few
iterations converge. It helps most in the crops that keep most of the frame, where
the cut-away strips' cells are partly kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.fft import dctn, idctn
from torch import Tensor

ITERATIONS = 10
MIN_SHARE = 0.15  # a cell's cut-away share below which its correction is not amplified further
MAX_STEP = 80.0  # levels: the largest correction of one iteration
MIN_CUT = 0.02  # cells with less cut away are left alone


@dataclass(frozen=True)
class PlaneBounds:
    """What the thumbnail says about one plane of the frame (levels, 0-255).

    The plane is ``frame @ weights`` (an RGB combination: R, G, B or Y, Cb, Cr); over a
    grid of ``low.shape`` cells (box means), optionally through an orthonormal DCT,
    every quantity lies in [low, high] (+-inf where nothing is known). A change of
    the plane by 1 is a change of the RGB pixel by ``direction``."""

    weights: np.ndarray  # (3,)
    direction: np.ndarray  # (3,)
    dct: bool
    low: np.ndarray  # (gh, gw)
    high: np.ndarray


def box_matrix(n: int, cells: int) -> np.ndarray:
    """(cells, n): row i averages the pixels whose centres lie in (i n / cells, (i + 1) n / cells],
    as Pillow's BOX resize does (the thumbnails' cells are made with it)."""
    num = (2 * np.arange(n) + 1) * cells  # centre * cells / n, as the fraction num / (2 n)
    cell = np.clip(-(-num // (2 * n)) - 1, 0, cells - 1)
    a = np.zeros((cells, n))
    a[cell, np.arange(n)] = 1.0
    return a / np.maximum(a.sum(1, keepdims=True), 1.0)


def project(frame: Tensor, keep: Tensor, bounds: list[PlaneBounds], iterations: int = ITERATIONS) -> Tensor:
    """``frame`` (3, H, W) in [0, 1] with its cut-away part (``keep`` (1, H, W) < 0.5)
    moved into agreement with ``bounds``; the kept part is returned unchanged."""
    cut = (keep[0].numpy() < 0.5).astype(np.float64)
    if not cut.any() or not bounds:
        return frame
    img = frame.permute(1, 2, 0).double().numpy() * 255
    h, w, _ = img.shape
    out = img.copy()
    cells: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # planes share a grid
    for b in bounds:
        if b.low.shape not in cells:
            gh, gw = b.low.shape
            ay, ax = box_matrix(h, gh), box_matrix(w, gw)
            cells[b.low.shape] = ay, ax, ay @ cut @ ax.T
        ay, ax, share = cells[b.low.shape]
        plane = out @ b.weights
        start = plane.copy()
        for _ in range(iterations):
            means = ay @ plane @ ax.T
            q = dctn(means, norm="ortho") if b.dct else means
            r = np.clip(q, b.low, b.high) - q  # zero where already inside
            if not r.any():
                break
            r = idctn(r, norm="ortho") if b.dct else r
            step = np.clip(r / np.maximum(share, MIN_SHARE), -MAX_STEP, MAX_STEP) * (share > MIN_CUT)
            plane += cv2.resize(step, (w, h), interpolation=cv2.INTER_LINEAR) * cut
        out += (plane - start)[..., None] * b.direction[None, None, :]
    return torch.from_numpy(np.clip(out, 0, 255) / 255).permute(2, 0, 1).to(frame.dtype)


def thumbnail_bounds(message: bytes, frame: tuple[int, int]) -> list[PlaneBounds]:
    """The bounds a decoded thumbnail message (as ``codec.decode_message`` takes it) puts on
    a frame of ``frame`` (W, H): the grid's coefficient intervals. WebP, AVIF and RGB565
    thumbnails give none: a WebP or AVIF pixel is not its cell's mean to within a known step (its
    chroma is subsampled, its error unbounded), and holding the recovery to its pixels,
    even loosely, made it worse."""
    from clrnet.payload import codec, grid

    if len(message) > codec.TINY_MAX:
        return []
    reading = grid.read_grid(message, *frame)
    return [PlaneBounds(grid.YCC[k], grid.RGB[:, k], True, reading.low[k], reading.high[k]) for k in range(3)]
