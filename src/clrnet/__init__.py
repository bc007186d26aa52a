"""clrnet: protect photos against malicious cropping (CLR-Net).

>>> import clrnet
>>> protected = clrnet.protect(photo)          # PIL image in, PIL image out
>>> found = clrnet.inspect(received)           # was it cropped, where, what was cut away
>>> found.cropped, found.score, found.box
>>> for r in clrnet.protect_many(["shoot/"], "protected/"):   # folders, globs; metadata kept
...     print(r.source, r.status)
"""

from clrnet.api import AlreadyProtectedError, Inspection, get_model, inspect, protect, thorough, with_key
from clrnet.batch.local import BatchResult, inspect_many, protect_file, protect_many
from clrnet.core.memory import keep_freed_memory
from clrnet.files.formats import OutputFormat
from clrnet.files.imageio import ImageInputError, Photo, read_photo
from clrnet.models.base import Model
from clrnet.models.zoo import available_models, load_model, model_card
from clrnet.protection.key import ProtectionKey, generate_key, load_key

__all__ = ["AlreadyProtectedError", "BatchResult", "ImageInputError", "Inspection", "Model", "OutputFormat", "Photo",
           "ProtectionKey", "available_models", "generate_key", "get_model", "inspect", "inspect_many",
           "keep_freed_memory", "load_key", "load_model", "model_card", "protect", "protect_file", "protect_many",
           "read_photo", "thorough", "with_key"]
__version__ = "0.1.0"
