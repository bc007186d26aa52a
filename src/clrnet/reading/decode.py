"""Decoding at one working level: refine the box with the pilots, read the soft bits,
decode the payload (every layout the frame may carry), and read the window for edits
against the codeword the payload implies."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from clrnet.core.geometry import Box
from clrnet.core.image import luminance
from clrnet.payload import channel, codec
from clrnet.payload.scheme import PayloadScheme
from clrnet.payload.size_field import size_field_bytes, unpack_size
from clrnet.reading.pilots import refine
from clrnet.sync.align import resample
from clrnet.sync.frame import candidates, frame_size
from clrnet.sync.search import ASPECT_SNAP, ASPECTS, SNAP_FROM_LEVEL
from clrnet.tamper.detect import edited, edited_learned, evidence_for
from clrnet.tamper.segment import BEST_PATH, EXACT, N_FEATURES, Evidence, TamperNet, with_thumbnail

EDITED_PILOT_SHARE = 0.5  # share of the pilot threshold at which the payload is still tried


@dataclass
class Decoded:
    """What the payload decoding found."""

    level: int
    frame: tuple[int, int]  # working (W, H)
    box: Box  # refined box
    message: bytes | None
    thumbnail: Image.Image | None
    pilot: float
    window: Tensor  # (3, h, w) the fragment resampled onto the working grid
    origin: tuple[int, int]  # (y0, x0) of the window in the working frame
    verified: bool = False  # the pilots (and the payload if decoded) confirm the box
    # (h, w) over the window: where the protection is intact (1) or missing (0), checked against
    # the codeword the decoded payload implies (if its checksum failed but the pilots hold: the
    # decoder's best path, coded again); empty when neither holds
    presence: Tensor = field(default_factory=lambda: torch.zeros(0))
    codeword: Tensor | None = None  # the coded bits the decoded payload was sent as
    # (h, w, bool) over the window: where the photo was edited after protection (a region
    # without the protection); empty with ``presence``
    edited: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))
    prominence: float = 0.0  # how far the pilots' peak stands out among nearby shifts
    # the block-level features the edits were read from (``tamper.segment``); None without presence
    evidence: Evidence | None = None
    core: float = 0.0  # the core's statistic where it verified the box (0: not read)


@dataclass(frozen=True)
class Decoder:
    """Decodes a box at a working level: the channel (``scheme``), the pilots' thresholds
    (statistic ``pilot_presence``, peak ``pilot_prominence``) and the tamper network (a
    loader: None reads edits by the presence map's thresholds)."""

    scheme: PayloadScheme
    pilot_presence: float
    pilot_prominence: float
    tamper_net: Callable[[], tuple[TamperNet, float] | None]

    def decode_at(self, received: Tensor, box: Box, level: int, hard: bool = False,
                  payload_only: bool = False, anchored: bool = False) -> Decoded:
        """Try one working level: refine the box, read the soft bits, decode. ``hard``: read
        the payload even where the pilot search finds no clear peak (a large edit flattens
        it; the payload's checksum then decides); ``payload_only``: only the checksum
        verifies (the pilots alone do not, and nothing is read for edits without it);
        ``anchored``: the box is known (the core verified it): it moves only to a clear pilot
        peak, and the payload is read as with ``hard``.

        The frame's shape follows from the box (the ruler reads each side to 1/256 of the
        frame, so the aspect to about 1 %); where a common aspect lies within ``ASPECT_SNAP``
        of it and the frame read first does not verify, that one is tried too (from
        ``SNAP_FROM_LEVEL``: at 2048 px a 0.6 % error in the frame's height drifts further
        across a crop than the carrier survives)."""
        _, h, w = received.shape
        bw, bh = max(box[2] - box[0], 1e-3), max(box[3] - box[1], 1e-3)
        aspect = (w / bw) / (h / bh)
        frames = [frame_size(level, aspect)]
        common = min(ASPECTS, key=lambda a: abs(math.log(a / aspect)))
        if level >= SNAP_FROM_LEVEL and abs(math.log(common / aspect)) < ASPECT_SNAP and \
                frame_size(level, common) != frames[0]:
            frames.append(frame_size(level, common))
        first: Decoded | None = None
        for fw, fh in frames:
            d = self.decode_frame(received, box, level, fw, fh, hard, payload_only, anchored)
            if d.verified:
                return d
            first = first or d
        assert first is not None
        return first

    def decode(self, received: Tensor, box: Box) -> Decoded | None:
        """Decode the payload, trying the plausible working levels in turn."""
        _, h, w = received.shape
        implied = max(w / max(box[2] - box[0], 1e-3), h / max(box[3] - box[1], 1e-3))
        first: Decoded | None = None
        for level in candidates(implied):
            d = self.decode_at(received, box, level)
            if d.message is not None:
                return d
            first = first or d
        return first

    def _first_message(self, rungs: list[channel.Layout], softs: dict[int, channel.Soft], listed: bool
                       ) -> tuple[bytes | None, channel.Layout | None]:
        for rung in rungs:
            message = self.scheme.decode_soft(softs[rung.reps], rung, listed)
            if message is not None:
                return message, rung
        return None, None

    def decode_frame(self, received: Tensor, box: Box, level: int, fw: int, fh: int, hard: bool,
                     payload_only: bool = False, anchored: bool = False) -> Decoded:
        """:meth:`decode_at` in a working frame of ``fw`` x ``fh``."""
        scheme = self.scheme
        layout = scheme.layout(fw, fh)
        search = math.ceil(2.5 * max(fw, fh) / 256) + 2
        refined, prom = refine(received, box, layout, search, self.pilot_prominence)
        if anchored:
            hard = True
            if prom < self.pilot_prominence:  # a chance peak of pilots the downscale took away
                refined = box
        if prom < self.pilot_prominence - 1.5 and not hard:  # nothing near this box: not our frame
            win, y0, x0 = resample(received, refined, fw, fh)
            return Decoded(level, (fw, fh), refined, None, None, 0.0, win, (y0, x0), prominence=prom)
        if prom >= self.pilot_prominence:  # a clear peak: sharpen it where it is
            refined, _ = refine(received, refined, layout, 3, self.pilot_prominence)
        win, y0, x0 = resample(received, refined, fw, fh)
        soft = channel.demodulate(layout, luminance(win[None])[0, 0], y0, x0, win)
        message = thumb = coded = None
        presence = torch.zeros(0)
        snr = 0.0
        ev = skip = None  # the evidence for edits and the window's unreadable parts, with ``presence``
        # below the pilots' threshold a large edit may have pulled them down: the payload is
        # still tried (its checksum, not the pilots, then confirms the box)
        if soft.pilot >= self.pilot_presence * EDITED_PILOT_SHARE:
            listed = soft.pilot >= self.pilot_presence
            lum = luminance(win[None])[0, 0]
            # the layouts this frame's photos may carry, most capacity first; those of one
            # number of blocks per bit share their soft bits
            rungs = scheme.layouts(fw, fh)
            by_reps: dict[int, channel.Layout] = {}
            for rung in rungs:
                by_reps.setdefault(rung.reps, rung)
            softs = {reps: soft if reps == layout.reps else channel.demodulate(rung, lum, y0, x0, win)
                     for reps, rung in by_reps.items()}
            message, found_in = self._first_message(rungs, softs, listed)
            if message is None:  # an edit may drown the payload: leave out where the pilots are missing
                erase = edited(*channel.presence_map(layout, soft.block_scores, y0, x0, None), win, layout)
                if bool(erase.any()):
                    cut = {reps: channel.demodulate(rung, lum, y0, x0, win, erase) for reps, rung in by_reps.items()}
                    message, found_in = self._first_message(rungs, cut, listed)
            layout = found_in or layout
            p = scheme.plan(layout)
            if message is not None:
                # the codeword the payload implies: where the window agrees with it
                coded = scheme.encode_message(message, layout)
                presence, snr = channel.presence_map(layout, soft.block_scores, y0, x0, coded)
                ev, skip = evidence_for(layout, soft, y0, x0, coded, win, snr, EXACT)
                read = win  # the pixels the evidence was read from, before the size field may move the frame
                net = self.tamper_net()
                # the evidence is whole unless the network that reads it reads less (the shipped one)
                whole = net is None or net[0].features >= N_FEATURES
                try:
                    k = size_field_bytes(p.message)
                    tw, th = unpack_size(message[:k], level)
                    if (tw, th) != (fw, fh):
                        x0, y0, x1, y1 = refined
                        refined = (x0 * fw / tw, y0 * fh / th, x1 * fw / tw, y1 * fh / th)
                        fw, fh = tw, th
                        win, y0, x0 = resample(received, refined, fw, fh)
                    message = message[k:]
                    thumb = codec.decode_message(message, p.message - k, frame=(fw, fh))
                    if whole:
                        ev = with_thumbnail(ev, read, thumb)
                except (ValueError, struct.error):
                    message = thumb = None
        # the pilots hold at this box and stand out among nearby shifts, or the payload's
        # checksum confirms it (a box tried at many shifts and levels can reach a pilot
        # statistic of 4-5 by chance; it cannot also pass the CRC)
        piloted = soft.pilot >= self.pilot_presence and prom >= self.pilot_prominence and not payload_only
        verified = piloted or message is not None
        if message is None and piloted:
            # the checksum failed but the pilots hold: the decoder's best path, coded again, is
            # the codeword in all but a few bits, and the window is checked against that for edits
            best = scheme.best_codeword_of(soft, fw, fh)
            presence, snr = channel.presence_map(layout, soft.block_scores, y0, x0, best)
            ev, skip = evidence_for(layout, soft, y0, x0, best, win, snr, BEST_PATH)
        elif message is None:
            presence = torch.zeros(0)
            ev = skip = None
        if presence.numel() and presence.shape != win.shape[-2:]:  # the size field moved the frame: same pixels
            presence = F.interpolate(presence[None, None], size=win.shape[-2:], mode="bilinear",
                                     align_corners=False)[0, 0]
        where = torch.zeros(0, dtype=torch.bool)
        if presence.numel():
            net = self.tamper_net()
            where = edited(presence, snr, win, layout) if net is None or ev is None or skip is None \
                else edited_learned(net, ev, skip, win.shape[-2:])
        return Decoded(level, (fw, fh), refined, message, thumb, soft.pilot, win, (y0, x0), verified, presence,
                       coded if message is not None else None, where, prom, ev)
