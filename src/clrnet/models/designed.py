"""The designed model (protection v2, ``clrnet-v2``): protect and inspect a photo at its
own working resolution.

``protect`` draws, at the photo's working frame (``sync.frame``), the ruler and the payload
shaped by the JND map (``protection.embed``) and carries the change to the photo's own
size. ``inspect`` reads the ruler, verifies its boxes with the pilots, decodes the payload
(``reading``), paints what was cut away (``recovery``) and reads the kept part for edits
(``tamper``). This class holds the parts and the key's variants; the work is in those modules.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from clrnet.core.geometry import Box
from clrnet.models.base import ModelReading
from clrnet.payload import channel, ecc
from clrnet.payload.core import Core
from clrnet.payload.scheme import PayloadScheme
from clrnet.protection.config import ProtectionConfig
from clrnet.protection.embed import Embedder
from clrnet.protection.fidelity import quantize
from clrnet.protection.key import ProtectionKey
from clrnet.reading.decode import Decoded, Decoder
from clrnet.reading.impulses import repair_impulses
from clrnet.reading.layers import read_layers
from clrnet.reading.pilots import pilot_boxes
from clrnet.reading.reader import Reading, read
from clrnet.recovery.recover import recover_variants
from clrnet.recovery.refine import RefineNet, load_refine
from clrnet.sync.align import RulerInput, read_ruler
from clrnet.sync.frame import LEVELS
from clrnet.sync.ruler import Ruler, RulerReadout
from clrnet.sync.search import Hypotheses, scale_hypotheses
from clrnet.tamper.segment import TamperNet, load_tamper


class Protector:
    """The designed protection (ruler + payload, JND-shaped) at a photo's working frame,
    with the patterns of a secret key (None: the public ones)."""

    kind = "designed"
    demo_size: int | None = LEVELS[-1]  # the demo enlarges its photo to the largest working frame

    def __init__(self, cfg: ProtectionConfig | None = None, name: str = "clrnet-v2",
                 key: ProtectionKey | None = None) -> None:
        self.cfg = cfg = cfg or ProtectionConfig()
        self.name = name
        self.key = key
        self.ruler = Ruler(cfg.ruler_band) if key is None else Ruler(cfg.ruler_band, key.seed("ruler"))
        self.scheme = PayloadScheme(
            block=cfg.block, rs_parity=cfg.rs_parity, reps=cfg.reps, robust_reps=cfg.robust_reps,
            robust_from_level=cfg.robust_from_level, margin_rate=cfg.margin_rate, code_rate=cfg.code_rate,
            layout_seed=channel.Layout.seed if key is None else key.seed("layout"),
            whiten_seed=None if key is None else key.seed("whiten"))
        self.core = None if cfg.core_share <= 0 else Core(
            cfg.core_band, cfg.core_cell, Core.seed if key is None else key.seed("core"),
            (cfg.jnd_floor, cfg.jnd_slope, cfg.jnd_cap))
        self.embedder = Embedder(cfg, self.ruler, self.scheme, self.core)
        self.decoder = Decoder(self.scheme, cfg.pilot_presence, cfg.pilot_prominence, self.tamper_net)
        self.ruler_input = RulerInput(cfg.readout_size,
                                      (cfg.jnd_floor, cfg.jnd_slope, cfg.jnd_cap) if cfg.readout_gain else None)
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

    # -- keys and variants -------------------------------------------------------
    def with_key(self, key: ProtectionKey | None) -> "Protector":
        """The same protection with ``key``'s patterns (None: the public ones); the networks
        are shared."""
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
        weak the ruler left there (the default): finds laundered crops whose earlier ruler
        reads at chance (the pilots' search finds them)."""
        return self._looking_beneath(True)

    def fast(self) -> "Protector":
        """The same protection, looking beneath a protection it takes away only where the
        ruler left there reads above chance: an uncropped protected photo inspects two to
        four times as fast, and about one laundered crop in ten is missed."""
        return self._looking_beneath(False)

    def _looking_beneath(self, thorough: bool) -> "Protector":
        if self.cfg.thorough == thorough:
            return self
        return self._variant(self.cfg.model_copy(update={"thorough": thorough}), self.name, self.key)

    def _variant(self, cfg: ProtectionConfig, name: str, key: ProtectionKey | None) -> "Protector":
        """Another Protector sharing this one's networks (loaded once)."""
        other = Protector(cfg, name, key)
        other._refiner = self._refiner
        other._tamper_net = self._tamper_net
        return other

    # -- networks ------------------------------------------------------------------
    def refiner(self) -> RefineNet | None:
        """The shipped reconstruction network (``weights/clrnet-v2``), if enabled and present."""
        if not self.cfg.refine:
            return None
        if self._refiner is None:
            self._refiner = load_refine()
        return self._refiner

    def tamper_net(self) -> tuple[TamperNet, float] | None:
        """The shipped tamper network and its threshold (``weights/clrnet-v2``), if enabled and present."""
        if not self.cfg.tamper_net:
            return None
        if self._tamper_net is False:
            self._tamper_net = load_tamper()
        return self._tamper_net  # type: ignore[return-value]

    # -- the channel (``payload.scheme``) ------------------------------------------
    def layout(self, width: int, height: int, robust: bool = False) -> channel.Layout:
        return self.scheme.layout(width, height, robust)

    def rate(self, layout: channel.Layout) -> str:
        return self.scheme.rate(layout)

    def plan(self, layout: channel.Layout) -> ecc.Plan:
        return self.scheme.plan(layout)

    def capacity(self, width: int, height: int) -> int:
        return self.scheme.capacity(width, height)

    def thumbnail_budget(self, width: int, height: int) -> int:
        return self.scheme.thumbnail_budget(width, height)

    def encode_message(self, message: bytes, layout: channel.Layout) -> Tensor:
        return self.scheme.encode_message(message, layout)

    def decode_soft(self, soft: channel.Soft, layout: channel.Layout, listed: bool = True) -> bytes | None:
        return self.scheme.decode_soft(soft, layout, listed)

    # -- protect ---------------------------------------------------------------------
    def signal(self, work: Tensor, bits: Tensor | None = None) -> Tensor:
        return self.embedder.signal(work, bits)

    @torch.no_grad()
    def change(self, image: Tensor, bits: Tensor | None = None) -> Tensor:
        """The change (1, H, W) protecting a photo (3, H, W) at its own size, with the
        patterns of the key's variant for this photo (:meth:`for_photo`)."""
        return self.for_photo(image).embedder.change(image, bits)

    @torch.no_grad()
    def protect(self, image: Tensor) -> Tensor:
        """(3, H, W) in [0, 1] -> protected, same size, rounded to 8 bits."""
        return quantize(image + self.change(image))

    @torch.no_grad()
    def taken_away(self, photo: Tensor, codeword: Tensor | None = None) -> Tensor:
        """``photo`` (3, H, W) without the protection that covers it (carrying ``codeword``,
        or the photo's own thumbnail). The change was drawn from the photo beneath, not from
        this one (which has more texture, so a larger JND): it is drawn again from the first
        estimate of the photo beneath."""
        first = (photo - self.change(photo, codeword)).clamp(0, 1)
        return (photo - self.change(first, codeword)).clamp(0, 1)

    # -- inspect ---------------------------------------------------------------------
    def read_ruler(self, received: Tensor) -> tuple[Box, float, float]:
        """Box, crop-score logit and ruler strength of a received (3, h, w)."""
        return read_ruler(self.readout, self.ruler_input, received)

    def decode_at(self, received: Tensor, box: Box, level: int, hard: bool = False) -> Decoded:
        return self.decoder.decode_at(received, box, level, hard)

    def decode(self, received: Tensor, box: Box) -> Decoded | None:
        return self.decoder.decode(received, box)

    def scale_hypotheses(self, received: Tensor, hx: Hypotheses, hy: Hypotheses,
                         **kw: int) -> list[tuple[int, float, int, int]]:
        return scale_hypotheses(tuple(received.shape[-2:]), hx, hy, **kw)  # type: ignore[arg-type]

    def pilot_boxes(self, received: Tensor, hx: Hypotheses, hy: Hypotheses) -> list[tuple[float, Box, int]]:
        return pilot_boxes(received, hx, hy, lambda lv: self.scheme.layout(lv, lv),
                           self.cfg.pilot_search_prominence, self.cfg.pilot_search_excess)

    def recover_variants(self, d: Decoded) -> dict[str, Tensor]:
        """The recovered working frame at each step of ``recovery.recover``."""
        return recover_variants(d, self.refiner(), self.cfg.border, self.cfg.consistent)

    def recover(self, d: Decoded) -> Tensor:
        """The whole working frame (3, H, W): the last step of :meth:`recover_variants`."""
        return list(self.recover_variants(d).values())[-1]

    def found(self, received: Tensor, **kw: Any) -> tuple[Reading, "Protector"]:
        """The reading of ``received`` by the first of :meth:`readers` (the one whose ruler
        reads strongest first) that finds its protection, and that reader (else the
        strongest's reading); ``kw`` as :func:`reading.reader.read`'s."""
        readers = self.readers()
        joint = [True] * len(readers)
        if self.key is not None:
            # the rulers of two keys (or of a key and the public patterns) correlate up to
            # about 0.3, enough for the last resort with pilots at chance: it is taken only by
            # the variant whose ruler reads strongest, and only where that outreads the public one
            x, gain = self.ruler_input.of(received)
            strength = [float(r.readout.read(x, gain)[2][0]) for r in readers]
            public = float(self.public().readout.read(x, gain)[2][0])
            order = sorted(range(len(readers)), key=lambda i: -strength[i])
            joint = [k == 0 and strength[i] > public for k, i in enumerate(order)]
            readers = [readers[i] for i in order]
        first: tuple[Reading, Protector] | None = None
        for r, last_resort in zip(readers, joint):
            reading = read(r, received, joint=last_resort, **kw)
            if reading.protected:
                return reading, r
            first = first or (reading, r)
        assert first is not None
        return first

    @torch.no_grad()
    def inspect(self, received: Tensor, **kw: Any) -> Reading:
        """The reading by whichever of the key's variants the photo carries (:meth:`found`),
        its dropped pixels put back first (``reading.impulses``)."""
        return self.found(repair_impulses(received), **kw)[0]

    @torch.no_grad()
    def inspect_layers(self, received: Tensor, most: int = 3) -> list[Reading]:
        """Every protection in a photo, newest first (``reading.layers``), its dropped pixels put
        back first."""
        return read_layers(self, repair_impulses(received), most)

    # -- the Model protocol (``models.base``) -------------------------------------------
    def read(self, received: Tensor) -> ModelReading:
        """Every protection is looked for; a crop found beneath a later protection (a
        protected crop protected again) is the verdict, with the earlier box and recovery."""
        received = repair_impulses(received)  # dropped pixels: read and pasted repaired
        found = read_layers(self, received)
        r = next((layer for layer in found[1:] if layer.cropped), found[0])
        layers = [{"cropped": layer.cropped, "score": round(layer.score, 4), "box": [round(v, 4) for v in layer.box]}
                  for layer in found if layer.protected]
        d = r.decoded
        # edits are read against the decoded payload's codeword or, when its checksum failed
        # but the pilots hold, against the decoder's best guess of it
        edited = d.edited if d is not None and d.edited.numel() else None
        presence = d.presence if d is not None and d.presence.numel() else None
        return ModelReading(r.cropped, r.score, r.box, r.recovered, received, r.protected, r.pilot,
                            d is not None and d.message is not None, edited, presence, layers)

    def carries_protection(self, image: Tensor) -> bool:
        """The ruler's boxes verified by the pilots (every variant of a key's patterns), no
        search over whole frames."""
        return bool(self.inspect(image, deep=False, min_strength=self.cfg.presence).protected)

    def looking_beneath(self, on: bool) -> "Protector":
        return self.thorough() if on else self.fast()
