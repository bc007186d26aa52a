"""The passive detector at work: a photo in, a score, a verdict and a per-pixel map out.

``PassiveDetector`` holds the network and the verdict threshold shipped with its weights
(``weights/<name>/<name>.safetensors``, its card beside it). A photo wider or taller than
``max_side`` is first brought down to it (area averaging): the network resamples its features
to fixed sizes anyway, and the cost of the top-down path grows with the pixels. The map is the
finest mask, resized back to the photo's frame. Everything here is an estimate from the pixels
alone: no protection is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from clrnet.passive.network import NetSpec, PSCCNet

DEFAULT = "pscc-passive"
MAX_SIDE = 1536
MIN_SIDE = 32  # the smallest photo the four scales can be read from


@dataclass(frozen=True)
class PassiveResult:
    """``score``: the detection head's probability that the photo was edited (0-1); ``edited``:
    ``score`` at or above the shipped threshold; ``map``: (H, W) float32, the per-pixel
    probability of being edited, in the photo's frame."""

    score: float
    edited: bool
    map: np.ndarray
    threshold: float

    def map_image(self) -> Image.Image:
        """The map as an ``L`` image (0-255)."""
        return Image.fromarray((np.clip(self.map, 0, 1) * 255).round().astype(np.uint8), "L")

    def mask_image(self) -> Image.Image:
        """The map's binary verdict (255 edited): pixels at 0.5 or above, none when the photo
        as a whole is not called edited."""
        m = (self.map >= 0.5) & self.edited
        return Image.fromarray(m.astype(np.uint8) * 255, "L")


def weights_path(name: str) -> Path:
    """The shipped weights of ``name``, or a .safetensors file given by path."""
    p = Path(name)
    if p.suffix == ".safetensors" and p.is_file():
        return p
    res = resources.files("clrnet") / "weights" / name / f"{name}.safetensors"
    if not res.is_file():
        raise FileNotFoundError(f"{name}: no such passive model (shipped: {DEFAULT})")
    return Path(str(res))


class PassiveDetector:
    def __init__(self, net: PSCCNet, threshold: float, max_side: int = MAX_SIDE) -> None:
        self.net = net.eval()
        self.threshold = threshold
        self.max_side = max_side

    @classmethod
    def load(cls, name: str = DEFAULT) -> "PassiveDetector":
        path = weights_path(name)
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        cfg = json.loads(meta.get("passive_config", "{}"))
        spec = NetSpec.from_config(cfg)
        net = PSCCNet(spec)
        net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
        return cls(net, float(meta.get("threshold", 0.5)))

    def working(self, photo: np.ndarray) -> np.ndarray:
        """The photo as the network sees it (at most ``max_side`` on its long side)."""
        h, w = photo.shape[:2]
        f = self.max_side / max(h, w)
        if f >= 1:
            return photo
        size = (max(32, round(w * f)), max(32, round(h * f)))
        return np.asarray(Image.fromarray(photo).resize(size, Image.BOX))

    @torch.no_grad()
    def __call__(self, photo: np.ndarray) -> PassiveResult:
        """``photo`` (H, W, 3) uint8 RGB, at least 32 x 32."""
        h, w = photo.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"{w} x {h}: too small for the passive detector ({MIN_SIDE} x {MIN_SIDE} at least)")
        x = torch.from_numpy(np.array(self.working(photo), dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
        score, masks = self.net(x)
        prob = torch.sigmoid(F.interpolate(masks[0], size=(h, w), mode="bilinear", align_corners=False))[0, 0]
        s = float(torch.sigmoid(score)[0])
        return PassiveResult(score=s, edited=s >= self.threshold, map=prob.numpy().astype(np.float32),
                             threshold=self.threshold)


@lru_cache(maxsize=2)
def detector(name: str = DEFAULT) -> PassiveDetector:
    """The named detector, loaded once per process."""
    return PassiveDetector.load(name)
