"""Dropped pixels put back before a photo is read.

A photo whose pixels were knocked out to pure black or white (pixel dropout, salt and
pepper noise; ``attacks.real.pixel_dropout``) carries an impulse at each: after the
reader's whitening every one is a spike far stronger than the protection around it,
and once the photo is resampled to its working frame the spikes smear into their
neighbours. Replacing them by the median of their 3 x 3 neighbourhood first costs
nothing where there are none.

Only pixels that stand out are touched: pure black (all channels 0) where the
neighbourhood's median is brighter than ``dark``, pure white where it is darker than
255 - ``dark``; and only when they are common (at least ``least`` of the photo, 2 %):
dropout leaves about its own share, while untouched photos almost never have that many.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor


def impulses(photo: np.ndarray, dark: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (h, w): the pixels of ``photo`` (h, w, 3 uint8) that are impulses; and the
    3 x 3 median photo that replaces them."""
    med = cv2.medianBlur(np.ascontiguousarray(photo), 3)
    mlum = med.astype(np.int16).mean(2)
    black = (photo.max(2) == 0) & (mlum > dark)
    white = (photo.min(2) == 255) & (mlum < 255 - dark)
    return black | white, med


def repair_impulses(received: Tensor, least: float = 0.02, dark: int = 48) -> Tensor:
    """The received photo (3, h, w in [0, 1]) with its dropped pixels replaced by their
    neighbourhood's median; the same tensor when fewer than ``least`` of them are."""
    if received.dim() != 3 or received.shape[0] != 3 or min(received.shape[-2:]) < 3:
        return received
    x = received.detach()
    pure = (x < 0.5 / 255).all(0) | (x >= 254.5 / 255).all(0)  # what could be one, as 8 bits
    if float(pure.float().mean()) < least:  # the usual case, and a photo already repaired:
        return received  # no median to take
    photo = (received.detach().float().clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    bad, med = impulses(photo, dark)
    if bad.mean() < least:
        return received
    out = received.clone()
    where = torch.from_numpy(bad)
    out[:, where] = torch.from_numpy(med[bad].T.astype(np.float32) / 255).to(received.dtype)
    return out
