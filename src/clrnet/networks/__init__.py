"""The networks of CLR-Net: generator G, localizer C, pre-processor P, discriminators D."""

from .discriminator import PatchDiscriminator, lsgan_loss
from .hint import ThumbnailHint
from .invertible import AffineCoupling, HaarDownsample, HaarUpsample, InvertibleUNet, coordinate_features
from .localizer import Localizer, coordinate_targets
from .preprocessor import Preprocessor
from .ruler import Ruler, RulerReadout

__all__ = [
    "AffineCoupling", "HaarDownsample", "HaarUpsample", "InvertibleUNet", "Localizer",
    "PatchDiscriminator", "Preprocessor", "Ruler", "RulerReadout", "ThumbnailHint", "coordinate_features", "coordinate_targets", "lsgan_loss",
]
