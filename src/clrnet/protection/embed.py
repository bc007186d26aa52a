"""Embedding: the change that protects a photo, drawn at its working frame.

Three signals shaped by the JND map: the ruler (``sync.ruler``), which tells a
recipient where a fragment sat; the core (``payload.core``), low-frequency pilots that
confirm it after a downscale the payload does not outlive; and the payload
(``payload.scheme``), which tells what the whole photo looked like. The change is carried
to the photo's own resolution and added there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from clrnet.core.geometry import resize
from clrnet.core.image import local_std, luminance
from clrnet.core.jnd import jnd_map
from clrnet.payload import channel
from clrnet.payload.core import Core
from clrnet.payload.scheme import PayloadScheme
from clrnet.protection import margin
from clrnet.protection.config import ProtectionConfig
from clrnet.protection.fidelity import keep_ssim
from clrnet.sync.frame import working_size
from clrnet.sync.ruler import Ruler


@dataclass(frozen=True)
class Embedder:
    """The change (ruler + core + payload, JND-shaped) for one key variant's patterns."""

    cfg: ProtectionConfig
    ruler: Ruler
    scheme: PayloadScheme
    core: Core | None = None

    def ruler_pattern(self, width: int, height: int) -> Tensor:
        u = (torch.arange(width, dtype=torch.float64) + 0.5) / width
        v = (torch.arange(height, dtype=torch.float64) + 0.5) / height
        return ((self.ruler.profile(u, "x")[None, :] + self.ruler.profile(v, "y")[:, None]) / math.sqrt(2)).float()

    def jnd(self, photo: Tensor) -> Tensor:
        """The JND map (1, 1, H, W) in levels of a batch of one photo (1, 3, H, W)."""
        return jnd_map(photo.float(), self.cfg.jnd_floor, self.cfg.jnd_slope, self.cfg.jnd_cap)

    def signal(self, work: Tensor, bits: Tensor | None = None, with_core: bool = True) -> Tensor:
        """The change (1, H, W) in [0, 1] units for a working-frame photo (3, H, W),
        carrying its own thumbnail or the given coded ``bits`` (either layout's, told by
        their number); ``with_core=False``: the payload keeps the core's share."""
        _, h, w = work.shape
        layout = self.scheme.layout(w, h)
        if bits is None:
            bits = self.scheme.coded_bits(work, layout)
        elif bits.numel() != layout.n_bits and self.scheme.has_robust(max(w, h)):
            layout = self.scheme.layout(w, h, robust=True)
        m = self.jnd(work[None])[0, 0]
        share = self.cfg.ruler_share
        cored = with_core and self.core is not None and self.cfg.carries_core(max(w, h))
        core = self.cfg.core_share if cored else 0.0
        rest = math.sqrt(1 - share ** 2 - core ** 2)
        payload = channel.embed(layout, bits)
        if self.cfg.host_boost > 0:
            amp = m * rest / 255
            payload = payload * channel.host_boost(layout, luminance(work[None])[0, 0], amp, bits,
                                                   self.cfg.host_boost)
        pattern = share * self.ruler_pattern(w, h) + rest * payload
        if cored:
            assert self.core is not None
            pattern = pattern + core * self.core.pattern(w, h)
        delta = m * pattern
        # the boost may exceed the JND locally: flat neighbourhoods (m near the floor) are
        # brought back under it, textured ones may take up to twice the JND
        delta = self.cap_to_jnd(delta, work, m)
        rms = float(delta.pow(2).mean().sqrt())
        if rms > self.cfg.max_rms:
            delta = delta * (self.cfg.max_rms / rms)
        return (delta / 255)[None]

    def cap_to_jnd(self, delta: Tensor, photo: Tensor, m: Tensor | None = None) -> Tensor:
        """Scale a change (H, W) in levels down where its 7 x 7 local rms exceeds what
        the photo (3, H, W) hides there: the JND in flat neighbourhoods, up to twice it in
        texture (the host boost may ask for more)."""
        if m is None:
            m = self.jnd(photo[None])[0, 0]
        local = local_std(delta[None, None], 7)[0, 0].clamp_min(1e-6)
        allowed = m * (1 + ((m - 2) / 4).clamp(0, 1))
        return delta * (allowed / local).clamp(max=1.0)

    @torch.no_grad()
    def change(self, image: Tensor, bits: Tensor | None = None) -> Tensor:
        """The change (1, H, W) protecting a photo (3, H, W) at its own size: drawn at the
        working frame, carrying the photo's thumbnail (or the coded ``bits``)."""
        _, h, w = image.shape
        ww, wh = working_size(w, h)
        work = resize(image[None].float(), wh, ww)[0]
        rungs = self.scheme.layouts(ww, wh)
        if bits is not None or len(rungs) == 1:
            return self.at_size(image, self.signal(work, bits))
        # a large photo: its payload is checked on the path it will take (``margin``), in
        # the layout of most capacity first, down to the robust layout; where even that fails,
        # the payload takes the core's share too (taken unchecked)
        cored = self.core is not None and self.cfg.carries_core(max(ww, wh))
        for layout in rungs:
            bits = self.scheme.coded_bits(work, layout)
            delta = self.at_size(image, self.signal(work, bits))
            if (layout is rungs[-1] and not cored) or margin.survives(image + delta, layout, bits,
                                                                       self.scheme.decode_soft):
                return delta
        return self.at_size(image, self.signal(work, bits, with_core=False))

    def at_size(self, image: Tensor, delta: Tensor) -> Tensor:
        """A working-frame change (1, h, w) carried to ``image``'s own size (3, H, W)."""
        _, h, w = image.shape
        if delta.shape[-2:] != (h, w):
            delta = F.interpolate(delta[None], size=(h, w), mode="bicubic", align_corners=False)[0]
            # the JND once more at the photo's own resolution: a flat strip a few pixels
            # wide (a border, a thin sky) that the working frame blurred into its texture
            delta = self.cap_to_jnd(delta[0] * 255, image)[None] / 255
        return keep_ssim(image, delta, self.cfg.min_ssim)
