"""The paper's CLR-Net at any photo size: the change drawn at its N x N native frame and carried to
the photo's size; a received photo brought to the native frame, localised and recovered."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from clrnet.core.geometry import FULL_FRAME, Box, resize
from clrnet.paper.model import CLRNet
from clrnet.sync.ruler import RulerReadout


@dataclass
class NativeInspection:
    cropped: bool
    score: float
    box: Box
    recovered: Tensor  # (3, N, N)
    processed: Tensor  # (3, N, N) received image after P
    protection: float | None = None  # ruler strength (matched readout only)
    protected: bool | None = None  # ruler found (matched readout only; None: unknown)


@torch.no_grad()
def inspect_native(model: CLRNet, received: Tensor) -> NativeInspection:
    """Localise and recover from a received image (3, h, w) in [0, 1], any size."""
    n = model.size
    x = resize(received[None].float(), n, n)
    processed, _ = model.preprocess(x)
    strength: float | None = None
    protected: bool | None = None
    if isinstance(model.localizer, RulerReadout):
        boxes, logits, s = model.localizer.read(processed)
        strength = float(s[0])
        protected = strength >= model.localizer.presence
    else:
        boxes, logits = model.localize(processed)
    score = float(torch.sigmoid(logits[0]))
    cropped = score >= 0.5
    box: Box = tuple(float(v) for v in boxes[0]) if cropped else FULL_FRAME  # type: ignore[assignment]
    recovered = model.recover(processed, [box])[0].clamp(0, 1)
    return NativeInspection(cropped, score, box, recovered, processed[0], strength, protected)


@torch.no_grad()
def protect_tensor(model: CLRNet, image: Tensor) -> Tensor:
    """Protect (3, H, W) in [0, 1] of any size; returns the same size, 8-bit rounded."""
    n = model.size
    h, w = image.shape[-2:]
    small = resize(image[None].float(), n, n)
    residual = model.protect(small) - small
    if (h, w) != (n, n):
        residual = resize(residual, h, w)
    out = (image[None] + residual).clamp(0, 1)
    return (out * 255).round()[0] / 255
