"""FG-JPEG's generator and controller (the journal paper's Fig. 5 and Eq. 4).

The generator is a four-level U-Net whose shortcuts are convolutional blocks (conv, leaky-ReLU,
instance norm, as in the pre-processor) instead of plain concatenations, with bilinear
resampling between levels. The shortcut blocks of the lower three levels are modulated by the
controller, a six-layer MLP of QF / 100: three shared layers, then one layer per modulated level
that gives a channel-wise scale and shift (``F_out = a * Conv(F_in) + b``).

``base`` is what the U-Net's output is added to: ``"input"`` (the paper: the image itself),
``"diff"`` (kornia's differentiable JPEG of the image) or ``"codec"`` (our differentiable JPEG
that follows libjpeg's steps, ``paper/attacks/codec.py``); with a codec base the network learns
what the codec gets wrong instead of the whole compression. Any size is accepted.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Base = Literal["input", "diff", "codec"]
MIN_SIDE = 32  # halved after each of the four levels: 2 x 2 left at the bottom


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2), nn.InstanceNorm2d(cout, affine=True))


class Controller(nn.Module):
    """QF / 100 -> one (scale, shift) pair of channel vectors per modulated level."""

    def __init__(self, channels: list[int], hidden: int = 64) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(1, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                   nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2))
        self.heads = nn.ModuleList(nn.Linear(hidden, 2 * c) for c in channels)
        for h in self.heads:  # start as the identity modulation (a = 1, b = 0)
            nn.init.zeros_(h.weight)
            nn.init.zeros_(h.bias)

    def forward(self, quality: Tensor) -> list[tuple[Tensor, Tensor]]:
        f = self.trunk(quality.reshape(-1, 1) / 100)
        out = []
        for h in self.heads:
            a, b = h(f).chunk(2, 1)
            out.append((1 + a[..., None, None], b[..., None, None]))
        return out


class Generator(nn.Module):
    """(B, 3, H, W) in [0, 1] and per-sample quality (B,) -> the simulated JPEG (B, 3, H, W)."""

    def __init__(self, widths: tuple[int, ...] = (24, 48, 72, 96), base: Base = "codec") -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"widths {widths}: the generator has four levels")
        self.base = base
        cin = 3 if base == "input" else 6
        self.down = nn.ModuleList()
        self.skip = nn.ModuleList()
        for i, w in enumerate(widths):
            self.down.append(_block(cin if i == 0 else widths[i - 1], w))
            self.skip.append(nn.Conv2d(w, w, 3, padding=1))
        self.skip_act = nn.ModuleList(nn.Sequential(nn.LeakyReLU(0.2), nn.InstanceNorm2d(w, affine=True))
                                      for w in widths)
        self.bottom = _block(widths[-1], widths[-1])
        self.up = nn.ModuleList(_block(widths[i] + (widths[i + 1] if i + 1 < len(widths) else widths[-1]), widths[i])
                                for i in range(len(widths)))
        self.controller = Controller(list(widths[1:]))
        self.out = nn.Conv2d(widths[0], 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # starts as its base
        nn.init.zeros_(self.out.bias)

    def base_image(self, x: Tensor, quality: Tensor) -> Tensor:
        if self.base == "input":
            return x
        if self.base == "codec":
            from clrnet.paper.attacks.codec import jpeg_libjpeg_like

            return jpeg_libjpeg_like(x, quality)
        from kornia.enhance import jpeg_codec_differentiable

        return jpeg_codec_differentiable(x.clamp(0, 1), quality.to(x))

    def forward(self, x: Tensor, quality: Tensor | float) -> Tensor:
        q = torch.as_tensor(quality, dtype=x.dtype, device=x.device).reshape(-1)
        if q.numel() == 1 and x.shape[0] > 1:
            q = q.expand(x.shape[0])
        base = self.base_image(x, q)
        hh, ww = x.shape[-2:]
        h = x if self.base == "input" else torch.cat([x, base], 1)
        if min(hh, ww) < MIN_SIDE:  # the bottom level needs more than one pixel to normalise
            h = F.pad(h, (0, max(0, MIN_SIDE - ww), 0, max(0, MIN_SIDE - hh)), mode="replicate")
        mods = self.controller(q)
        shortcuts, sizes = [], []
        for i, (down, skip, act) in enumerate(zip(self.down, self.skip, self.skip_act)):
            h = down(h)
            s = skip(h)
            if i > 0:  # the lower three levels: F_out = a * Conv(F_in) + b
                a, b = mods[i - 1]
                s = a * s + b
            shortcuts.append(act(s))
            sizes.append(h.shape[-2:])
            h = F.interpolate(h, scale_factor=0.5, mode="bilinear", align_corners=False)
        h = self.bottom(h)
        for i in reversed(range(len(shortcuts))):
            h = F.interpolate(h, size=sizes[i], mode="bilinear", align_corners=False)
            h = self.up[i](torch.cat([shortcuts[i], h], 1))
        return base + self.out(h)[..., :hh, :ww]
