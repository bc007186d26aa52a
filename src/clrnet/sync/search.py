"""Scale hypotheses: from the ruler's best intervals per axis to the (working level,
scale) pairs at which a fragment may have been protected."""

from __future__ import annotations

import torch
from torch import Tensor

from clrnet.sync.frame import LEVELS, frame_size, working_size

ASPECTS = (1.0, 1.5, 2 / 3, 4 / 3, 3 / 4, 16 / 9, 9 / 16)  # W / H of the originals the pilots search for
ASPECT_SNAP = 0.015  # a frame read within 1.5 % of a common aspect is also tried at that aspect
SNAP_FROM_LEVEL = 1024  # (from this working level: smaller frames drift too little to lose the pilots)

Hypotheses = list[tuple[float, tuple[float, float]]]


def top_hypotheses(corr: Tensor, hyps: Tensor, k: int) -> Hypotheses:
    """The ``k`` best (score, (lo, hi)) of one axis, skipping near-duplicates."""
    order = torch.topk(corr, min(2000, corr.numel())).indices
    out: Hypotheses = []
    for i in order.tolist():
        lo, hi = float(hyps[i, 0]), float(hyps[i, 1])
        if all(max(0.0, min(hi, b) - max(lo, a)) / (max(hi, b) - min(lo, a)) < 0.7 for _, (a, b) in out):
            out.append((float(corr[i]), (lo, hi)))
        if len(out) == k:
            break
    return out


def scale_hypotheses(size: tuple[int, int], hx: Hypotheses, hy: Hypotheses, most: int = 5, most_below: int = 6,
                     pairs: int = 3) -> list[tuple[int, float, int, int]]:
    """(level, scale) pairs to search the pilots at for a fragment of ``size`` (h, w), most
    likely first: the fragment already at working scale (an original of exactly a level's
    size); then the original's size implied by both axes of each of the ruler's ``pairs``
    best boxes (two per axis), and so its working frame and the scale from the fragment to
    it; then for each of the ruler's axis hypotheses (one axis is enough: the other may be
    wrong) and each common aspect ratio the same; after these, up to ``most_below`` of the
    same at the one to three levels below (an enlarged copy, the boxes' first).
    Returns (level, scale, frame W, H)."""
    h, w = size
    fixed = [(lv, 1.0, lv, lv) for lv in LEVELS if max(h, w) <= lv <= 3 * max(h, w)]
    implied: list[tuple[int, float, int, int]] = []

    def new(lv: int, sc: float, taken: list[tuple[int, float, int, int]]) -> bool:
        # a scale within reach of one already taken adds nothing: 2 % where the search grid
        # spans +-1.2 %, 0.6 % above 1024 px, where the first look spans +-0.6 %
        near = 0.02 if lv <= 1024 else 0.006
        return max(h, w) * sc <= lv and all(lv != o[0] or abs(sc / o[1] - 1) > near for o in taken)

    def imply(ow: float, oh: float) -> None:  # an original of ow x oh: its frame and scale
        fw, fh = working_size(max(round(ow), 1), max(round(oh), 1))
        if new(max(fw, fh), fw / ow, implied):
            implied.append((max(fw, fh), fw / ow, fw, fh))

    # both axes read: the original's aspect need not be guessed (a 5:4 photo has none of the common ones)
    boxes = sorted(((min(sx, sy), ax, ay) for sx, ax in hx[:2] for sy, ay in hy[:2]), key=lambda t: -t[0])
    for _, (x0, x1), (y0, y1) in boxes[:pairs]:
        imply(w / max(x1 - x0, 1e-3), h / max(y1 - y0, 1e-3))
    from_boxes = len(implied)
    hyps = sorted([(s, "x", iv) for s, iv in hx] + [(s, "y", iv) for s, iv in hy], key=lambda t: -t[0])
    for _, axis, (lo, hi) in hyps:
        extent = (w if axis == "x" else h) / max(hi - lo, 1e-3)
        for aspect in ASPECTS:
            imply(*((extent, extent / aspect) if axis == "x" else (extent * aspect, extent)))
    implied = implied[:from_boxes + most]
    # a copy enlarged after the crop implies a larger original than the one that was
    # protected, so its working frame may be one to three levels below the implied one
    below: list[tuple[int, float, int, int]] = []
    for lv, sc, fw, fh in implied:
        for ls in reversed(LEVELS[max(0, LEVELS.index(lv) - 3):LEVELS.index(lv)]):
            sw, sh = frame_size(ls, fw / fh)
            if new(ls, sc * sw / fw, fixed + implied + below):
                below.append((ls, sc * sw / fw, sw, sh))
    return fixed + [o for o in implied if new(o[0], o[1], fixed)] + below[:most_below]
