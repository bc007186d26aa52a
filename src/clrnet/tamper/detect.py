"""Where a decoded window was edited after protection: the presence map's thresholds
(``localize``) or the tamper network reading the block evidence (``segment``)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from clrnet.payload import channel
from clrnet.tamper.jpeg_trace import jpeg_quality
from clrnet.tamper.localize import regions, tamper_mask, thresholds_for, unreadable
from clrnet.tamper.segment import MIN_AREA, Evidence, TamperNet, edited_probability, evidence


def edited(presence: Tensor, snr: float, window: Tensor, layout: channel.Layout) -> Tensor:
    """Where in the window (h, w, bool) the presence map says it was edited (clipped parts
    skipped; stricter when the map is noisy: ``snr`` from ``channel.presence_map``, or the
    window carries the trace of a JPEG at quality 75 or below)."""
    skip = unreadable(window, layout.block * 8)
    if skip.shape != presence.shape:
        skip = F.interpolate(skip[None, None].float(), size=presence.shape, mode="nearest")[0, 0] > 0.5
    return tamper_mask(presence, skip, thresholds_for(snr, jpeg_quality(window)))


def evidence_for(layout: channel.Layout, soft: channel.Soft, y0: int, x0: int, bits: Tensor, win: Tensor,
                 snr: float, codeword: float) -> tuple[Evidence, Tensor]:
    """The evidence for edits in the window ``win`` read against ``bits`` (``segment``), and
    where the window is too clipped to carry anything (h, w, bool)."""
    skip = unreadable(win, layout.block * 8)
    return evidence(layout, soft.block_scores, y0, x0, bits, win, snr, jpeg_quality(win), codeword, skip), skip


def edited_learned(net: tuple[TamperNet, float], ev: Evidence, skip: Tensor, size: tuple[int, int]) -> Tensor:
    """Where in a window of ``size`` (h, w, bool) the tamper network calls it edited: its
    probability above the card's threshold, the evidence's unreadable parts ``skip`` left
    out, regions under ``segment.MIN_AREA`` dropped (the window resampled since the evidence
    was read, when the size field moved the frame: the same pixels)."""
    prob = edited_probability(net[0], ev)
    if prob.shape != tuple(size):
        prob = F.interpolate(prob[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        skip = F.interpolate(skip[None, None].float(), size=size, mode="nearest")[0, 0] > 0.5
    return regions((prob > net[1]) & ~skip, MIN_AREA)
