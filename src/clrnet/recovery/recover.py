"""The whole working frame from a decoded window: the received pixels where they were
kept, the cut-away part (and edited regions) painted from the decoded thumbnail, refined
by the network, continued across the crop's edge and made consistent with the thumbnail."""

from __future__ import annotations

from typing import Protocol

import torch
from PIL import Image
from torch import Tensor

from clrnet.core.image import pil_to_tensor
from clrnet.payload import codec
from clrnet.recovery.border import continue_border
from clrnet.recovery.consistency import project, thumbnail_bounds
from clrnet.recovery.paint import distance, paint, upsample
from clrnet.recovery.refine import RefineNet, refine_frame


class Found(Protocol):
    """What recovery needs of a decoding (``reading.decode.Decoded`` has it): the working
    frame (W, H), the window and where it sits (y0, x0), the edited pixels of the window
    (h, w, bool; may be empty), and the decoded message and thumbnail (None when the
    payload was not decoded)."""

    frame: tuple[int, int]
    window: Tensor
    origin: tuple[int, int]
    edited: Tensor
    message: bytes | None
    thumbnail: Image.Image | None


def recover_variants(d: Found, refiner: RefineNet | None, border: bool = True, consistent: bool = True
                     ) -> dict[str, Tensor]:
    """The whole working frame (3, H, W) at each step (the ablation): ``upsampled``, the
    thumbnail plainly upsampled into the cut-away part; ``painted``, plus the kept part's
    detail continued into it; ``refined``, the network's output (``refiner``);
    ``border``, Telea's continuation blended in near the crop's edge; ``consistent``, that
    moved into agreement with the thumbnail's measurements. The kept part is the received
    pixels in all of them."""
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
    if bool(keep.min() > 0.5):  # nothing cut away or edited: the received pixels, as every step returns them
        whole = frame[0]  # (the network's step clamps its whole output)
        return {"painted": whole.clamp(0, 1) if d.thumbnail is not None and refiner is not None else whole}
    base = crop_dist = None
    if d.thumbnail is not None:
        base = upsample(pil_to_tensor(d.thumbnail)[None], fh, fw)
        out["upsampled"] = (frame * keep + base * (1 - keep))[0]
        crop_dist = distance(kept_by_crop)  # painting and the border share it unless edited
    painted = paint(frame, keep, base, dist=None if edited else crop_dist)
    out["painted"] = last = painted[0]
    if base is None:
        return out
    side = codec.effective_side(d.message, d.thumbnail)
    if refiner is not None:
        out["refined"] = last = refine_frame(refiner, last, base[0], keep[0], side)
    if border:
        # across the crop's edge only: an edit's found outline is not exact, and continuing
        # what surrounds it carries the edit's own pixels inwards
        out["border"] = last = continue_border(last, kept_by_crop[0], crop_dist[0], max(fw, fh) / side)
    if consistent:
        out["consistent"] = project(last, keep[0], thumbnail_bounds(d.message, d.frame))
    return out


def recover(d: Found, refiner: RefineNet | None, border: bool = True, consistent: bool = True) -> Tensor:
    """The whole working frame (3, H, W): the last step of :func:`recover_variants`."""
    return list(recover_variants(d, refiner, border, consistent).values())[-1]
