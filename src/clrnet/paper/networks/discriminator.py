"""PatchGAN discriminators D_A (protected vs original) and D_B (recovered vs
original), trained with the least-squares GAN loss."""

from __future__ import annotations

from torch import Tensor, nn

from clrnet.paper.config import DiscriminatorConfig


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        c, layers = cfg.channels, []
        c_in = 3
        for i in range(cfg.layers):
            layers += [nn.Conv2d(c_in, c * 2 ** i, 4, stride=2, padding=1)]
            if i > 0:
                layers += [nn.InstanceNorm2d(c * 2 ** i, affine=True)]
            layers += [nn.LeakyReLU(0.2)]
            c_in = c * 2 ** i
        layers += [nn.Conv2d(c_in, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 1, H/2^layers, W/2^layers) patch realness."""
        return self.net(x)


def lsgan_loss(pred: Tensor, real: bool) -> Tensor:
    return ((pred - (1.0 if real else 0.0)) ** 2).mean()


