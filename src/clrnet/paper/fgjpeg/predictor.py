"""The QF predictor (Fig. 5, the paper's "light-weight ResNet-32"): a plain, an SRM and a Bayar
convolution in parallel as the first layer, then CIFAR's ResNet-32 (three stages of five basic
blocks, 16/32/64 channels), classifying the quality factor of the last JPEG compression into
``QFS``. A whole photo is read as the mean of its tiles' logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clrnet.paper.fgjpeg.layers import BayarConv, SRMConv

QFS = (10, 30, 50, 70, 90, 100)
TILE = 64  # the side of the patches it is trained on; a photo is read tile by tile


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.skip = nn.Sequential()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + self.skip(x))


class QFPredictor(nn.Module):
    """(B, 3, H, W) in [0, 1] -> (B, len(QFS)) logits. ``blocks`` per stage: 5 is ResNet-32."""

    def __init__(self, blocks: int = 5, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.plain = nn.Conv2d(3, 10, 5, padding=2, bias=False)
        self.srm = SRMConv(3)
        self.bayar = BayarConv(3, 3)
        self.stem = nn.Sequential(nn.BatchNorm2d(10 + 9 + 3), nn.ReLU(),
                                  nn.Conv2d(22, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers: list[nn.Module] = []
        cin = widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks):
                layers.append(_Block(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, len(QFS))

    def forward(self, x: Tensor) -> Tensor:
        x = x * 255 - 128  # high-pass layers see pixel levels, as in the forensic literature
        f = torch.cat([self.plain(x / 64), self.srm(x), self.bayar(x)], 1)
        f = self.body(self.stem(f))
        return self.head(f.mean((2, 3)))


def tiles(photo: Tensor, most: int = 16, side: int = TILE) -> Tensor:
    """(N, 3, side, side): up to ``most`` tiles of ``photo`` (3, H, W) on an even grid (the
    photo itself, padded by reflection, when it is smaller)."""
    _, h, w = photo.shape
    if h < side or w < side:
        photo = F.pad(photo[None], (0, max(0, side - w), 0, max(0, side - h)), mode="replicate")[0]
        _, h, w = photo.shape
    ny = max(1, min(h // side, int(most ** 0.5)))
    nx = max(1, min(w // side, most // ny))
    ys = torch.linspace(0, h - side, ny).round().long().tolist()
    xs = torch.linspace(0, w - side, nx).round().long().tolist()
    return torch.stack([photo[:, y:y + side, x:x + side] for y in ys for x in xs])


@torch.no_grad()
def predict_qf(net: QFPredictor, photo: Tensor, most: int = 16) -> tuple[int, Tensor]:
    """(the predicted quality factor, the class probabilities) of ``photo`` (3, H, W) in [0, 1]:
    the mean of its tiles' logits."""
    net.eval()
    p = torch.softmax(net(tiles(photo, most)).mean(0), 0)
    return QFS[int(p.argmax())], p
