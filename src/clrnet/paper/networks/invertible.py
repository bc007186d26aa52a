"""Invertible building blocks and the U-shaped generator G.

G's forward pass protects an image, its reverse pass recovers one. Every layer
is exactly invertible (up to float rounding): orthonormal Haar wavelet
transforms, channel flips, and double-sided affine couplings whose sub-networks
may see extra conditioning (here: Fourier features of the pixel coordinates, so
the protection can encode *where* in the frame each pixel sits).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from clrnet.paper.config import GeneratorConfig
from clrnet.paper.networks.hint import ThumbnailHint
from clrnet.sync.ruler import Ruler


class InvertibleModule(nn.Module):
    """A module with ``forward(x, cond)`` and an exact ``inverse(y, cond)``."""

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class HaarDownsample(InvertibleModule):
    """Orthonormal 2-D Haar transform: (B, C, H, W) -> (B, 4C, H/2, W/2).

    Channels come out band-major: [LL(C), LH(C), HL(C), HH(C)], so the first C
    channels are the low-pass image.
    """

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
        c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
        ll = (a + b + c + d) / 2
        lh = (a - b + c - d) / 2
        hl = (a + b - c - d) / 2
        hh = (a - b - c + d) / 2
        return torch.cat([ll, lh, hl, hh], dim=1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        ll, lh, hl, hh = torch.chunk(y, 4, dim=1)
        a = (ll + lh + hl + hh) / 2
        b = (ll - lh + hl - hh) / 2
        c = (ll + lh - hl - hh) / 2
        d = (ll - lh - hl + hh) / 2
        bsz, ch, h, w = ll.shape
        x = y.new_empty(bsz, ch, h * 2, w * 2)
        x[..., 0::2, 0::2], x[..., 0::2, 1::2] = a, b
        x[..., 1::2, 0::2], x[..., 1::2, 1::2] = c, d
        return x


class HaarUpsample(InvertibleModule):
    """The inverse Haar transform as a forward layer (the U's up path)."""

    def __init__(self) -> None:
        super().__init__()
        self.haar = HaarDownsample()

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.haar.inverse(x)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.haar(y)


def _subnet(c_in: int, c_out: int, hidden: int, dilation: int, sn: bool) -> nn.Sequential:
    """Small conv stack predicting (scale, shift); the last layer starts at zero
    so every coupling, and hence G, starts as the identity."""
    conv1 = nn.Conv2d(c_in, hidden, 3, padding=1)
    conv2 = nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation)
    if sn:
        conv1, conv2 = _sn(conv1), _sn(conv2)
    last = nn.Conv2d(hidden, 2 * c_out, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(conv1, nn.LeakyReLU(0.2), conv2, nn.LeakyReLU(0.2), last)


class AffineCoupling(InvertibleModule):
    """Double-sided affine coupling.

    y1 = x1 * exp(s1(x2)) + t1(x2);  y2 = x2 * exp(s2(y1)) + t2(y1),
    with log-scales softly clamped to (-clamp, clamp) by tanh.
    """

    def __init__(self, channels: int, split: int, hidden: int, cond_channels: int = 0,
                 clamp: float = 1.0, dilation: int = 1, spectral_norm: bool = False,
                 flip: bool = False) -> None:
        super().__init__()
        self.c1, self.c2 = split, channels - split
        self.clamp, self.flip = clamp, flip
        self.f1 = _subnet(self.c2 + cond_channels, self.c1, hidden, dilation, spectral_norm)
        self.f2 = _subnet(self.c1 + cond_channels, self.c2, hidden, dilation, spectral_norm)

    def _st(self, net: nn.Module, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        inp = x if cond is None else torch.cat([x, cond.expand(x.shape[0], -1, -1, -1)], 1)
        s, t = net(inp).chunk(2, dim=1)
        return self.clamp * torch.tanh(s / self.clamp), t

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if self.flip:
            x = x.flip(1)
        x1, x2 = x[:, : self.c1], x[:, self.c1:]
        s, t = self._st(self.f1, x2, cond)
        y1 = x1 * torch.exp(s) + t
        s, t = self._st(self.f2, y1, cond)
        y2 = x2 * torch.exp(s) + t
        y = torch.cat([y1, y2], 1)
        return y.flip(1) if self.flip else y

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        if self.flip:
            y = y.flip(1)
        y1, y2 = y[:, : self.c1], y[:, self.c1:]
        s, t = self._st(self.f2, y1, cond)
        x2 = (y2 - t) * torch.exp(-s)
        s, t = self._st(self.f1, x2, cond)
        x1 = (y1 - t) * torch.exp(-s)
        x = torch.cat([x1, x2], 1)
        return x.flip(1) if self.flip else x


class PositionCode(InvertibleModule):
    """y = x + P: an invertible, purely additive code of *where* each pixel sits
    in the frame (our addition; the inverse subtracts it again).

    ``ruler``: the mid-band separable code that :class:`RulerReadout` reads
    (see ``ruler.py``); ``fourier``: smooth sinusoids of x and y (one frequency
    per colour channel); ``random``: white noise. Fixed unless ``learn``.
    """

    def __init__(self, height: int, width: int, amplitude: float, pattern: str = "fourier",
                 learn: bool = False, channels: int = 3, band: tuple[int, int] = (20, 48)) -> None:
        super().__init__()
        if pattern == "ruler":
            if band[1] > 0.45 * min(height, width):
                raise ValueError(f"ruler band {band} too high for size {min(height, width)}: at most "
                                 f"{int(0.45 * min(height, width))} cycles per frame (below the Nyquist limit)")
            code = Ruler(band).code(height, width, 1.0, channels)
        elif pattern == "fourier":
            feats = coordinate_features(height, width, channels)[0, 2:]  # 4 per frequency
            code = torch.stack([feats[4 * c:4 * c + 4].sum(0) / 2 for c in range(channels)])[None]
        elif pattern == "random":
            code = torch.randn(1, channels, height, width, generator=torch.Generator().manual_seed(0))
        else:
            raise ValueError(f"unknown position code pattern {pattern!r}")
        code = amplitude * code
        if learn:
            self.code = nn.Parameter(code)
        else:
            self.register_buffer("code", code)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return x + self.code

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        return y - self.code


def coordinate_features(h: int, w: int, freqs: int, device: torch.device | None = None) -> Tensor:
    """(1, 2 + 4*freqs, h, w) map of x, y in [-1, 1] and sin/cos(pi 2^k x), (.. y)."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    feats = [gx, gy]
    for k in range(freqs):
        f = math.pi * (2 ** k)
        feats += [torch.sin(f * gx), torch.cos(f * gx), torch.sin(f * gy), torch.cos(f * gy)]
    return torch.stack(feats)[None]


def _is_fixed(layer: nn.Module) -> bool:
    """Layers with no learned parameters that add a budgeted signal (hint, fixed code)."""
    return isinstance(layer, ThumbnailHint) or (isinstance(layer, PositionCode)
                                                and not layer.code.requires_grad)


class InvertibleUNet(InvertibleModule):
    """Generator G: ``levels`` Haar down-steps, each followed by
    ``blocks_per_level`` couplings, then the mirrored up path.

    ``forward`` maps an original image to its protected version; ``inverse``
    maps a (zero-padded, re-sized) received image back to the original.
    """

    def __init__(self, cfg: GeneratorConfig, size: int | None = None, in_channels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.cond_channels = 2 + 4 * cfg.coord_freqs if cfg.coord_freqs > 0 else 0
        self.layers = nn.ModuleList()
        self.layer_level: list[int] = []  # resolution level each coupling works at
        ch = in_channels
        bottom = cfg.levels
        dil = cfg.bottom_dilations or [1]

        def couplings(level: int, channels: int) -> None:
            hidden = cfg.hidden[min(level - 1, len(cfg.hidden) - 1)]
            bpl = cfg.blocks_per_level
            n_blocks = bpl[min(level - 1, len(bpl) - 1)] if isinstance(bpl, list) else bpl
            for j in range(n_blocks):
                d = dil[j % len(dil)] if level == bottom else 1
                self.layers.append(AffineCoupling(
                    channels, channels // 4 if level == 1 else channels // 2, hidden,
                    self.cond_channels, cfg.clamp, d, cfg.spectral_norm, flip=bool(j % 2)))
                self.layer_level.append(level)

        for level in range(1, bottom + 1):
            self.layers.append(HaarDownsample())
            self.layer_level.append(level)
            ch *= 4
            couplings(level, ch)
        for level in range(bottom - 1, -1, -1):
            self.layers.append(HaarUpsample())
            self.layer_level.append(level)
            ch //= 4
            if level >= 1:
                couplings(level, ch)
        if cfg.hint_cells > 0:
            if size is None:
                raise ValueError("a thumbnail hint needs the native size")
            self.layers.append(ThumbnailHint(size, cfg.hint_cells, cfg.hint_amplitude, cfg.hint_band))
            self.layer_level.append(0)
        if cfg.position_code != "none":
            # Last layer of the forward pass (first of the reverse): nothing after it
            # can cancel the code, and the couplings before it do not know positions.
            if size is None:
                raise ValueError("a position code needs the native size")
            self.layers.append(PositionCode(size, size, cfg.position_code_amplitude,
                                            cfg.position_code, cfg.position_code_learn, in_channels,
                                            cfg.position_code_band))
            self.layer_level.append(0)
        self._cond_cache: dict[tuple[int, int, int, str], Tensor] = {}

    def position_code(self) -> Tensor | None:
        """The fixed additive code P of the last layer, if any (part of every protected image)."""
        last = self.layers[-1]
        return last.code if isinstance(last, PositionCode) else None

    def hint(self) -> ThumbnailHint | None:
        """The thumbnail-hint layer, if any."""
        return next((m for m in self.layers if isinstance(m, ThumbnailHint)), None)

    def _cond(self, level: int, h: int, w: int, device: torch.device) -> Tensor | None:
        if not self.cond_channels:
            return None
        key = (level, h, w, str(device))
        if key not in self._cond_cache:
            s = 2 ** level
            self._cond_cache[key] = coordinate_features(h // s, w // s, self.cfg.coord_freqs, device)
        return self._cond_cache[key]

    def _check(self, x: Tensor) -> None:
        m = 2 ** self.cfg.levels
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"G needs sides divisible by {m}, got {tuple(x.shape[-2:])}")

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.forward_parts(x)[0]

    def forward_parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(protected, learned): ``learned`` is the output before the fixed layers (hint,
        position code), the part the protection loss constrains; the fixed layers
        have their own, configured, budget."""
        self._check(x)
        h, w = x.shape[-2:]
        learned = x
        for layer, level in zip(self.layers, self.layer_level):
            x = layer(x, self._cond(level, h, w, x.device))
            if not _is_fixed(layer):
                learned = x
        return x, learned

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        self._check(y)
        h, w = y.shape[-2:]
        for layer, level in zip(reversed(self.layers), reversed(self.layer_level)):
            y = layer.inverse(y, self._cond(level, h, w, y.device))
        return y
