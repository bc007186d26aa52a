"""The spatio-channel correlation module (PSCC-Net section 3.2).

A feature map X (N, C, H, W) is folded by ``r`` (each r x r patch becomes one token of C r^2
values: the paper's function h), embedded three times by 1x1 maps (g, theta, phi), and
attended over twice on the same embedding: across tokens, softmax(theta phi^T) g (spatial),
and across channels, g softmax(theta^T phi) (channel-wise). Both are unfolded (h^-1), mapped
by 1x1 convolutions and added to X with learned weights (alpha_s, alpha_c, both 1 at first):
Z = X + alpha_s w_s(Y_s) + alpha_c w_c(Y_c). A mask block (Conv-ReLU-Conv) turns Z into one
channel of logits. Deviation: the dot products are divided by the square root of their
length before the softmax (the paper's softmax is unscaled), which keeps it from saturating
at the start of training from scratch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def fold(x: Tensor, r: int) -> Tensor:
    """(N, C, H, W) → (N, H W / r^2, C r^2): each r x r patch one token (the paper's h)."""
    n, c, h, w = x.shape
    return F.pixel_unshuffle(x, r).flatten(2).transpose(1, 2) if r > 1 else x.flatten(2).transpose(1, 2)


def unfold(t: Tensor, c: int, h: int, w: int, r: int) -> Tensor:
    """The inverse of ``fold``."""
    y = t.transpose(1, 2).reshape(t.shape[0], c * r * r, h // r, w // r)
    return F.pixel_shuffle(y, r) if r > 1 else y


def spatial_attention(theta: Tensor, phi: Tensor, g: Tensor) -> Tensor:
    """softmax(theta phi^T / sqrt(d)) g for tokens (N, T, d): each token a weighted mean of all."""
    a = torch.softmax(theta @ phi.transpose(1, 2) / theta.shape[-1] ** 0.5, dim=-1)
    return a @ g


def channel_attention(theta: Tensor, phi: Tensor, g: Tensor) -> Tensor:
    """g softmax(theta^T phi / sqrt(T)) for tokens (N, T, d), the softmax along each row (as
    written in the paper, on the last axis): channel e of g is spread over the output channels
    in the shares of its row."""
    a = torch.softmax(theta.transpose(1, 2) @ phi / theta.shape[1] ** 0.5, dim=-1)
    return g @ a


class SCCM(nn.Module):
    """Spatial and channel-wise attention on one embedding, then the mask block.
    ``attention=False`` is the ablation without both (Z = X)."""

    def __init__(self, c: int, r: int, attention: bool = True) -> None:
        super().__init__()
        self.c, self.r, self.attention = c, r, attention
        d = c * r * r
        if attention:
            self.g = nn.Linear(d, d)
            self.theta = nn.Linear(d, d)
            self.phi = nn.Linear(d, d)
            self.w_s = nn.Conv2d(c, c, 1)
            self.w_c = nn.Conv2d(c, c, 1)
            self.alpha_s = nn.Parameter(torch.ones(()))
            self.alpha_c = nn.Parameter(torch.ones(()))
        self.mask = nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c // 2, 1, 3, padding=1))

    def correlate(self, x: Tensor) -> Tensor:
        """Z of equation (4)."""
        if not self.attention:
            return x
        _, c, h, w = x.shape
        t = fold(x, self.r)
        g, theta, phi = self.g(t), self.theta(t), self.phi(t)
        y_s = unfold(spatial_attention(theta, phi, g), c, h, w, self.r)
        y_c = unfold(channel_attention(theta, phi, g), c, h, w, self.r)
        return x + self.alpha_s * self.w_s(y_s) + self.alpha_c * self.w_c(y_c)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(Z, mask logits (N, 1, H, W))."""
        z = self.correlate(x)
        return z, self.mask(z)
