"""The predictor's forensic first layers (Fig. 5): fixed SRM high-pass filters and Bayar's
constrained convolution, which both see the high frequencies JPEG changes, not the scene."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Fridrich & Kodovsky's three SRM residual kernels as used in manipulation detection
# (first-order edge, second-order "KV", second-order horizontal), each normalised to unit gain.
_SRM = (
    [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
    [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
)
_SRM_SCALE = (4.0, 12.0, 2.0)


def srm_kernels() -> Tensor:
    """(3, 5, 5) float: the SRM kernels, each summing to zero."""
    return torch.stack([torch.tensor(k, dtype=torch.float32) / s for k, s in zip(_SRM, _SRM_SCALE)])


class SRMConv(nn.Module):
    """Each SRM kernel on each input channel (fixed, not learned): (B, C, H, W) -> (B, 3C, H, W)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("weight", srm_kernels().repeat(channels, 1, 1)[:, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, padding=2, groups=self.channels)


class BayarConv(nn.Module):
    """Bayar & Stamm's constrained convolution: each kernel's centre is -1 and its other taps
    sum to 1, so it predicts a pixel from its neighbours and outputs the residual. The
    constraint is applied to the raw weights in every forward pass, so it holds after any step."""

    def __init__(self, cin: int, cout: int, k: int = 5) -> None:
        super().__init__()
        self.k = k
        self.raw = nn.Parameter(torch.rand(cout, cin, k * k) * 0.1 + 0.01)

    def kernel(self) -> Tensor:
        """(cout, cin, k, k): the constrained kernels."""
        c = self.k * self.k // 2
        w = self.raw.clone()
        w[..., c] = 0
        total = w.sum(-1, keepdim=True)
        w = w / torch.where(total.abs() < 1e-6, torch.ones_like(total), total)
        w[..., c] = -1
        return w.reshape(*w.shape[:2], self.k, self.k)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.kernel(), padding=self.k // 2)
