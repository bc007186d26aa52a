"""Protection v2: protect and inspect a photo at its own working resolution.

``protect`` draws, at the working frame of the photo (``frame``), two fixed
signals shaped by the JND map (``jnd``): the ruler (``networks.ruler``), which
tells a recipient where a fragment sat, and the payload (``payload``), which
tells what the whole photo looked like. The change is carried to the photo's
own resolution and added there.

``inspect`` reads the ruler (a box to about 1/256 of the frame), then for each
plausible working frame resamples the fragment onto it, refines the box with
the payload's pilots to a fraction of a pixel, and decodes the payload; the
decoded thumbnail paints what was cut away.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from clrnet.core.geometry import FULL_FRAME, Box, resize, window_of_resize
from clrnet.sync.ruler import Ruler, RulerReadout
from clrnet.payload import channel, codec, ecc, inner
from clrnet.recovery.border import continue_border
from clrnet.recovery.consistency import project, thumbnail_bounds
from clrnet.recovery.paint import distance, paint, upsample
from clrnet.recovery.refine import RefineNet, load_refine, refine_frame
from clrnet.tamper.jpeg_trace import jpeg_quality
from clrnet.tamper.localize import regions, tamper_mask, thresholds_for, unreadable
from clrnet.tamper.segment import (
    BEST_PATH, EXACT, MIN_AREA, N_FEATURES, Evidence, TamperNet, edited_probability, evidence, load_tamper,
    with_thumbnail
)
from clrnet.protection.fidelity import keep_ssim, quantize
from clrnet.protection import margin
from clrnet.reading.impulses import repair_impulses
from clrnet.sync.frame import LEVELS, candidates, frame_size, smaller_levels, working_level, working_size
from clrnet.core.jnd import jnd_map
from clrnet.core.image import local_std, luminance
from clrnet.protection.key import ProtectionKey
from clrnet.protection.config import ProtectionConfig
from clrnet.payload.size_field import pack_size, pack_size_short, size_field_bytes, unpack_size


ASPECTS = (1.0, 1.5, 2 / 3, 4 / 3, 3 / 4, 16 / 9, 9 / 16)  # W / H of the originals the pilots search for
ASPECT_SNAP = 0.015  # a frame read within 1.5 % of a common aspect is also tried at that aspect
SNAP_FROM_LEVEL = 1024  # (from this working level: smaller frames drift too little to lose the pilots)
# smaller ones carry it to 1/127 of the long side in 1 byte: the ruler alone misreads the
# frame's shape when an earlier protection lies beneath


# candidates of the list Viterbi decoder a short (CRC-24) payload is checked against: a
# random word passes one of them about once in 500 000 tries
LIST_SIZE = 32
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


class Protector:
    """The designed protection (ruler + payload, JND-shaped) at a photo's working frame."""

    def __init__(self, cfg: ProtectionConfig | None = None, name: str = "clrnet-v2",
                 key: ProtectionKey | None = None) -> None:
        self.cfg = cfg or ProtectionConfig()
        self.name = name
        self.key = key
        self.ruler = Ruler(self.cfg.ruler_band) if key is None else Ruler(self.cfg.ruler_band, key.seed("ruler"))
        self._layout_seed = channel.Layout.seed if key is None else key.seed("layout")
        self._refiner: RefineNet | None = None
        self._tamper_net: tuple[TamperNet, float] | None | bool = False  # False: not loaded yet
        self._readout: RulerReadout | None = None
        self._readers: list[Protector] | None = None
        self._public: Protector | None = None

    @property
    def readout(self) -> RulerReadout:
        """The ruler's matched filter (built on first use: protecting needs none)."""
        if self._readout is None:
            self._readout = RulerReadout(self.ruler, self.cfg.readout_size, presence=self.cfg.presence,
                                         crop_margin=self.cfg.crop_margin)
        return self._readout

    # -- layout ----------------------------------------------------------------
    def layout(self, width: int, height: int, robust: bool = False) -> channel.Layout:
        """Where the coded bits sit; ``robust``: the layout a photo whose payload failed its
        check at protect time carries (``margin``): the same pilots, each bit in
        ``cfg.robust_reps`` blocks."""
        level = max(width, height)
        reps = self.cfg.robust_reps if robust else self.cfg.reps.get(level, 1)
        return channel.Layout(width, height, channel.tile_for_level(level, self.cfg.block), block=self.cfg.block,
                              reps=reps, seed=self._layout_seed)

    def has_robust(self, level: int) -> bool:
        """Whether photos worked at ``level`` may carry the robust layout."""
        return self.cfg.robust_reps > self.cfg.reps.get(level, 1) and level >= self.cfg.robust_from_level

    def layouts(self, width: int, height: int) -> list[channel.Layout]:
        """The layouts a photo of this working frame may carry, most capacity first: the
        level's higher rate (``cfg.margin_rate``), its own, the robust layout. The
        protector takes the first whose payload passes its check (``margin``); the
        decoder tries them in this order."""
        level = max(width, height)
        first = self.layout(width, height)
        out = [replace(first, rate=self.cfg.margin_rate[level])] if level in self.cfg.margin_rate else []
        out.append(first)
        if self.has_robust(level):
            out.append(self.layout(width, height, robust=True))
        return out

    def with_key(self, key: ProtectionKey | None) -> "Protector":
        """The same protection with ``key``'s patterns (None: the public ones); the
        reconstruction network is shared."""
        if key == self.key:
            return self
        base = self.name.split(" (key ")[0]
        return self._variant(self.cfg, base if key is None else f"{base} (key {key.fingerprint})", key)

    def readers(self) -> list["Protector"]:
        """The protections a photo of this key may carry: one per variant of a key with
        several (:class:`ProtectionKey`), else this one."""
        if self.key is None or self.key.variants == 1:
            return [self]
        if self._readers is None:
            self._readers = [self._variant(self.cfg, self.name, self.key.variant(v))
                             for v in range(self.key.variants)]
        return self._readers

    def public(self) -> "Protector":
        """The same protection with the public patterns (this one if it has no key)."""
        if self.key is None:
            return self
        if self._public is None:
            self._public = self.with_key(None)
        return self._public

    def for_photo(self, image: Tensor) -> "Protector":
        """The one of :meth:`readers` that protects ``image`` (3, H, W): chosen from its
        pixels (every 7th row and column, 8 bits) by the key's keyed hash."""
        readers = self.readers()
        if len(readers) == 1:
            return self
        sample = (image[:, ::7, ::7].float() * 255).round().clamp(0, 255).to(torch.uint8)
        assert self.key is not None
        return readers[self.key.variant_of(sample.numpy().tobytes())]

    def thorough(self) -> "Protector":
        """The same protection, looking beneath every protection it takes away, however
        weak the ruler left there (the default): finds laundered crops whose earlier
        ruler reads at chance (the pilots' search finds them)."""
        return self._looking_beneath(True)

    def fast(self) -> "Protector":
        """The same protection, looking beneath a protection it takes away only where
        the ruler left there reads above chance: an uncropped protected photo inspects
        two to four times as fast, and about one laundered crop in ten is missed."""
        return self._looking_beneath(False)

    def _looking_beneath(self, thorough: bool) -> "Protector":
        if self.cfg.thorough == thorough:
            return self
        return self._variant(self.cfg.model_copy(update={"thorough": thorough}), self.name, self.key)

    def _variant(self, cfg: ProtectionConfig, name: str, key: ProtectionKey | None) -> "Protector":
        """Another Protector sharing this one's reconstruction network (loaded once)."""
        other = Protector(cfg, name, key)
        other._refiner = self._refiner
        other._tamper_net = self._tamper_net
        return other

    def whitening(self, n_bits: int) -> Tensor | None:
        """The key's stream (0/1) XORed onto the coded payload bits (None: no key)."""
        if self.key is None:
            return None
        g = torch.Generator().manual_seed(self.key.seed("whiten"))
        return torch.randint(0, 2, (n_bits,), generator=g, dtype=torch.uint8)

    def rate(self, layout: channel.Layout) -> str:
        """The inner code's rate in this layout (by default, its working level's)."""
        return layout.rate or self.cfg.code_rate.get(max(layout.width, layout.height), "1/2")

    def plan(self, layout: channel.Layout) -> ecc.Plan:
        return ecc.plan(inner.info_bits(layout.n_bits, self.rate(layout)) // 8, self.cfg.rs_parity)

    def capacity(self, width: int, height: int) -> int:
        """Message bytes a photo of this size carries."""
        return self.plan(self.layout(*working_size(width, height))).message

    def thumbnail_budget(self, width: int, height: int) -> int:
        """Bytes of the message the thumbnail gets (the rest: the frame's size)."""
        n = self.capacity(width, height)
        return n - size_field_bytes(n)

    # -- protect ---------------------------------------------------------------
    def ruler_pattern(self, width: int, height: int) -> Tensor:
        u = (torch.arange(width, dtype=torch.float64) + 0.5) / width
        v = (torch.arange(height, dtype=torch.float64) + 0.5) / height
        return ((self.ruler.profile(u, "x")[None, :] + self.ruler.profile(v, "y")[:, None]) / math.sqrt(2)).float()

    def coded_bits(self, work: Tensor, layout: channel.Layout) -> Tensor:
        p = self.plan(layout)
        from clrnet.core.image import tensor_to_pil

        _, h, w = work.shape
        # the exact frame size first (if there is room): fixes the box's normalisation
        k = size_field_bytes(p.message)
        size = pack_size(w, h) if k == 2 else pack_size_short(w, h)
        # the thumbnail is planned for the size the decoder reads (1 byte: the shape to 1/127)
        thumb = codec.encode_message(tensor_to_pil(work), p.message - k, frame=unpack_size(size, max(w, h)))
        message = size + thumb
        if p.short:  # a short plan carries exactly its capacity
            message += bytes(p.message - len(message))
        return self.encode_message(message, layout)

    def encode_message(self, message: bytes, layout: channel.Layout) -> Tensor:
        """The coded bits (n_bits of 0/1) a framed ``message`` is sent as: Reed-Solomon
        or CRC framing, the inner code, the key's whitening."""
        return self.encode_framed(channel.bytes_to_bits(ecc.frame(message, self.plan(layout))), layout)

    def encode_framed(self, bits: Tensor, layout: channel.Layout) -> Tensor:
        """Framed message bits through the inner code and the key's whitening."""
        coded = inner.encode(bits, layout.n_bits, self.rate(layout))
        mask = self.whitening(layout.n_bits)
        return coded if mask is None else coded ^ mask

    def signal(self, work: Tensor, bits: Tensor | None = None) -> Tensor:
        """The change (1, H, W) in [0, 1] units for a working-frame photo (3, H, W),
        carrying its own thumbnail or the given coded ``bits`` (either layout's, told by
        their number: :meth:`layout`)."""
        _, h, w = work.shape
        layout = self.layout(w, h)
        if bits is None:
            bits = self.coded_bits(work, layout)
        elif bits.numel() != layout.n_bits and self.has_robust(max(w, h)):
            layout = self.layout(w, h, robust=True)
        m = jnd_map(work[None], self.cfg.jnd_floor, self.cfg.jnd_slope, self.cfg.jnd_cap)[0, 0]
        share = self.cfg.ruler_share
        payload = channel.embed(layout, bits)
        if self.cfg.host_boost > 0:
            amp = m * math.sqrt(1 - share ** 2) / 255
            payload = payload * channel.host_boost(layout, luminance(work[None])[0, 0], amp, bits,
                                                   self.cfg.host_boost)
        pattern = share * self.ruler_pattern(w, h) + math.sqrt(1 - share ** 2) * payload
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
            m = jnd_map(photo[None].float(), self.cfg.jnd_floor, self.cfg.jnd_slope, self.cfg.jnd_cap)[0, 0]
        local = local_std(delta[None, None], 7)[0, 0].clamp_min(1e-6)
        allowed = m * (1 + ((m - 2) / 4).clamp(0, 1))
        return delta * (allowed / local).clamp(max=1.0)

    @torch.no_grad()
    def change(self, image: Tensor, bits: Tensor | None = None) -> Tensor:
        """The change (1, H, W) protecting a photo (3, H, W) at its own size: drawn at
        the working frame, carrying the photo's thumbnail (or the coded ``bits``), with
        the patterns of the key's variant for this photo (:meth:`for_photo`)."""
        mine = self.for_photo(image)
        if mine is not self:
            return mine.change(image, bits)
        _, h, w = image.shape
        ww, wh = working_size(w, h)
        work = resize(image[None].float(), wh, ww)[0]
        rungs = self.layouts(ww, wh)
        if bits is not None or len(rungs) == 1:
            return self._at_size(image, self.signal(work, bits))
        # a large photo: its payload is checked on the path it will take (``margin``), in
        # the layout of most capacity first, down to the robust layout (taken unchecked)
        for layout in rungs:
            bits = self.coded_bits(work, layout)
            delta = self._at_size(image, self.signal(work, bits))
            if layout is rungs[-1] or margin.survives(image + delta, layout, bits, self.decode_soft):
                return delta
        raise AssertionError("unreachable: the last layout is taken unchecked")

    def _at_size(self, image: Tensor, delta: Tensor) -> Tensor:
        """A working-frame change (1, h, w) carried to ``image``'s own size (3, H, W)."""
        _, h, w = image.shape
        if delta.shape[-2:] != (h, w):
            delta = F.interpolate(delta[None], size=(h, w), mode="bicubic", align_corners=False)[0]
            # the JND once more at the photo's own resolution: a flat strip a few pixels
            # wide (a border, a thin sky) that the working frame blurred into its texture
            delta = self.cap_to_jnd(delta[0] * 255, image)[None] / 255
        return keep_ssim(image, delta, self.cfg.min_ssim)

    @torch.no_grad()
    def protect(self, image: Tensor) -> Tensor:
        """(3, H, W) in [0, 1] -> protected, same size, rounded to 8 bits."""
        return quantize(image + self.change(image))

    @torch.no_grad()
    def inspect_layers(self, received: Tensor, most: int = 3) -> list["Reading"]:
        """Every protection in a photo, newest first. A protection that covers the
        whole received photo (it was the last thing done to it, no crop since) is
        rebuilt from its decoded payload (unread: from the photo's own thumbnail) and
        taken away, and what lies beneath is read again: a crop of a protected photo,
        protected again, shows its earlier protection and the earlier box. A layer
        beneath is looked for however weak its ruler (``cfg.thorough``, the default), but
        where that ruler reads at chance (below ``cfg.beneath_min_strength``: what is
        left of a single protection taken away, val 0.16-0.29) a layer counts only with
        its payload's checksum; ``fast()`` looks there not at all. Beneath, as on top:
        the ruler's boxes, the pilots' search over whole frames (a ruler that misread
        an axis, an enlarged crop) and ruler and pilots together. Dropped pixels are put
        back first (:func:`impulses.repair_impulses`)."""
        received = repair_impulses(received)
        top, reader = self.found(received)
        layers = [top]
        x = received
        while len(layers) < most:
            if not top.protected or top.cropped:
                break
            # without its payload (two protections at nearly one grid can drown it) it is
            # rebuilt from the photo's own thumbnail: what was protected, uncropped since
            codeword = None if top.decoded is None else top.decoded.codeword
            ww, wh = working_size(x.shape[-1], x.shape[-2])
            if codeword is not None and codeword.numel() not in \
                    (reader.layout(ww, wh).n_bits, reader.layout(ww, wh, robust=reader.has_robust(max(ww, wh))).n_bits):
                break  # rescaled to another working level since: it cannot be rebuilt here
            x = reader.taken_away(x, codeword)
            # an earlier protection may have been rescaled with its crop: the pilots' search
            # tries the levels below the implied one (every level on each of the ruler's
            # nine boxes made a 96 x 80 photo take 5 s); not the whole photo's payload:
            # what is left of the one taken away may pass its checksum
            beneath, reader = self.found(x, deep=False, search=True, levels=2,
                                         min_strength=0.0 if self.cfg.thorough else self.cfg.beneath_min_strength)
            if not beneath.protected:  # what is left of a single protection does not verify
                break
            if self.cfg.thorough and (beneath.decoded is None or beneath.decoded.message is None) \
                    and reader.read_ruler(x)[2] < self.cfg.beneath_min_strength:
                # where the ruler left there reads at chance, what is left of the one taken
                # away makes the pilots' search peak at chance boxes (Kodak, JPEG 80: 3 of 24
                # photos protected once got a false crop, none with a payload; Set14's
                # pepper protected twice a false third layer): a layer there needs its
                # payload's checksum (val: all true layers below chance had it but 2 of 160
                # laundered crops, 0.956 found instead of 0.969; asked at any strength,
                # Kodak 0.927 instead of 0.969 and val 0.919)
                break
            layers.append(beneath)
            top = beneath
        return layers

    @torch.no_grad()
    def taken_away(self, photo: Tensor, codeword: Tensor | None = None) -> Tensor:
        """``photo`` (3, H, W) without the protection that covers it (carrying ``codeword``,
        or the photo's own thumbnail). The change was drawn from the photo beneath, not
        from this one, which carries it (more texture, a larger JND: a change up to 9 %
        too strong on Kodak's flat kodim20): so it is drawn again from the first
        estimate of the photo beneath (val, 20 photos protected twice, JPEG 80:
        correlation with the true change 0.973 -> 0.979, the ruler left beneath 0.589 ->
        0.619, better on all 20)."""
        first = (photo - self.change(photo, codeword)).clamp(0, 1)
        return (photo - self.change(first, codeword)).clamp(0, 1)

    def found(self, received: Tensor, **kw: object) -> tuple["Reading", "Protector"]:
        """The reading of ``received`` by the first of :meth:`readers` (the one whose
        ruler reads strongest first) that finds its protection, and that reader (else
        the strongest's reading); ``kw`` as :func:`_inspect`'s."""
        readers = self.readers()
        joint = [True] * len(readers)
        if self.key is not None:
            # the rulers of two keys (or of a key and the public patterns) correlate up to
            # about 0.3: a photo protected with the public patterns read with a key reads
            # that key's ruler at 0.38, enough for the last resort with pilots at chance
            # (1 read in 144 with a key of 4 variants). So it is taken only by the variant
            # whose ruler reads strongest, and only where that outreads the public ruler.
            x, gain = self._readout_input(received)
            strength = [float(r.readout.read(x, gain)[2][0]) for r in readers]
            public = float(self.public().readout.read(x, gain)[2][0])
            order = sorted(range(len(readers)), key=lambda i: -strength[i])
            joint = [k == 0 and strength[i] > public for k, i in enumerate(order)]
            readers = [readers[i] for i in order]
        first: tuple[Reading, Protector] | None = None
        for r, last_resort in zip(readers, joint):
            reading = _inspect(r, received, joint=last_resort, **kw)  # type: ignore[arg-type]
            if reading.protected:
                return reading, r
            first = first or (reading, r)
        assert first is not None
        return first

    # -- inspect ---------------------------------------------------------------
    def read_ruler(self, received: Tensor) -> tuple[Box, float, float]:
        """Box, crop-score logit and ruler strength of a received (3, h, w)."""
        boxes, logits, strength = self.readout.read(*self._readout_input(received))
        return tuple(float(v) for v in boxes[0]), float(logits[0]), float(strength[0])  # type: ignore[return-value]

    def _readout_input(self, received: Tensor) -> tuple[Tensor, Tensor | None]:
        """What the ruler's matched filter reads: the photo at the readout's size, and
        its JND map there (the gain) if the config weighs by it."""
        n = self.cfg.readout_size
        gain = None
        if self.cfg.readout_gain:
            m = jnd_map(received[None].float(), self.cfg.jnd_floor, self.cfg.jnd_slope, self.cfg.jnd_cap)
            gain = resize(m, n, n)[:, 0]
        return resize(received[None].float(), n, n), gain

    @staticmethod
    def resample(received: Tensor, box: Box, width: int, height: int) -> tuple[Tensor, int, int]:
        """The received (3, h, w), placed at ``box`` of a ``width`` x ``height`` frame,
        sampled at the frame's pixel centres inside the box: (3, h', w'), y0, x0."""
        x0, y0, x1, y1 = box
        kx0, kx1 = math.ceil(x0 * width - 0.5), math.floor(x1 * width - 0.5) + 1
        ky0, ky1 = math.ceil(y0 * height - 0.5), math.floor(y1 * height - 0.5) + 1
        # at least one frame pixel, also for a box that lies off the frame (a sliver of a photo)
        kx0, ky0 = min(max(kx0, 0), width - 1), min(max(ky0, 0), height - 1)
        kx1, ky1 = max(min(kx1, width), kx0 + 1), max(min(ky1, height), ky0 + 1)
        src = received[None].float()
        nw, nh = max(kx1 - kx0, 1), max(ky1 - ky0, 1)
        if src.shape[-1] > 1.25 * nw or src.shape[-2] > 1.25 * nh:  # antialias before sampling
            src = resize(src, nh, nw)
        gx = (((torch.arange(kx0, kx1) + 0.5) / width - x0) / max(x1 - x0, 1e-6)) * 2 - 1
        gy = (((torch.arange(ky0, ky1) + 0.5) / height - y0) / max(y1 - y0, 1e-6)) * 2 - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out[0], ky0, kx0

    def refine(self, received: Tensor, box: Box, layout: channel.Layout, search: int) -> tuple[Box, float]:
        """Refine ``box`` with the pilots: shifts measured in each quarter of the fragment
        give an offset and a scale per axis. Returns the box and the pilot prominence."""
        win, y0, x0 = self.resample(received, box, layout.width, layout.height)
        lum = luminance(win[None])[0, 0]
        h, w = lum.shape
        a = channel.matched(lum, win)
        s2 = 2 * search  # the window's pattern, built once: each quarter's is a slice of it
        pattern = channel.pilot_pattern(layout, y0 - search, x0 - search, h + s2, w + s2)
        dy, dx, whole = channel.pilot_shift(layout, a, y0, x0, search, pattern)
        pts = [(h / 2, w / 2, dy, dx, whole)]
        if h >= 96 and w >= 96 and whole >= self.cfg.pilot_prominence:  # per quarter: scale as well
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

    def decode_at(self, received: Tensor, box: Box, level: int, hard: bool = False) -> Decoded:
        """Try one working level: refine the box, read the soft bits, decode. ``hard``: read
        the payload even where the pilot search finds no clear peak (a large edit flattens
        it; the payload's checksum then decides).

        The frame's shape follows from the box (the ruler reads each side to 1/256 of the
        frame, so the aspect to about 1 %); where a common aspect lies within
        ``ASPECT_SNAP`` of it and the frame read first does not verify, that one is tried
        too (from ``SNAP_FROM_LEVEL``): at 2048 px a 0.6 % error in the frame's height is
        a 7 px drift across a crop, which the carrier (3-8 px periods) does not survive
        (an 8 MP 4:3 photo's 40 % crop read as a 2048 x 1546 frame was not found)."""
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
            d = self._decode_frame(received, box, level, fw, fh, hard)
            if d.verified:
                return d
            first = first or d
        assert first is not None
        return first

    def _decode_frame(self, received: Tensor, box: Box, level: int, fw: int, fh: int, hard: bool) -> Decoded:
        """:meth:`decode_at` in a working frame of ``fw`` x ``fh``."""
        layout = self.layout(fw, fh)
        search = math.ceil(2.5 * max(fw, fh) / 256) + 2
        refined, prom = self.refine(received, box, layout, search)
        if prom < self.cfg.pilot_prominence - 1.5 and not hard:  # nothing near this box: not our frame
            win, y0, x0 = self.resample(received, refined, fw, fh)
            return Decoded(level, (fw, fh), refined, None, None, 0.0, win, (y0, x0), prominence=prom)
        if prom >= self.cfg.pilot_prominence:  # a clear peak: sharpen it where it is
            refined, _ = self.refine(received, refined, layout, 3)
        win, y0, x0 = self.resample(received, refined, fw, fh)
        soft = channel.demodulate(layout, luminance(win[None])[0, 0], y0, x0, win)
        message = thumb = coded = None
        presence = torch.zeros(0)
        snr = 0.0
        ev = skip = None  # the evidence for edits and the window's unreadable parts, with ``presence``
        # below the pilots' threshold a large edit may have pulled them down: the payload is
        # still tried (its checksum, not the pilots, then confirms the box)
        if soft.pilot >= self.cfg.pilot_presence * EDITED_PILOT_SHARE:
            listed = soft.pilot >= self.cfg.pilot_presence
            lum = luminance(win[None])[0, 0]
            # the layouts this frame's photos may carry, most capacity first (``layouts``);
            # those of one number of blocks per bit share their soft bits
            rungs = self.layouts(fw, fh)
            by_reps: dict[int, channel.Layout] = {}
            for rung in rungs:
                by_reps.setdefault(rung.reps, rung)
            softs = {reps: soft if reps == layout.reps else channel.demodulate(rung, lum, y0, x0, win)
                     for reps, rung in by_reps.items()}
            for rung in rungs:
                message = self.decode_soft(softs[rung.reps], rung, listed)
                if message is not None:
                    layout = rung
                    break
            if message is None:  # an edit may drown the payload: leave out where the pilots are missing
                erase = self.edited(*channel.presence_map(layout, soft.block_scores, y0, x0, None), win, layout)
                if bool(erase.any()):
                    cut = {reps: channel.demodulate(rung, lum, y0, x0, win, erase) for reps, rung in by_reps.items()}
                    for rung in rungs:
                        message = self.decode_soft(cut[rung.reps], rung, listed)
                        if message is not None:
                            layout = rung
                            break
            p = self.plan(layout)
            if message is not None:
                # the codeword the payload implies: where the window agrees with it
                coded = self.encode_message(message, layout)
                presence, snr = channel.presence_map(layout, soft.block_scores, y0, x0, coded)
                ev, skip = self._evidence(layout, soft, y0, x0, coded, win, snr, EXACT)
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
                        win, y0, x0 = self.resample(received, refined, fw, fh)
                    message = message[k:]
                    thumb = codec.decode_message(message, p.message - k, frame=(fw, fh))
                    if whole:
                        ev = with_thumbnail(ev, read, thumb)
                except (ValueError, struct.error):
                    message = thumb = None
        # the pilots hold at this box and stand out among nearby shifts, or the payload's
        # checksum confirms it (a box tried at many shifts and levels can reach a pilot
        # statistic of 4-5 by chance; it cannot also pass the CRC)
        piloted = soft.pilot >= self.cfg.pilot_presence and prom >= self.cfg.pilot_prominence
        verified = piloted or message is not None
        if message is None and piloted:
            # the checksum failed but the pilots hold: the decoder's best path, coded again, is
            # the codeword in all but a few bits, and the window is checked against that for edits
            # (of the layouts this frame may carry with these soft bits, the one it agrees with best)
            best = self.best_codeword_of(soft, fw, fh)
            presence, snr = channel.presence_map(layout, soft.block_scores, y0, x0, best)
            ev, skip = self._evidence(layout, soft, y0, x0, best, win, snr, BEST_PATH)
        elif message is None:
            presence = torch.zeros(0)
            ev = skip = None
        if presence.numel() and presence.shape != win.shape[-2:]:  # the size field moved the frame: same pixels
            presence = F.interpolate(presence[None, None], size=win.shape[-2:], mode="bilinear",
                                     align_corners=False)[0, 0]
        edited = torch.zeros(0, dtype=torch.bool)
        if presence.numel():
            net = self.tamper_net()
            edited = self.edited(presence, snr, win, layout) if net is None or ev is None or skip is None \
                else self.edited_learned(net, ev, skip, win.shape[-2:])
        return Decoded(level, (fw, fh), refined, message, thumb, soft.pilot, win, (y0, x0), verified, presence,
                       coded if message is not None else None, edited, prom, ev)

    def soft_values(self, soft: channel.Soft, layout: channel.Layout) -> Tensor:
        """Each coded bit's combined soft value (positive: 1), the key's whitening undone."""
        values = soft.sums / soft.counts.clamp_min(1).sqrt()
        mask = self.whitening(layout.n_bits)
        return values if mask is None else values * (1 - 2 * mask.double())

    def best_codeword(self, soft: channel.Soft, layout: channel.Layout) -> Tensor:
        """The coded bits of the inner decoder's best path, checksum or not."""
        bits = inner.decode(self.soft_values(soft, layout).float(), self.plan(layout).coded * 8, self.rate(layout))
        return self.encode_framed(bits, layout)

    def best_codeword_of(self, soft: channel.Soft, fw: int, fh: int) -> Tensor:
        """:meth:`best_codeword` in whichever of the frame's layouts of ``soft``'s number of
        bits (the rates of :meth:`layouts`) it agrees with best: a payload that failed its
        checksum does not say which rate it was sent at."""
        best: tuple[float, Tensor] | None = None
        for layout in self.layouts(fw, fh):
            if layout.n_bits != soft.sums.numel():
                continue
            code = self.best_codeword(soft, layout)  # as sent: the key's whitening on
            agree = float((soft.sums / soft.counts.clamp_min(1).sqrt() * (2 * code.double() - 1)).sum())
            if best is None or agree > best[0]:
                best = (agree, code)
        assert best is not None
        return best[1]

    def decode_soft(self, soft: channel.Soft, layout: channel.Layout, listed: bool = True) -> bytes | None:
        """The framed message from soft bits (key whitening undone), or None if its checksum
        fails. A short (CRC-24) message that the best path does not give is looked for among
        the list decoder's ``LIST_SIZE`` best if ``listed`` (the pilots say a protection is
        there: 0.14 s at 768 px, so not for every box a never-protected photo is tried at)."""
        p = self.plan(layout)
        values = self.soft_values(soft, layout)
        n_info, rate = p.coded * 8, self.rate(layout)
        message = ecc.unframe(channel.bits_to_bytes(inner.decode(values.float(), n_info, rate)), p)
        if message is not None or not (p.short and listed):  # found, or no list to try (a Reed-Solomon
            return message  # plan has corrected what it can; without the pilots' say-so, not worth 0.14 s)
        for bits in inner.decode_list(values.float(), n_info, rate, LIST_SIZE):
            message = ecc.unframe(channel.bits_to_bytes(bits), p)
            if message is not None:
                return message
        return None

    @staticmethod
    def edited(presence: Tensor, snr: float, window: Tensor, layout: channel.Layout) -> Tensor:
        """Where in the window (h, w, bool) the presence map says it was edited (clipped parts
        skipped; stricter when the map is noisy: ``snr`` from ``channel.presence_map``, or the
        window carries the trace of a JPEG at quality 75 or below)."""
        skip = unreadable(window, layout.block * 8)
        if skip.shape != presence.shape:
            skip = F.interpolate(skip[None, None].float(), size=presence.shape, mode="nearest")[0, 0] > 0.5
        return tamper_mask(presence, skip, thresholds_for(snr, jpeg_quality(window)))

    @staticmethod
    def _evidence(layout: channel.Layout, soft: channel.Soft, y0: int, x0: int, bits: Tensor, win: Tensor,
                  snr: float, codeword: float) -> tuple[Evidence, Tensor]:
        """The evidence for edits in the window ``win`` read against ``bits`` (``tamper.segment``),
        and where the window is too clipped to carry anything (h, w, bool)."""
        skip = unreadable(win, layout.block * 8)
        return evidence(layout, soft.block_scores, y0, x0, bits, win, snr, jpeg_quality(win), codeword, skip), skip

    @staticmethod
    def edited_learned(net: tuple[TamperNet, float], ev: Evidence, skip: Tensor, size: tuple[int, int]) -> Tensor:
        """Where in a window of ``size`` (h, w, bool) the tamper network calls it edited: its
        probability above the card's threshold, the evidence's unreadable parts ``skip`` left
        out, regions under ``segment.MIN_AREA`` dropped (the window resampled since the
        evidence was read, when the size field moved the frame: the same pixels)."""
        prob = edited_probability(net[0], ev)
        if prob.shape != tuple(size):
            prob = F.interpolate(prob[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
            skip = F.interpolate(skip[None, None].float(), size=size, mode="nearest")[0, 0] > 0.5
        return regions((prob > net[1]) & ~skip, MIN_AREA)

    def tamper_net(self) -> tuple[TamperNet, float] | None:
        """The shipped tamper network and its threshold (``weights/tamper``), if enabled and present."""
        if not self.cfg.tamper_net:
            return None
        if self._tamper_net is False:
            self._tamper_net = load_tamper()
        return self._tamper_net  # type: ignore[return-value]

    def scale_hypotheses(self, received: Tensor, hx: list[tuple[float, tuple[float, float]]],
                         hy: list[tuple[float, tuple[float, float]]], most: int = 5, most_below: int = 6,
                         pairs: int = 3) -> list[tuple[int, float, int, int]]:
        """(level, scale) pairs to search the pilots at, most likely first: the fragment
        already at working scale (an original of exactly a level's size); then the
        original's size implied by both axes of each of the ruler's ``pairs`` best boxes
        (two per axis), and so its working frame and the scale from the fragment to it;
        then for each of the ruler's axis hypotheses (one axis is enough: the other may be
        wrong) and each common aspect ratio the same; after these, up to ``most_below``
        of the same at the one to three levels below (an enlarged copy, the boxes' first).
        Returns (level, scale, frame W, H)."""
        _, h, w = received.shape
        fixed = [(lv, 1.0, lv, lv) for lv in LEVELS if max(h, w) <= lv <= 3 * max(h, w)]
        implied: list[tuple[int, float, int, int]] = []

        def new(lv: int, sc: float, taken: list[tuple[int, float, int, int]]) -> bool:
            # a scale within reach of one already taken adds nothing: 2 % where the search
            # grid spans +-1.2 %, 0.6 % above 1024 px, where the first look spans +-0.6 % (a
            # 4:3 frame 0.2 % off was dropped for a box's 1.2 % off, and an 8 MP photo's crop
            # was not found)
            near = 0.02 if lv <= 1024 else 0.006
            return max(h, w) * sc <= lv and all(lv != o[0] or abs(sc / o[1] - 1) > near for o in taken)

        def imply(ow: float, oh: float) -> None:  # an original of ow x oh: its frame and scale
            fw, fh = working_size(max(round(ow), 1), max(round(oh), 1))
            if new(max(fw, fh), fw / ow, implied):
                implied.append((max(fw, fh), fw / ow, fw, fh))

        # both axes read: the original's aspect need not be guessed (a 5:4 photo, Set14's
        # barbara, has none of the common ones)
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
        # a copy enlarged after the crop implies a larger original than the one that
        # was protected, so its working frame may be one to three levels below the one
        # the implied size gives (a quarter of a photo enlarged to the photo's size: 2-2.7 x)
        below: list[tuple[int, float, int, int]] = []
        for lv, sc, fw, fh in implied:
            for ls in reversed(LEVELS[max(0, LEVELS.index(lv) - 3):LEVELS.index(lv)]):
                sw, sh = frame_size(ls, fw / fh)
                if new(ls, sc * sw / fw, fixed + implied + below):
                    below.append((ls, sc * sw / fw, sw, sh))
        return fixed + [o for o in implied if new(o[0], o[1], fixed)] + below[:most_below]

    def pilot_boxes(self, received: Tensor, hx: list[tuple[float, tuple[float, float]]],
                    hy: list[tuple[float, tuple[float, float]]]) -> list[tuple[float, Box, int]]:
        """Boxes found by the pilots alone: for each (level, scale) hypothesis the
        fragment brought to working scale is searched for over a whole square frame of
        that level (the pattern is anchored at the top-left corner, so the frame's other
        side does not matter). Returns (score, box, level) for peaks that stand out,
        best first: the level is where the pilots peaked (an enlarged copy's box implies
        a larger one)."""
        _, h, w = received.shape
        out: list[tuple[float, Box, int]] = []

        def search(lv: int, sc: float, fw: int, fh: int) -> tuple[float, Box] | None:
            sh, sw = max(8, round(h * sc)), max(8, round(w * sc))
            if sh > lv or sw > lv:
                return None
            ph, pw = min(sh, 256), min(sw, 256)
            # the central patch of the fragment at this scale, resized from the part it
            # needs only (a 96 x 60 000 or 12 MP photo is not resized whole per search)
            rgb, py, px = window_of_resize(received[None].float(), sh, sw,
                                           (max(0, (sh - 256) // 2), max(0, (sw - 256) // 2), ph, pw))
            y0, x0, prom = channel.pilot_search(self.layout(lv, lv), luminance(rgb)[0, 0], rgb[0], (lv, lv))
            if prom < self.cfg.pilot_search_prominence or \
                    search_excess(prom, (lv - ph + 1) * (lv - pw + 1)) < self.cfg.pilot_search_excess:
                return None  # no peak, or one that chance reaches over this many positions
            y0, x0 = y0 - py, x0 - px
            # the frame's short side is unknown until the payload says (it carries the
            # exact size); a box in the square frame is refined once that is known
            if x0 < 0 or y0 < 0 or x0 + sw > fw or y0 + sh > fh:
                fw = fh = lv
            return prom, (x0 / fw, y0 / fh, (x0 + sw) / fw, (y0 + sh) / fh)

        for lv, sc0, fw, fh in self.scale_hypotheses(received, hx, hy):
            # the ruler's scale is good to 1-2 %; the carrier decorrelates when the drift
            # across the searched patch passes a pixel: a grid of 0.4 % steps over a patch
            # <= 256 px. Above 1024 px a peak at the ruler's own scale is needed first (a
            # 12 MP photo that was never protected would search seven times as long), and
            # then the grid around it takes the scale where the peak is highest: a 2048 px
            # frame 0.9 % off still peaks, but at a box too far off for the payload. That
            # peak is looked for at the ruler's scale and 0.6 % either side: the ruler reads
            # a side to 1/256 of the frame, so a crop's scale to +-0.8 %, and at 0.6 % off
            # a 256 px patch drifts 1.5 px and its peak sinks to chance (an 8 MP photo's
            # 40 % crop whose other axis the ruler misread was not found at all)
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
            if hit[0] >= 2 * self.cfg.pilot_search_prominence:  # unmistakable: stop here
                return [out[-1]]
        out.sort(key=lambda t: -t[0])
        return out

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

    def refiner(self) -> RefineNet | None:
        """The shipped reconstruction network (``weights/refine``), if enabled and present."""
        if not self.cfg.refine:
            return None
        if self._refiner is None:
            self._refiner = load_refine()
        return self._refiner

    def recover_variants(self, d: Decoded) -> dict[str, Tensor]:
        """The whole working frame (3, H, W) at each step (the ablation): ``upsampled``, the
        thumbnail plainly upsampled into the cut-away part; ``painted``, plus the kept
        part's detail continued into it; ``refined``, the network's output (if shipped);
        ``border``, Telea's continuation blended in near the crop's edge; ``consistent``,
        that moved into agreement with the thumbnail's measurements (what ``recover``
        returns). The kept part is the received pixels in all of them."""
        fw, fh = d.frame
        frame = torch.zeros(1, 3, fh, fw)
        keep = torch.zeros(1, 1, fh, fw)
        y0, x0 = d.origin
        _, h, w = d.window.shape
        frame[0, :, y0:y0 + h, x0:x0 + w] = d.window
        keep[0, :, y0:y0 + h, x0:x0 + w] = 1
        kept_by_crop = keep.clone()
        edited = d.edited.shape == (h, w) and bool(d.edited.any())
        if edited:  # edited regions are recovered like the cut-away part
            keep[0, 0, y0:y0 + h, x0:x0 + w] = (~d.edited).float()
        out: dict[str, Tensor] = {}
        base = crop_dist = None
        if d.thumbnail is not None:
            from clrnet.core.image import pil_to_tensor

            base = upsample(pil_to_tensor(d.thumbnail)[None], fh, fw)
            out["upsampled"] = (frame * keep + base * (1 - keep))[0]
            crop_dist = distance(kept_by_crop)  # painting and the border share it unless edited
        painted = paint(frame, keep, base, dist=None if edited else crop_dist)
        out["painted"] = last = painted[0]
        if base is None:
            return out
        side = codec.effective_side(d.message, d.thumbnail)
        net = self.refiner()
        if net is not None:
            out["refined"] = last = refine_frame(net, last, base[0], keep[0], side)
        if self.cfg.border:
            # across the crop's edge only: an edit's found outline is not exact, and continuing
            # what surrounds it carries the edit's own pixels inwards (Kodak 256², edited
            # regions 16.40 -> 16.24 dB with the holes included)
            out["border"] = last = continue_border(last, kept_by_crop[0], crop_dist[0], max(fw, fh) / side)
        if self.cfg.consistent:
            out["consistent"] = project(last, keep[0], thumbnail_bounds(d.message, d.frame))
        return out

    def recover(self, d: Decoded) -> Tensor:
        """The whole working frame (3, H, W): the fragment where it was kept, the
        cut-away part reconstructed from the thumbnail (and the fragment): the last
        step of :meth:`recover_variants` (its frames are in step order)."""
        return list(self.recover_variants(d).values())[-1]


@dataclass
class Reading:
    """What ``Protector.inspect`` found in a received photo."""

    protected: bool  # ruler and pilots agree on a box
    cropped: bool
    score: float  # crop score in [0, 1]
    box: Box
    strength: float  # ruler correlation of the chosen box
    pilot: float  # pilot prominence after alignment (about 0-4 without protection)
    decoded: Decoded | None
    recovered: Tensor  # (3, H, W) whole working frame (the received frame if nothing was found)


STEPS = (0, 1, -1, 2, -2, 3, -3)  # the pilots' scale grid around the ruler's scale, in 0.4 % steps
COARSE = (0, 1.5, -1.5)  # the same, where a peak is needed before the grid (frames above 1024 px)


def _top_hypotheses(corr: Tensor, hyps: Tensor, k: int) -> list[tuple[float, tuple[float, float]]]:
    """The ``k`` best (score, (lo, hi)) of one axis, skipping near-duplicates."""
    order = torch.topk(corr, min(2000, corr.numel())).indices
    out: list[tuple[float, tuple[float, float]]] = []
    for i in order.tolist():
        lo, hi = float(hyps[i, 0]), float(hyps[i, 1])
        if all(max(0.0, min(hi, b) - max(lo, a)) / (max(hi, b) - min(lo, a)) < 0.7 for _, (a, b) in out):
            out.append((float(corr[i]), (lo, hi)))
        if len(out) == k:
            break
    return out


def search_excess(prominence: float, positions: int) -> float:
    """How far a search's peak stands above the maximum that chance alone reaches over
    ``positions`` places: the largest of P independent normal values is about
    sqrt(2 ln P) standard deviations, and a never-protected photo's pilot searches
    follow that (val: median peaks 2.8, 3.6, 4.2, 4.6, 5.0 at 10^2.5 ... 10^6.5
    positions, each 0.3-0.5 below it; at a fixed threshold of 6 the largest searches
    made all the false alarms). Prominence is in the same robust standard deviations."""
    return prominence - math.sqrt(2 * math.log(max(positions, 2)))


def jointly_verified(cfg: ProtectionConfig, tries: list[tuple[float, Decoded]], strength: float
                     ) -> tuple[Decoded | None, float]:
    """The last resort of a search that found nothing: a box the ruler proposed strongly
    (strength >= ``cfg.joint_strength``) where the pilots fall just short of either
    threshold, but not of both together. After JPEG and a downscale the pilots of a
    small crop come out at 4-5.5 where the ruler's box is right; pilots searched over
    whole frames or at a box the ruler does not back stay under the thresholds alone
    (the joint test is taken only where the ruler is strong). Returns the best such
    decoding (most pilot evidence), marked verified, and its ruler strength."""
    ok = [(s, d) for s, d in tries if s >= cfg.joint_strength and min(d.pilot, d.prominence) >= cfg.joint_floor
          and d.pilot + d.prominence >= cfg.joint_sum]
    if not ok:
        return None, strength
    s, d = max(ok, key=lambda t: t[1].pilot + t[1].prominence)
    return replace(d, verified=True), s


def _inspect(self: Protector, received: Tensor, top: int = 3, deep: bool = True, levels: int = 2,
             min_strength: float = 0.0, search: bool | None = None, joint: bool = True) -> Reading:
    """Localise, verify and decode: the ruler proposes its ``top`` boxes per axis, the
    pilots verify them (and refine the first that holds), the payload is decoded
    there and paints the cut-away part; when none holds, the ruler's boxes are tried
    again with ruler and pilots together (``jointly_verified``). ``deep``: before
    that, read the whole photo for its payload; ``search`` (by default as ``deep``):
    and search the pilots over whole frames;
    ``levels``: working levels tried per box (the size the box implies, then the next
    larger one: downscaling is common; for the ruler's best box also the next smaller
    one: an upscaled copy); a ruler weaker than ``min_strength`` is taken for no
    protection without trying the pilots; ``joint``: whether the last resort
    (``jointly_verified``) may be taken (not where another pattern explains the ruler)."""
    cx, cy = self.readout.correlate(*self._readout_input(received))
    hx = _top_hypotheses(cx[0], self.readout.hyps, top)
    hy = _top_hypotheses(cy[0], self.readout.hyps, top)
    boxes = sorted(((min(sx, sy), (ax[0], ay[0], ax[1], ay[1])) for sx, ax in hx for sy, ay in hy), reverse=True)
    _, h, w = received.shape
    strength = boxes[0][0]
    if strength < min_strength:
        ww, wh = working_size(w, h)
        return Reading(False, False, 0.0, FULL_FRAME, strength, 0.0, None, resize(received[None], wh, ww)[0])

    def first_verified(cands: list[tuple[float, Box]] | list[tuple[float, Box, int]],
                       tried: list[tuple[float, Decoded]] | None = None) -> tuple[Decoded | None, float]:
        for i, (s, box, *found_at) in enumerate(cands):
            implied = max(w / (box[2] - box[0]), h / (box[3] - box[1]))
            tries = candidates(implied)[:levels + (i == 0)]
            for level in [*found_at, *(lv for lv in tries if lv not in found_at)]:
                d = self.decode_at(received, box, level)
                if d.verified:
                    return d, s
                if tried is not None:
                    tried.append((s, d))
        return None, strength

    # the ruler's boxes first (cheap); the pilots' own search over whole frames when
    # none holds (the ruler misread an axis); last, the ruler's boxes tried again jointly
    ruler_tries: list[tuple[float, Decoded]] = []
    found, strength = first_verified(boxes, ruler_tries)
    if found is None and deep:
        # the whole photo as it is, read for its payload even without a clear pilot peak:
        # an uncropped photo with a large edit (its checksum decides); at its own level,
        # then the next smaller one (an upscaled copy whose edit weakened the ruler)
        own = working_level(w, h)
        for level in (own, *smaller_levels(own)[:1]):
            d = self.decode_at(received, FULL_FRAME, level, hard=True)
            if d.verified:
                found = d
                break
    if found is None and (deep if search is None else search):
        found, strength = first_verified(self.pilot_boxes(received, hx, hy))
    if found is None and joint:  # cheap (the ruler's tries are made): beneath a removed protection too
        found, strength = jointly_verified(self.cfg, ruler_tries, strength)
    if found is None:
        ww, wh = working_size(w, h)
        return Reading(False, False, 0.0, FULL_FRAME, strength, 0.0, None, resize(received[None], wh, ww)[0])
    bx = found.box
    clipped = (max(bx[0], 0.0), max(bx[1], 0.0), min(bx[2], 1.0), min(bx[3], 1.0))
    cut = 1 - (clipped[2] - clipped[0]) * (clipped[3] - clipped[1])
    score = float(torch.sigmoid(torch.tensor((cut - self.cfg.crop_margin) / 0.01)))
    cropped = score >= 0.5
    return Reading(True, cropped, score, clipped if cropped else FULL_FRAME, strength, found.pilot, found,
                   self.recover(found))


def _inspect_any(self: Protector, received: Tensor, **kw: object) -> Reading:
    """:func:`_inspect` by whichever of the key's variants the photo carries
    (:meth:`Protector.found`), its dropped pixels put back first (as in
    :meth:`Protector.inspect_layers`: :func:`impulses.repair_impulses`)."""
    return self.found(repair_impulses(received), **kw)[0]


Protector.inspect = _inspect_any  # type: ignore[attr-defined]
