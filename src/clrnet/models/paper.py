"""The paper's CLR-Net (``clrnet-small-128``) behind the Model protocol: it works on an
N x N native frame; the change is carried to the photo's own size, and a received photo
is brought to the native frame to be read."""

from __future__ import annotations

from torch import Tensor

from clrnet.models.base import ModelReading
from clrnet.paper.inference import inspect_native, protect_tensor
from clrnet.paper.model import CLRNet
from clrnet.protection.key import ProtectionKey


class PaperModel:
    """A :class:`CLRNet` (``net``) as a :class:`~clrnet.models.base.Model`."""

    kind = "paper"
    demo_size: int | None = None

    def __init__(self, net: CLRNet, name: str | None = None) -> None:
        self.net = net
        self.name = name or net.cfg.name

    def protect(self, image: Tensor) -> Tensor:
        return protect_tensor(self.net, image)

    def read(self, received: Tensor) -> ModelReading:
        res = inspect_native(self.net, received)
        return ModelReading(res.cropped, res.score, res.box, res.recovered, received, res.protected, res.protection)

    def carries_protection(self, image: Tensor) -> bool:
        return bool(inspect_native(self.net, image).protected)

    def with_key(self, key: ProtectionKey | None) -> "PaperModel":
        if key is None:
            return self
        raise ValueError(f"--key needs protection v2 (--model clrnet-v2): {self.net.cfg.name} has no keyed patterns")

    def looking_beneath(self, on: bool) -> "PaperModel":
        if not on:
            return self  # the paper's model never looks beneath
        raise ValueError(f"--thorough needs protection v2 (--model clrnet-v2): {self.net.cfg.name} has one layer")
