"""Where a protected photo was edited: the presence map read against the decoded payload.

The payload decoder knows the codeword every block should carry (``Decoded.codeword``);
``channel.presence_map`` measures, block by block, how much of it is still there (about 1
where intact, about 0 where the pixels came from elsewhere: pasted, moved by an offset the
tiling does not repeat, or repainted). An edit is a region where the presence is low:
seeds below ``low`` grown through pixels below ``high`` (hysteresis keeps the region's
outline without letting noise start one), regions smaller than ``min_area`` of the frame
dropped (the map's noise after JPEG makes small specks). When the map is noisy (a heavy
JPEG, a median filter, dropout: the SNR ``channel.presence_map`` returns below ``NOISY_SNR``) the stricter
``STRICT`` thresholds apply: weak regions of an unedited photo look like edits there; so
they do when the window still carries the trace of a JPEG compression at quality 75 or
below (``jpeg_trace``), which empties smooth neighbourhoods whatever the SNR says.
Where the received photo is
clipped (near black or white) no protection can survive, edited or not: those parts are
never marked.

Since 2026-12-02 these thresholds stand in only where the learned reading of the same evidence
(``segment``, shipped in ``weights/clrnet-v2``) is switched off (``ProtectionConfig(tamper_net=False)``)
or absent; they still choose the blocks left out when a payload is decoded again around an edit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class TamperThresholds:
    """Chosen on val (bsds500 at 256 px and native size, JPEG 80; ``clrnet eval --tamper``)."""

    low: float = 0.30  # presence below which a pixel can start an edited region
    high: float = 0.55  # presence below which an edited region grows
    min_area: float = 0.02  # share of the window an edited region must cover to count
    clipped: float = 6.0  # levels from black or white within which the protection cannot live


STRICT = TamperThresholds(low=0.10, high=0.40, min_area=0.05)
NOISY_SNR = 0.75  # intact-block SNR below which STRICT applies: there weak regions of unedited
# photos look like edits, and far fewer false alarms are worth a little mask F1
JPEG_STRICT = 75  # JPEG quality at or below which STRICT applies whatever the SNR: heavy JPEG
# empties smooth areas; at 80 STRICT cost F1 for no fewer false alarms, so 80 keeps the SNR rule


def thresholds_for(snr: float, jpeg_quality: int | None = None) -> TamperThresholds:
    """The thresholds for a presence map whose intact blocks read at ``snr``, in a window
    last JPEG-compressed at ``jpeg_quality`` (None: no trace of it). JPEG empties smooth
    neighbourhoods of the protection unevenly: a photo with texture keeps a high SNR in its
    better half while its sky reads as missing, so the SNR alone does not call it noisy."""
    noisy = snr < NOISY_SNR or (jpeg_quality is not None and jpeg_quality <= JPEG_STRICT)
    return STRICT if noisy else TamperThresholds()


def unreadable(window: Tensor, reach: int, clipped: float = 6.0) -> Tensor:
    """Boolean (h, w): where most of the ``reach``-pixel neighbourhood of the window
    (3, h, w in [0, 1]) is clipped to black or white (the protection is cut off there)."""
    lum = window.detach().float().mean(0).cpu().numpy() * 255
    near = (np.minimum(lum, 255 - lum) < clipped).astype(np.float32)
    k = 2 * reach + 1
    return torch.from_numpy(cv2.blur(near, (k, k)) > 0.5)


def tamper_mask(presence: Tensor, skip: Tensor | None = None, t: TamperThresholds = TamperThresholds()) -> Tensor:
    """Boolean (h, w): where ``presence`` (h, w, in [0, 1]) says the window was edited;
    never where ``skip`` (h, w, bool: unreadable parts) is set."""
    p = presence.detach().float().cpu().numpy()
    if p.size == 0:
        return torch.zeros(presence.shape, dtype=torch.bool)
    if skip is not None:
        p = np.where(skip.cpu().numpy(), 1.0, p)
    weak = (p < t.high).astype(np.uint8)
    strong = p < t.low
    n, labels, stats, _ = cv2.connectedComponentsWithStats(weak, connectivity=8)
    keep = np.zeros(n, dtype=bool)
    if n > 1:
        seeded = np.unique(labels[strong & (weak > 0)])
        keep[seeded] = True
        keep[0] = False
        keep &= stats[:, cv2.CC_STAT_AREA] >= t.min_area * p.size
    return torch.from_numpy(keep[labels])


def regions(mask: Tensor, min_area: float) -> Tensor:
    """``mask`` (h, w, bool) without its 8-connected regions smaller than ``min_area`` of it."""
    m = mask.cpu().numpy().astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area * m.size
    keep[0] = False
    return torch.from_numpy(keep[labels])


def tamper_score(mask: Tensor) -> float:
    """The share of the window marked as edited (0 when nothing was)."""
    return float(mask.float().mean()) if mask.numel() else 0.0
