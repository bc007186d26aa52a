"""The networks of CLR-Net: generator G, localizer C, pre-processor P, discriminators D."""

from clrnet.paper.networks.discriminator import PatchDiscriminator, lsgan_loss
from clrnet.paper.networks.hint import ThumbnailHint
from clrnet.paper.networks.invertible import (
    AffineCoupling,
    HaarDownsample,
    HaarUpsample,
    InvertibleUNet,
    coordinate_features,
)
from clrnet.paper.networks.localizer import Localizer, coordinate_targets
from clrnet.paper.networks.preprocessor import Preprocessor
from clrnet.sync.ruler import Ruler, RulerReadout

__all__ = [
    "AffineCoupling", "HaarDownsample", "HaarUpsample", "InvertibleUNet", "Localizer",
    "PatchDiscriminator", "Preprocessor", "Ruler", "RulerReadout", "ThumbnailHint", "coordinate_features", "coordinate_targets", "lsgan_loss",
]
