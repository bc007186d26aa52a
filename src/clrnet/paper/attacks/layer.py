"""The attack layer A used in training: region selection, then one randomly
drawn post-processing attack per sample, then the recipient's resize to the
native frame and 8-bit quantisation.

With ``detach_attack`` (the paper's gradient stabilisation) the
post-processing difference is detached, so gradients flow as if the attack
were the identity and any real, non-differentiable operation can be used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from clrnet.core.geometry import Box, crop, resize
from clrnet.paper.attacks import functional as A
from clrnet.paper.attacks.jpeg import simulate
from clrnet.paper.config import AttackConfig


@dataclass
class AttackDraw:
    """One attack with its sampled parameters (recorded for logs and tests)."""

    name: str
    params: dict[str, float]


def draw_attack(rng: np.random.Generator, cfg: AttackConfig, name: str | None = None) -> AttackDraw:
    name = name or str(rng.choice(cfg.attacks))
    p: dict[str, float] = {}
    if name in ("jpeg", "jpeg_diff", "jpeg_resize"):
        p["quality"] = float(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    if name in ("resize", "jpeg_resize"):
        p["scale"] = float(rng.uniform(*cfg.resize_scale))
    if name == "gaussian_blur":
        p["sigma"] = float(rng.uniform(*cfg.blur_sigma))
    if name == "median_blur":
        p["kernel_size"] = float(rng.choice(cfg.median_kernel))
    if name == "awgn":
        p["sigma"] = float(rng.uniform(*cfg.noise_sigma))
    if name == "dropout":
        p["rate"] = float(rng.uniform(*cfg.dropout_rate))
    if name == "contrast":
        p["factor"] = float(rng.uniform(*cfg.contrast))
    if name == "brightness":
        p["delta"] = float(rng.uniform(*cfg.brightness))
    return AttackDraw(name, p)


JPEG_ATTACKS = ("jpeg", "jpeg_resize")


def apply_attack(x: Tensor, draw: AttackDraw, generator: torch.Generator | None = None,
                 differentiable_jpeg: bool = False, simulator: str = "real",
                 fg: torch.nn.Module | None = None) -> Tensor:
    """Apply one drawn attack to (B, 3, H, W). The jpeg attacks: real JPEG (its gradient kornia's
    if ``differentiable_jpeg``, else the identity's), or the JPEG ``simulator`` (``fg``: FG-JPEG's
    generator)."""
    p, n = draw.params, draw.name
    if n in ("resize", "jpeg_resize"):
        x = A.rescale(x, p["scale"])
    if n in JPEG_ATTACKS and simulator != "real":
        return simulate(simulator, x, int(p["quality"]), fg, generator)
    if n in JPEG_ATTACKS:
        sim = A.jpeg_differentiable(x, p["quality"]) if differentiable_jpeg else x
        return A.straight_through(sim, A.jpeg_pillow(x, int(p["quality"])))
    if n == "jpeg_diff":
        return A.jpeg_differentiable(x, p["quality"])
    if n == "gaussian_blur":
        return A.gaussian_blur(x, p["sigma"])
    if n == "median_blur":
        return A.median_blur(x, int(p["kernel_size"]))
    if n == "awgn":
        return A.awgn(x, p["sigma"], generator)
    if n == "dropout":
        return A.pixel_dropout(x, p["rate"], generator)
    if n == "contrast":
        return A.contrast(x, p["factor"])
    if n == "brightness":
        return A.brightness(x, p["delta"])
    if n in ("identity", "resize"):
        return x
    raise ValueError(f"unknown attack {n!r}")


class AttackLayer(torch.nn.Module):
    """Crop each protected image at its box, post-process it, bring it back to the
    native ``size`` and quantise: what the recipient's networks receive."""

    def __init__(self, cfg: AttackConfig, size: int) -> None:
        super().__init__()
        self.cfg, self.size = cfg, size
        self._fg: list[torch.nn.Module] = []  # FG-JPEG's frozen generator, kept out of this module's parameters
        if cfg.jpeg == "fg":
            from clrnet.paper.fgjpeg.weights import load_generator, shipped

            self._fg.append(load_generator(shipped(cfg.fg_weights)))

    @property
    def fg(self) -> torch.nn.Module | None:
        """FG-JPEG's generator when ``attack.jpeg`` is ``fg``."""
        return self._fg[0] if self._fg else None

    def forward(self, x: Tensor, boxes: list[Box], draws: list[AttackDraw],
                generator: torch.Generator | None = None) -> Tensor:
        out = []
        for img, box, draw in zip(x, boxes, draws):
            frag = crop(img[None], box)
            attacked = apply_attack(frag, draw, generator, differentiable_jpeg=not self.cfg.detach_attack,
                                    simulator=self.cfg.jpeg, fg=self.fg)
            simulated = draw.name in JPEG_ATTACKS and self.cfg.jpeg != "real"
            if self.cfg.detach_attack and not simulated:
                # Gradient stabilisation: delta = atk - frag is detached; only the
                # geometric part (crop + resizes) carries gradients.
                if attacked.shape[-2:] != frag.shape[-2:]:
                    frag = resize(frag, *attacked.shape[-2:])
                attacked = frag + (attacked - frag).detach()
            out.append(resize(attacked, self.size, self.size))
        return A.quantize(torch.cat(out))
