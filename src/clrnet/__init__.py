"""clrnet: protect photos against malicious cropping (CLR-Net).

>>> import clrnet
>>> protected = clrnet.protect(photo)          # PIL image in, PIL image out
>>> found = clrnet.inspect(received)           # was it cropped, where, what was cut away
>>> found.cropped, found.score, found.box
>>> for r in clrnet.protect_many(["shoot/"], "protected/"):   # folders, globs; metadata kept
...     print(r.source, r.status)
"""

from clrnet.api import Inspection, inspect, protect
from clrnet.batch.local import BatchResult, inspect_many, protect_file, protect_many
from clrnet.core.memory import keep_freed_memory
from clrnet.files.formats import OutputFormat
from clrnet.files.imageio import ImageInputError, Photo, read_photo
from clrnet.models.zoo import available_models, load_model
from clrnet.paper.config import ModelConfig, load_config
from clrnet.paper.model import CLRNet

__all__ = ["BatchResult", "CLRNet", "ImageInputError", "Inspection", "ModelConfig", "OutputFormat", "Photo",
           "available_models", "inspect", "inspect_many", "keep_freed_memory", "load_config", "load_model", "protect", "protect_file",
           "protect_many", "read_photo"]
__version__ = "0.1.0"
