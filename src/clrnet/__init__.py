"""clrnet: protect photos against malicious cropping (CLR-Net).

>>> import clrnet
>>> protected = clrnet.protect(photo)          # PIL image in, PIL image out
>>> found = clrnet.inspect(received)           # was it cropped, where, what was cut away
>>> found.cropped, found.score, found.box
"""

from .config import ModelConfig, load_config
from .model import CLRNet, available_models, load_model
from .pipeline import Inspection, inspect, protect

__all__ = ["CLRNet", "Inspection", "ModelConfig", "available_models", "inspect", "load_config",
           "load_model", "protect"]
__version__ = "0.1.0"
