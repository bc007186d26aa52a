"""The ruler: a fixed position code in the protected image, and its matched-filter readout.

The code is separable, P(x, y) = a (r_x(x) + r_y(y)) / sqrt(2), the same in the
three colour channels (luminance survives JPEG best). Each 1-D ruler r is a sum
of cosines with integer frequencies in a mid band (``band`` cycles per frame,
random seeded phases): low frequencies drown in photo content, high ones die in
JPEG. Because r is defined for every real x, a crop that keeps [x0, x1] and is
resized to the native width N shows r(x0 + u (x1 - x0)), u in [0, 1].

The readout whitens the received luminance (second difference along the axis:
photo content has a 1/f spectrum), averages it over rows (for x) and columns
(for y) with weights that favour calm regions, and correlates the profiles with the whitened expected profile of every hypothesis
(x0, x1) on a 1/256 grid. The best hypothesis is the box; its normalised
correlation says how clearly the ruler is there (an unprotected photo shows
none). No learned parameters; the learned localizer C of the paper is the other
option (``localizer.kind``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clrnet.core.image import plain_cpu


class Ruler(nn.Module):
    """The two 1-D rulers, evaluable at any normalised coordinate."""

    def __init__(self, band: tuple[int, int] = (20, 48), seed: int = 1234) -> None:
        super().__init__()
        lo, hi = band
        if not 0 < lo <= hi:
            raise ValueError(f"ruler band must satisfy 0 < lo <= hi, got {band}")
        g = torch.Generator().manual_seed(seed)
        freqs = torch.arange(lo, hi + 1, dtype=torch.float64)
        self.register_buffer("freqs", freqs, persistent=False)
        self.register_buffer("phase_x", torch.rand(len(freqs), generator=g, dtype=torch.float64) * 2 * math.pi,
                             persistent=False)
        self.register_buffer("phase_y", torch.rand(len(freqs), generator=g, dtype=torch.float64) * 2 * math.pi,
                             persistent=False)

    def profile(self, coords: Tensor, axis: str) -> Tensor:
        """r_x or r_y at ``coords`` (any shape, normalised); unit mean power."""
        phase = self.phase_x if axis == "x" else self.phase_y
        arg = 2 * math.pi * coords.double()[..., None] * self.freqs + phase
        return torch.cos(arg).sum(-1) / math.sqrt(len(self.freqs) / 2)

    def code(self, height: int, width: int, amplitude: float, channels: int = 3) -> Tensor:
        """(1, C, H, W) additive code of root-mean-square ``amplitude``."""
        u = (torch.arange(width, dtype=torch.float64) + 0.5) / width
        v = (torch.arange(height, dtype=torch.float64) + 0.5) / height
        p = (self.profile(u, "x")[None, :] + self.profile(v, "y")[:, None]) / math.sqrt(2)
        return (amplitude * p).float().expand(1, channels, height, width).contiguous()


def _second_difference(p: Tensor) -> Tensor:
    return p[..., 2:] - 2 * p[..., 1:-1] + p[..., :-2]


def _unit(p: Tensor) -> Tensor:
    p = p - p.mean(-1, keepdim=True)
    return p / p.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _whiten(p: Tensor) -> Tensor:
    """Second difference, zero mean, unit norm along the last axis."""
    return _unit(_second_difference(p))


def _local_power(d: Tensor, window: int) -> Tensor:
    """Mean of d² over a ``window`` x ``window`` neighbourhood of (B, H, W), the part
    outside the picture left out (avg_pool2d without padding counted; OpenCV's box
    sums, much faster, where no gradient is needed)."""
    if not plain_cpu(d):
        return F.avg_pool2d((d * d)[:, None], window, 1, window // 2, count_include_pad=False)[:, 0]
    import cv2

    sq = (d * d).numpy()
    count = cv2.boxFilter(np.ones(sq.shape[1:], np.float32), -1, (window, window), normalize=False,
                          borderType=cv2.BORDER_CONSTANT)
    sums = [cv2.boxFilter(p, -1, (window, window), normalize=False, borderType=cv2.BORDER_CONSTANT) for p in sq]
    return torch.from_numpy(np.stack(sums) / count)


def weighted_profile(lum: Tensor, window: int = 9, eps: float = 1e-5, gain: Tensor | None = None) -> Tensor:
    """Whitened x-profile of (B, H, W) luminance: the second difference along x,
    averaged over rows with weights 1 / (local power + eps), so busy texture,
    where photo content swamps the code, counts less than calm regions. ``gain``
    (B, H, W), if given, is the code's expected local strength (a shaped ruler):
    the matched weight is gain / power."""
    d = _second_difference(lum)  # (B, H, W - 2)
    w = 1 / (_local_power(d, window) + eps)
    if gain is not None:
        w = w * gain[..., 1:-1]
    return _unit((w * d).sum(1) / w.sum(1))


def templates(ruler: Ruler, hyps: Tensor, u: Tensor, axis: str) -> Tensor:
    """The ruler's profile along each hypothesis (K, 2) = (start, end), sampled at the
    normalised positions ``u`` (N,): (K, N) doubles, equal to ``ruler.profile`` at
    ``start + u * (end - start)``. Hypotheses of one width share the samples' phase
    steps, so each width is one complex product (offsets x frequencies) @ (frequencies
    x samples) instead of K x N x frequencies cosines (seconds at every model load)."""
    phase = ruler.phase_x if axis == "x" else ruler.phase_y
    f = ruler.freqs
    widths, counts = torch.unique_consecutive(hyps[:, 1] - hyps[:, 0], return_counts=True)
    out = torch.empty(len(hyps), len(u), dtype=torch.float64)
    start = 0
    for width, n in zip(widths.tolist(), counts.tolist()):  # runs of one width (the readout lists them so)
        a = torch.polar(torch.ones(n, len(f), dtype=torch.float64), 2 * math.pi * hyps[start:start + n, :1] * f + phase)
        b = torch.polar(torch.ones(len(f), len(u), dtype=torch.float64), 2 * math.pi * f[:, None] * (u[None] * width))
        out[start:start + n] = (a @ b).real
        start += n
    return out / math.sqrt(len(f) / 2)


class RulerReadout(nn.Module):
    """Matched filter: received (B, 3, N, N) -> boxes (B, 4), score logits (B,), and the
    ruler strength (B,) (normalised correlation of the best hypothesis, min over x and y).

    The crop score S is high when the ruler is clearly present (strength above
    ``presence``) *and* the box differs from the whole frame (1 - IoU above
    ``crop_margin``); a photo without the ruler gets a low S and the whole frame.
    """

    def __init__(self, ruler: Ruler, size: int, min_side: float = 0.2, presence: float = 0.47,
                 crop_margin: float = 0.03, grid: int = 256) -> None:
        super().__init__()
        self.ruler, self.size = ruler, size
        self.presence, self.crop_margin = presence, crop_margin
        step = 1.0 / grid
        hyps = []
        n_steps = round(1 / step)
        for wi in range(round(min_side / step), n_steps + 1):
            w = wi * step
            for ai in range(0, n_steps - wi + 1):
                hyps.append((ai * step, ai * step + w))
        h = torch.tensor(hyps, dtype=torch.float64)
        u = (torch.arange(size, dtype=torch.float64) + 0.5) / size
        self.register_buffer("hyps", h.float(), persistent=False)
        for axis in ("x", "y"):
            self.register_buffer(f"t{axis}", _whiten(templates(ruler, h, u, axis)).float(), persistent=False)

    def correlate(self, x: Tensor, gain: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Normalised correlation of every hypothesis, for x (B, K) and y (B, K);
        ``gain`` (B, N, N): the code's expected local strength, if it is shaped."""
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"readout expects {self.size}x{self.size}, got {tuple(x.shape[-2:])}")
        lum = x.float().mean(1)  # (B, N, N)
        gt = None if gain is None else gain.transpose(1, 2)
        px, py = weighted_profile(lum, gain=gain), weighted_profile(lum.transpose(1, 2), gain=gt)
        return px @ self.tx.T, py @ self.ty.T

    def read(self, x: Tensor, gain: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        cx, cy = self.correlate(x, gain)
        sx, ix = cx.max(1)
        sy, iy = cy.max(1)
        hx, hy = self.hyps[ix], self.hyps[iy]
        boxes = torch.stack([hx[:, 0], hy[:, 0], hx[:, 1], hy[:, 1]], 1)
        strength = torch.minimum(sx, sy)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # IoU with the whole frame
        present = (strength - self.presence) / 0.03
        cut = (1 - area - self.crop_margin) / 0.01
        logits = torch.minimum(present, cut)  # S >= 0.5 iff both hold
        full = boxes.new_tensor([0.0, 0.0, 1.0, 1.0]).expand_as(boxes)
        boxes = torch.where((strength >= self.presence)[:, None], boxes, full)
        return boxes, logits, strength

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        boxes, logits, _ = self.read(x)
        return boxes, logits
