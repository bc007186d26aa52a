"""The Model protocol: what ``api.protect`` / ``api.inspect`` need of any model, the
designed protection (``models.designed``) and the paper's CLR-Net (``models.paper``) alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

from clrnet.core.geometry import Box
from clrnet.protection.key import ProtectionKey


@dataclass
class ModelReading:
    """What a model read in a received photo, in its own frame.

    ``recovered`` is the whole original at the model's working resolution (3, H, W);
    ``source`` the received pixels as the model read them (3, h, w; dropped pixels put
    back); ``edited`` and ``presence`` (h', w') cover the kept part at the model's
    resolution, where the model reads edits (None elsewhere)."""

    cropped: bool
    score: float
    box: Box
    recovered: Tensor
    source: Tensor
    protected: bool | None = None  # False: no protection found; None: the model cannot tell
    protection: float | None = None  # strength of the protection signal, where measurable
    payload: bool | None = None  # the payload was decoded (models that carry one)
    edited: Tensor | None = None  # (h', w') bool: edited after protection
    presence: Tensor | None = None  # (h', w') in [0, 1]: where the protection is intact
    layers: list[dict] | None = None  # every protection found, newest first


@runtime_checkable
class Model(Protocol):
    """A protection: protect a photo tensor, read a received one."""

    name: str
    kind: str  # "designed" (protection v2) or "paper" (the published CLR-Net): what studies apply
    demo_size: int | None  # the size the demo enlarges its photo to (None: the photo's own)

    def protect(self, image: Tensor) -> Tensor:
        """(3, H, W) in [0, 1] -> the protected photo, same size, rounded to 8 bits."""
        ...

    def read(self, received: Tensor) -> ModelReading:
        """Was ``received`` (3, h, w) cropped, where, and what was cut away?"""
        ...

    def carries_protection(self, image: Tensor) -> bool:
        """The quick test: does the photo already carry this model's protection?"""
        ...

    def with_key(self, key: ProtectionKey | None) -> "Model":
        """The same model with a secret key's patterns (ValueError where keys do not apply)."""
        ...

    def looking_beneath(self, on: bool) -> "Model":
        """The same model looking (or not) beneath every protection it takes away
        (ValueError where there is only one layer and ``on``)."""
        ...
