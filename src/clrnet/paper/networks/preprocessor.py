"""Pre-processor P: a six-block FCN applied to every received image.

Used Siamese-style (shared weights) on two differently attacked views of the
same crop; a consistency loss on its features (blocks 3-5) and on the two
views' outputs pulls different attacks into one distribution before
localisation and recovery. It is residual and starts as the identity.
"""

from __future__ import annotations

from torch import Tensor, nn

from clrnet.paper.config import PreprocessorConfig


class Preprocessor(nn.Module):
    def __init__(self, cfg: PreprocessorConfig) -> None:
        super().__init__()
        c = cfg.channels
        blocks = []
        for i in range(5):
            blocks.append(nn.Sequential(
                nn.Conv2d(3 if i == 0 else c, c, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.InstanceNorm2d(c, affine=True),
            ))
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv2d(c, 3, 3, padding=1)  # sixth block: back to an image
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Return the processed image and the features of blocks 3, 4 and 5."""
        h, feats = x, []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i >= 2:
                feats.append(h)
        return x + self.out(h), feats
