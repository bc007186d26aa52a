"""PSCC-Net: a top-down path of features at four scales, a bottom-up path of masks coarse to
fine, and a detection head (Liu et al., PSCC-Net, section 3).

Top-down: EfficientNet-Lite0 (``backbone``) gives four scales (strides 4 to 32); each is
brought to a width of its own and the four exchange information once as HRNet does (every
scale receives every other, resampled: the dense cross-connections). The features are then
resampled to fixed sizes (``SIZES``: the paper's 256/128/64/32 at a quarter, since our finest
scale has stride 4), so a photo of any size gives masks of the same sizes.
Bottom-up: M4 = f4(F4), M(n-1) = f(n-1)(F(n-1) (1 + up(M(n)))), each f an SCCM. Deviation:
the paper multiplies by the mask alone; (1 + M) keeps the features the coarse mask missed.
Detection: global mean and max of the four fused scales, two linear layers, one logit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clrnet.passive.backbone import CHANNELS, LiteBackbone
from clrnet.passive.sccm import SCCM

SIZES = (64, 32, 16, 8)  # fixed sizes of the four scales after the top-down path
RATIOS = (2, 1, 1, 1)  # SCCM's folding ratio r per scale


@dataclass(frozen=True)
class NetSpec:
    """What varies between the shipped model and its ablations."""

    widths: tuple[int, int, int, int] = (32, 48, 64, 96)
    attention: bool = True  # SCCM's spatial and channel-wise attention (off: the w/o SA+CA row)
    finest: int = 1  # the finest scale a mask is predicted at: 1 (all four), 4 (the coarsest only)

    @classmethod
    def from_config(cls, cfg: dict) -> "NetSpec":
        """The spec a training config (or the config stored with weights) describes."""
        return cls(widths=tuple(cfg.get("widths", cls.widths)), attention=bool(cfg.get("attention", True)),
                   finest=int(cfg.get("finest", 1)))


def resample(x: Tensor, size: int) -> Tensor:
    """``x`` brought to size x size: area averaging down, bilinear up."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if h >= size and w >= size:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


class Exchange(nn.Module):
    """Every scale receives the sum of all scales brought to its size (1x1 maps), then a 3x3."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.maps = nn.ModuleList(nn.ModuleList(nn.Conv2d(ws, wt, 1, bias=False) for ws in widths) for wt in widths)
        self.post = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                                                nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                                                nn.ReLU(inplace=True)) for w in widths)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        out = []
        for t, (maps, post) in enumerate(zip(self.maps, self.post)):
            h, w = xs[t].shape[-2:]
            acc = xs[t]
            for s, m in enumerate(maps):
                y = m(xs[s])
                if s != t:
                    y = F.adaptive_avg_pool2d(y, (h, w)) if s < t else F.interpolate(y, size=(h, w), mode="bilinear",
                                                                                     align_corners=False)
                acc = acc + y
            out.append(post(acc))
        return out


class PSCCNet(nn.Module):
    """``forward`` (N, 3, H, W) in [0, 1] → (detection logit (N,), mask logits finest first:
    (N, 1, 64, 64), (N, 1, 32, 32), ... down to the coarsest, as many as ``spec.finest`` asks)."""

    def __init__(self, spec: NetSpec = NetSpec()) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = LiteBackbone()
        self.project = nn.ModuleList(nn.Sequential(nn.Conv2d(c, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
                                     for c, w in zip(CHANNELS, spec.widths))
        self.exchange = Exchange(spec.widths)
        self.sccm = nn.ModuleList(SCCM(w, r, spec.attention) for w, r in zip(spec.widths, RATIOS))
        self.detect = nn.Sequential(nn.Linear(2 * sum(spec.widths), 128), nn.ReLU(inplace=True), nn.Linear(128, 1))

    def features(self, x: Tensor) -> list[Tensor]:
        """The four scales after the exchange, at their fixed sizes."""
        fs = [p(f) for p, f in zip(self.project, self.backbone(x))]
        return [resample(f, s) for f, s in zip(self.exchange(fs), SIZES)]

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        fs = self.features(x)
        pooled = [torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1) for f in fs]
        score = self.detect(torch.cat(pooled, 1))[:, 0]
        masks: list[Tensor] = []
        prev: Tensor | None = None
        for n in range(3, self.spec.finest - 2, -1):
            f = fs[n]
            if prev is not None:
                f = f * (1 + torch.sigmoid(F.interpolate(prev, size=f.shape[-2:], mode="bilinear", align_corners=False)))
            _, prev = self.sccm[n](f)
            masks.append(prev)
        return score, masks[::-1]
