"""Propose -> verify -> decode: the ruler proposes boxes, the pilots verify them (or find
the fragment themselves over whole frames), the payload is decoded there and paints what
was cut away."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

import torch
from torch import Tensor

from clrnet.core.geometry import FULL_FRAME, Box, resize
from clrnet.payload.core import Core
from clrnet.payload.scheme import PayloadScheme
from clrnet.protection.config import ProtectionConfig
from clrnet.reading.decode import Decoded, Decoder
from clrnet.reading.pilots import pilot_boxes
from clrnet.sync.align import RulerInput
from clrnet.sync.frame import LEVELS, candidates, frame_size, smaller_levels, working_level, working_size
from clrnet.sync.ruler import RulerReadout
from clrnet.sync.search import top_hypotheses


@dataclass
class Reading:
    """What reading a received photo found."""

    protected: bool  # ruler and pilots agree on a box
    cropped: bool
    score: float  # crop score in [0, 1]
    box: Box
    strength: float  # ruler correlation of the chosen box
    # pilot statistic after alignment (about 0-4 without protection), or the core's where only
    # the core verified (a copy downscaled below 0.4 of its frame)
    pilot: float
    decoded: Decoded | None
    # the recovered frame, or how to make it: painted only when asked for (a layer beneath
    # that is then rejected, or a reading only counted, never needs it)
    recovery: Tensor | Callable[[], Tensor]

    @cached_property
    def recovered(self) -> Tensor:
        """(3, H, W) the whole working frame (the received frame if nothing was found)."""
        return self.recovery if isinstance(self.recovery, Tensor) else self.recovery()


class Readable(Protocol):
    """What the reader needs of a protection: its constants, the ruler's readout and its
    input, the channel, the decoder, and recovery from a decoding."""

    cfg: ProtectionConfig
    scheme: PayloadScheme
    decoder: Decoder
    ruler_input: RulerInput
    core: Core | None

    @property
    def readout(self) -> RulerReadout: ...

    def recover(self, d: Decoded) -> Tensor: ...


def jointly_verified(cfg: ProtectionConfig, tries: list[tuple[float, Decoded]], strength: float
                     ) -> tuple[Decoded | None, float]:
    """The last resort of a search that found nothing: a box the ruler proposed strongly
    (strength >= ``cfg.joint_strength``) where the pilots fall just short of either
    threshold, but not of both together (after JPEG and a downscale the pilots of a small
    crop come out at 4-5.5 where the ruler's box is right). Returns the best such decoding
    (most pilot evidence), marked verified, and its ruler strength."""
    ok = [(s, d) for s, d in tries if s >= cfg.joint_strength and min(d.pilot, d.prominence) >= cfg.joint_floor
          and d.pilot + d.prominence >= cfg.joint_sum]
    if not ok:
        return None, strength
    s, d = max(ok, key=lambda t: t[1].pilot + t[1].prominence)
    return replace(d, verified=True), s


def not_found(received: Tensor, strength: float) -> Reading:
    _, h, w = received.shape
    ww, wh = working_size(w, h)
    return Reading(False, False, 0.0, FULL_FRAME, strength, 0.0, None, resize(received[None], wh, ww)[0])


def _above(best: tuple[float, Box], size: tuple[int, int], levels: int, smallest: float
           ) -> list[tuple[float, Box, int]]:
    """The ruler's best box (and the whole photo, if that is another) at each working level
    above those the box's implied size tries, up to where the received copy is ``smallest`` of
    that level's frame: a copy downscaled below its working frame."""
    s, box = best
    w, h = size
    out = []
    for b in dict.fromkeys([box, FULL_FRAME]):
        implied = max(w / max(b[2] - b[0], 1e-3), h / max(b[3] - b[1], 1e-3))
        tried = candidates(implied)[:levels + 1]
        out += [(s, b, lv) for lv in LEVELS if lv > max(tried[:2]) and implied >= smallest * lv]
    return out


def core_verified(p: Readable, received: Tensor, best: tuple[float, Box]) -> tuple[Decoded | None, float]:
    """The core's word where pilots and payload gave none (a copy downscaled below half its
    working frame keeps neither): the ruler's best box and the whole photo, at every level
    the received size allows (down to ``core_downscaled_to`` of the frame, up to an enlargement
    of 4), most likely first. The first where the core's statistic reaches ``core_presence``
    (``core_joint`` at the ruler's box where the ruler reads ``core_joint_strength``) is decoded
    there (the payload may still hold) and counts as verified."""
    cfg, core = p.cfg, p.core
    if core is None:
        return None, best[0]
    s, box = best
    _, h, w = received.shape
    for b in dict.fromkeys([box, FULL_FRAME]):
        bw, bh = max(b[2] - b[0], 1e-3), max(b[3] - b[1], 1e-3)
        implied = max(w / bw, h / bh)
        for level in candidates(implied):
            if not cfg.carries_core(level) or not cfg.core_downscaled_to * level <= implied <= 4 * level:
                continue
            fw, fh = frame_size(level, (w / bw) / (h / bh))
            r = core.read(received, b, fw, fh, cfg.core_search)
            if r.z >= (cfg.core_joint if b == box and s >= cfg.core_joint_strength else cfg.core_presence):
                d = p.decoder.decode_at(received, r.box, level, anchored=True)
                return replace(d, verified=True, core=r.z), s
    return None, s


def read(p: Readable, received: Tensor, top: int = 3, deep: bool = True, levels: int = 2,
         min_strength: float = 0.0, search: bool | None = None, joint: bool = True,
         payload_below: float = 0.0) -> Reading:
    """Localise, verify and decode: the ruler proposes its ``top`` boxes per axis, the pilots
    verify them (and refine the first that holds), the payload is decoded there and paints
    the cut-away part; when none holds, the ruler's boxes are tried again with ruler and
    pilots together (``jointly_verified``). ``deep``: before that, read the whole photo for
    its payload; ``search`` (by default as ``deep``): and search the pilots over whole
    frames; ``levels``: working levels tried per box (the size the box implies, then the
    next larger one: downscaling is common; for the ruler's best box also the next smaller
    one: an upscaled copy); a ruler weaker than ``min_strength`` is taken for no protection
    without trying the pilots; ``joint``: whether the last resort may be taken (not where
    another pattern explains the ruler); ``payload_below``: a ruler weaker than this reads at
    chance, so only a decoded payload counts there: of its boxes (chance ones) only the best is
    tried, and the pilots' search takes only a box whose payload's checksum passes."""
    cfg = p.cfg
    cx, cy = p.readout.correlate(*p.ruler_input.of(received))
    hx = top_hypotheses(cx[0], p.readout.hyps, top)
    hy = top_hypotheses(cy[0], p.readout.hyps, top)
    boxes = sorted(((min(sx, sy), (ax[0], ay[0], ax[1], ay[1])) for sx, ax in hx for sy, ay in hy), reverse=True)
    _, h, w = received.shape
    strength = boxes[0][0]
    if strength < min_strength:
        return not_found(received, strength)
    payload_only = strength < payload_below

    def first_verified(cands: list[tuple[float, Box]] | list[tuple[float, Box, int]],
                       tried: list[tuple[float, Decoded]] | None = None) -> tuple[Decoded | None, float]:
        for i, (s, box, *found_at) in enumerate(cands):
            implied = max(w / (box[2] - box[0]), h / (box[3] - box[1]))
            tries = candidates(implied)[:levels + (i == 0)]
            for level in [*found_at, *(lv for lv in tries if lv not in found_at)]:
                d = p.decoder.decode_at(received, box, level, payload_only=payload_only)
                if d.verified:
                    return d, s
                if tried is not None:
                    tried.append((s, d))
        return None, strength

    # the ruler's boxes first (cheap); the pilots' own search over whole frames when none
    # holds (the ruler misread an axis); last, the ruler's boxes tried again jointly
    ruler_tries: list[tuple[float, Decoded]] = []
    # at chance only the ruler's best box is worth a try (a layer beneath that covers the photo)
    found, strength = first_verified(boxes[:1] if payload_only else boxes, ruler_tries)
    if found is None and deep:
        # the whole photo as it is, read for its payload even without a clear pilot peak: an
        # uncropped photo with a large edit (its checksum decides); at its own level, then the
        # next smaller one (an upscaled copy whose edit weakened the ruler)
        own = working_level(w, h)
        for level in (own, *smaller_levels(own)[:1]):
            d = p.decoder.decode_at(received, FULL_FRAME, level, hard=True, payload_only=payload_only)
            if d.verified:
                found = d
                break
    if found is None and deep and cfg.downscaled_to < 1.0:
        for s, box, level in _above(boxes[0], (w, h), levels, cfg.downscaled_to):
            d = p.decoder.decode_at(received, box, level, payload_only=payload_only)
            if d.verified:
                found, strength = d, s
                break
    if found is None and deep and not payload_only:
        found, strength = core_verified(p, received, boxes[0])
    if found is None and (deep if search is None else search):
        found, strength = first_verified(pilot_boxes(received, hx, hy, lambda lv: p.scheme.layout(lv, lv),
                                                     cfg.pilot_search_prominence, cfg.pilot_search_excess))
    if found is None and joint and not payload_only:  # cheap (the ruler's tries are made): beneath a removed protection too
        found, strength = jointly_verified(cfg, ruler_tries, strength)
    if found is None:
        return not_found(received, strength)
    bx = found.box
    clipped = (max(bx[0], 0.0), max(bx[1], 0.0), min(bx[2], 1.0), min(bx[3], 1.0))
    cut = 1 - (clipped[2] - clipped[0]) * (clipped[3] - clipped[1])
    score = float(torch.sigmoid(torch.tensor((cut - cfg.crop_margin) / 0.01)))
    cropped = score >= 0.5
    return Reading(True, cropped, score, clipped if cropped else FULL_FRAME, strength, max(found.pilot, found.core), found,
                   lambda: p.recover(found))
