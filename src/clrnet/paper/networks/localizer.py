"""Localizer C: where in the original frame does the received image sit?

A light three-level U-Net turns the (pre-processed) received image into a
low-resolution map; the map is flattened into a four-layer MLP that outputs
the kept rectangle (x0, y0, x1, y1), normalised to [0, 1], and the crop score
S. Flattening keeps absolute position, which the box regression needs.

Our addition (deep supervision): the map has two channels that training
pushes towards the original-frame (x, y) coordinates of each received pixel.
A dense target gives every pixel a gradient instead of five numbers. Beware:
a map that ignores the input and returns the uncropped coordinates already
scores a low L1, so a low L1 alone does not show that position is decoded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clrnet.paper.config import LocalizerConfig


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.LeakyReLU(0.2),
    )


class Localizer(nn.Module):
    """(B, 3, N, N) -> (boxes (B, 4) in [0, 1] with x0<=x1, y0<=y1; score logits (B,))."""

    def __init__(self, cfg: LocalizerConfig, size: int) -> None:
        super().__init__()
        c1, c2, c3 = cfg.channels
        if size % (4 * cfg.map_stride * cfg.stem_stride):
            raise ValueError(f"size {size} must be divisible by {4 * cfg.map_stride * cfg.stem_stride}")
        self.enc1 = _block(3, c1, stride=cfg.stem_stride)  # N / stem
        self.enc2 = _block(c1, c2, stride=2)  # N/2
        self.enc3 = _block(c2, c3, stride=2)  # N/4
        self.dec2 = _block(c3 + c2, c2)
        self.dec1 = _block(c2 + c1, c1)
        self.head = nn.Conv2d(c1, 2, 3, padding=1)
        self.stride = cfg.map_stride
        n = 2 * (size // (cfg.map_stride * cfg.stem_stride)) ** 2
        dims = [n, *cfg.mlp_hidden, 5]
        mlp: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mlp += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.mlp = nn.Sequential(*mlp[:-1])
        self.size = size
        self.detach_head = cfg.detach_head

    def feature_map(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d2 = self.dec2(torch.cat([F.interpolate(e3, scale_factor=2.0), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], 1))
        m = self.head(d1)
        return F.avg_pool2d(m, self.stride) if self.stride > 1 else m

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        boxes, logits, _ = self.forward_dense(x)
        return boxes, logits

    def forward_dense(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Boxes, score logits and the (B, 2, h, w) coordinate map."""
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"localizer expects {self.size}x{self.size}, got {tuple(x.shape[-2:])}")
        fmap = self.feature_map(x)
        out = self.mlp((fmap.detach() if self.detach_head else fmap).flatten(1))
        a = torch.sigmoid(out[:, :4])
        x0, x1 = torch.minimum(a[:, 0], a[:, 2]), torch.maximum(a[:, 0], a[:, 2])
        y0, y1 = torch.minimum(a[:, 1], a[:, 3]), torch.maximum(a[:, 1], a[:, 3])
        return torch.stack([x0, y0, x1, y1], 1), out[:, 4], fmap


def coordinate_targets(boxes: Tensor, height: int, width: int) -> Tensor:
    """(B, 2, h, w): the original-frame (x, y) in [0, 1] of each cell of a received
    image that shows ``boxes`` (B, 4) of the original, resized to the full grid."""
    u = (torch.arange(width, dtype=boxes.dtype, device=boxes.device) + 0.5) / width
    v = (torch.arange(height, dtype=boxes.dtype, device=boxes.device) + 0.5) / height
    x = boxes[:, 0, None] + u[None] * (boxes[:, 2] - boxes[:, 0])[:, None]  # (B, w)
    y = boxes[:, 1, None] + v[None] * (boxes[:, 3] - boxes[:, 1])[:, None]  # (B, h)
    return torch.stack([x[:, None, :].expand(-1, height, -1), y[:, :, None].expand(-1, -1, width)], 1)
