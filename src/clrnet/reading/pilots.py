"""The payload's pilots as the reader's verifier: refine a box to a fraction of a pixel
(offset and scale per axis), and search for a fragment over whole frames where the ruler
misread an axis."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from torch import Tensor

from clrnet.core.geometry import Box, window_of_resize
from clrnet.core.image import luminance
from clrnet.payload import channel
from clrnet.sync.align import resample
from clrnet.sync.search import Hypotheses, scale_hypotheses

STEPS = (0, 1, -1, 2, -2, 3, -3)  # the pilots' scale grid around the ruler's scale, in 0.4 % steps
COARSE = (0, 1.5, -1.5)  # the same, where a peak is needed before the grid (frames above 1024 px)


def search_excess(prominence: float, positions: int) -> float:
    """How far a search's peak stands above the maximum that chance alone reaches over
    ``positions`` places: the largest of P independent normal values is about sqrt(2 ln P)
    standard deviations, and a never-protected photo's pilot searches follow that.
    Prominence is in the same robust standard deviations."""
    return prominence - math.sqrt(2 * math.log(max(positions, 2)))


def refine(received: Tensor, box: Box, layout: channel.Layout, search: int, quarter_prominence: float
           ) -> tuple[Box, float]:
    """Refine ``box`` with the pilots: shifts measured in each quarter of the fragment give
    an offset and a scale per axis (where the whole window's peak reaches
    ``quarter_prominence``). Returns the box and the pilot prominence."""
    win, y0, x0 = resample(received, box, layout.width, layout.height)
    lum = luminance(win[None])[0, 0]
    h, w = lum.shape
    a = channel.matched(lum, win)
    s2 = 2 * search  # the window's pattern, built once: each quarter's is a slice of it
    pattern = channel.pilot_pattern(layout, y0 - search, x0 - search, h + s2, w + s2)
    dy, dx, whole = channel.pilot_shift(layout, a, y0, x0, search, pattern)
    pts = [(h / 2, w / 2, dy, dx, whole)]
    if h >= 96 and w >= 96 and whole >= quarter_prominence:  # per quarter: scale as well
        quarters = []
        for sy, sx in [(slice(a, b), slice(c, d)) for a, b in ((0, h // 2), (h // 2, h))
                       for c, d in ((0, w // 2), (w // 2, w))]:
            qy, qx, prom = channel.pilot_shift(layout, a[sy, sx], y0 + sy.start, x0 + sx.start, search,
                                               pattern[sy.start:sy.stop + s2, sx.start:sx.stop + s2])
            quarters.append(((sy.start + sy.stop) / 2, (sx.start + sx.stop) / 2, qy, qx, prom))
        good = [q for q in quarters if q[4] >= 4.0]
        if len(good) >= 2:
            pts = good
    x0n, y0n, x1n, y1n = box

    def fit(cs: list[float], ds: list[float]) -> tuple[float, float]:
        if len(set(cs)) < 2:
            return float(np.mean(ds)), 0.0
        b, a = np.polyfit(cs, ds, 1)
        return float(a), float(b)

    ay, by = fit([p[0] for p in pts], [p[2] for p in pts])
    ax, bx = fit([p[1] for p in pts], [p[3] for p in pts])

    # window pixel k (centre at frame coordinate org + k + 0.5) truly sits at + a + b k
    def axis(lo: float, hi: float, org: int, a: float, b: float, size: int) -> tuple[float, float]:
        # frame coordinate X -> X (1 + b) + a - b (org + 0.5)
        f = lambda v: (v * size * (1 + b) + a - b * (org + 0.5)) / size  # noqa: E731
        return f(lo), f(hi)

    x0n, x1n = axis(x0n, x1n, x0, ax, bx, layout.width)
    y0n, y1n = axis(y0n, y1n, y0, ay, by, layout.height)
    return (x0n, y0n, x1n, y1n), whole


def pilot_boxes(received: Tensor, hx: Hypotheses, hy: Hypotheses, square_layout: Callable[[int], channel.Layout],
                prominence: float, excess: float) -> list[tuple[float, Box, int]]:
    """Boxes found by the pilots alone: for each (level, scale) hypothesis the fragment
    brought to working scale is searched for over a whole square frame of that level (the
    pattern is anchored at the top-left corner, so the frame's other side does not matter;
    ``square_layout(level)`` gives its layout). A peak counts at ``prominence`` and
    ``excess`` over chance (:func:`search_excess`). Returns (score, box, level) for peaks
    that stand out, best first: the level is where the pilots peaked."""
    _, h, w = received.shape
    out: list[tuple[float, Box, int]] = []

    def search(lv: int, sc: float, fw: int, fh: int) -> tuple[float, Box] | None:
        sh, sw = max(8, round(h * sc)), max(8, round(w * sc))
        if sh > lv or sw > lv:
            return None
        ph, pw = min(sh, 256), min(sw, 256)
        # the central patch of the fragment at this scale, resized from the part it needs
        # only (a very long or a 12 MP photo is not resized whole per search)
        rgb, py, px = window_of_resize(received[None].float(), sh, sw,
                                       (max(0, (sh - 256) // 2), max(0, (sw - 256) // 2), ph, pw))
        y0, x0, prom = channel.pilot_search(square_layout(lv), luminance(rgb)[0, 0], rgb[0], (lv, lv))
        if prom < prominence or search_excess(prom, (lv - ph + 1) * (lv - pw + 1)) < excess:
            return None  # no peak, or one that chance reaches over this many positions
        y0, x0 = y0 - py, x0 - px
        # the frame's short side is unknown until the payload says (it carries the exact
        # size); a box in the square frame is refined once that is known
        if x0 < 0 or y0 < 0 or x0 + sw > fw or y0 + sh > fh:
            fw = fh = lv
        return prom, (x0 / fw, y0 / fh, (x0 + sw) / fw, (y0 + sh) / fh)

    for lv, sc0, fw, fh in scale_hypotheses((h, w), hx, hy):
        # the ruler's scale is good to 1-2 %; the carrier decorrelates when the drift across
        # the searched patch passes a pixel: a grid of 0.4 % steps over a patch <= 256 px.
        # Above 1024 px a peak at the ruler's own scale (+-0.6 %) is needed first, then the
        # grid around it takes the scale where the peak is highest (docs/design/reading.md)
        steps = [0] if sc0 == 1.0 else COARSE if lv > 1024 else STEPS
        hit: tuple[float, Box] | None = None
        for k in steps:
            hit = search(lv, sc0 * (1 + 0.004 * k), fw, fh)
            if hit is not None:
                break
        else:
            continue
        if sc0 != 1.0 and lv > 1024:
            for k in STEPS[1:]:
                other = search(lv, sc0 * (1 + 0.004 * k), fw, fh)
                if other is not None and other[0] > hit[0]:
                    hit = other
        out.append((*hit, lv))
        if hit[0] >= 2 * prominence:  # unmistakable: stop here
            return [out[-1]]
    out.sort(key=lambda t: -t[0])
    return out
