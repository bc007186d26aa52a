"""Protections beneath protections: a protection that covers the whole received photo is
taken away and what lies beneath is read again (a crop of a protected photo, protected
again, shows its earlier protection and the earlier box)."""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor

from clrnet.payload.scheme import PayloadScheme
from clrnet.protection.config import ProtectionConfig
from clrnet.reading.reader import Reading
from clrnet.sync.frame import working_size


class Layered(Protocol):
    """What looking beneath needs: the reading by whichever key variant finds its protection
    (and that variant), and taking a protection away."""

    cfg: ProtectionConfig
    scheme: PayloadScheme

    def found(self, received: Tensor, **kw: Any) -> tuple[Reading, "Layered"]: ...

    def taken_away(self, photo: Tensor, codeword: Tensor | None = None) -> Tensor: ...


def read_layers(p: Layered, received: Tensor, most: int = 3) -> list[Reading]:
    """Every protection in a photo, newest first. A protection that covers the whole
    received photo (the last thing done to it, no crop since) is rebuilt from its decoded
    payload (unread: from the photo's own thumbnail) and taken away, and what lies beneath
    is read again. A layer beneath is looked for however weak its ruler (``cfg.thorough``),
    but where that ruler reads at chance (below ``cfg.beneath_min_strength``) a layer
    counts only with its payload's checksum; ``thorough=False`` looks there not at all.
    ``received`` has its dropped pixels put back already (``impulses.repair_impulses``)."""
    cfg = p.cfg
    top, reader = p.found(received)
    layers = [top]
    x = received
    while len(layers) < most:
        if not top.protected or top.cropped:
            break
        # without its payload (two protections at nearly one grid can drown it) it is
        # rebuilt from the photo's own thumbnail: what was protected, uncropped since
        codeword = None if top.decoded is None else top.decoded.codeword
        ww, wh = working_size(x.shape[-1], x.shape[-2])
        scheme = reader.scheme
        if codeword is not None and codeword.numel() not in \
                (scheme.layout(ww, wh).n_bits, scheme.layout(ww, wh, robust=scheme.has_robust(max(ww, wh))).n_bits):
            break  # rescaled to another working level since: it cannot be rebuilt here
        x = reader.taken_away(x, codeword)
        # an earlier protection may have been rescaled with its crop: the pilots' search
        # tries the levels below the implied one; not the whole photo's payload: what is
        # left of the one taken away may pass its checksum
        # where the ruler left there reads at chance, what is left of the one taken away makes
        # the pilots' search peak at chance boxes: a layer there needs its checksum
        beneath, reader = p.found(x, deep=False, search=True, levels=2,
                                  min_strength=0.0 if cfg.thorough else cfg.beneath_min_strength,
                                  payload_below=cfg.beneath_min_strength if cfg.thorough else 0.0)
        if not beneath.protected:  # what is left of a single protection does not verify
            break
        layers.append(beneath)
        top = beneath
    return layers
