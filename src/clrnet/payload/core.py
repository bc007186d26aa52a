"""The core layer: a low-frequency keyed pattern that survives what the payload's carrier does not.

The payload's carrier has periods of 3-8 working pixels: a copy downscaled to half its working
frame loses it, and with it the pilots that confirm a box. The core is a band-limited random
field (``band`` in cycles per working pixel, periods of about 11-33) whose sign flips from
cell to cell (``cell`` working pixels) in a keyed pattern known to the reader: every cell is a
pilot. Downscaled to 0.3 of the frame its periods are still 3-10 pixels, which JPEG keeps.

The field is cut from the centre of one fixed canvas, so a frame one pixel off in its height
still reads the same pattern (half a pixel away), while a box that misplaces the frame's
extent (the top two thirds of a taller frame) reads it nowhere. Reading correlates the
received window, band-passed and normalised by its local energy, with the expected field
(weighted by the JND, as the embedding is) over a small range of shifts; per cell, so the
statistic normalises itself: without the pattern it is about a standard normal at every shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from clrnet.core.geometry import Box
from clrnet.core.image import luminance
from clrnet.core.jnd import jnd_map
from clrnet.sync.align import resample

CANVAS = 2048  # the largest working frame's long side
NORM_WINDOW = 15  # pixels (read) over which the received band is brought to unit energy
READ_SIDE = 768  # the long side the core is read at (at most)
# cells a window must span for its statistic to be about normal: a self-normalised sum over a
# few cells has heavy tails (a 128 px photo placed at a fifth of a 1024 px frame spans ten
# cells, and one never protected read 13.8)
MIN_CELLS = 48


@lru_cache(maxsize=4)
def _canvas(lo: float, hi: float, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    fy = torch.fft.fftfreq(CANVAS, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(CANVAS, dtype=torch.float64)[None, :]
    r = (fx ** 2 + fy ** 2).sqrt()
    band = ((r >= lo) & (r <= hi)).double()
    spec = torch.complex(torch.randn(r.shape, generator=g, dtype=torch.float64),
                         torch.randn(r.shape, generator=g, dtype=torch.float64)) * band
    p = torch.fft.irfft2(spec, s=(CANVAS, CANVAS))
    return (p / p.pow(2).mean().sqrt()).float()


@lru_cache(maxsize=4)
def _signs(seed: int, cell: int) -> Tensor:
    n = math.ceil(CANVAS / cell)
    g = torch.Generator().manual_seed(seed + 1)
    s = (torch.randint(0, 2, (n, n), generator=g) * 2 - 1).float()
    return s.repeat_interleave(cell, 0).repeat_interleave(cell, 1)


def _bandpass(y: Tensor, lo: float, hi: float) -> Tensor:
    h, w = y.shape
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    r = (fx ** 2 + fy ** 2).sqrt()
    keep = ((r >= 0.8 * lo) & (r <= 1.2 * hi)).float()
    return torch.fft.irfft2(torch.fft.rfft2(y) * keep, s=(h, w))


def _unit_energy(y: Tensor) -> Tensor:
    k = NORM_WINDOW
    power = F.avg_pool2d((y * y)[None, None], k, 1, k // 2, count_include_pad=False)[0, 0]
    return y / power.sqrt().clamp_min(1e-3)


@dataclass(frozen=True)
class CoreReading:
    """The core's statistic at its best shift, and the box moved by that shift."""

    z: float
    box: Box
    shift: tuple[int, int]  # (dy, dx) in working pixels


@dataclass(frozen=True)
class Core:
    """The core pattern of one key: its band, its cells and its seed."""

    band: tuple[float, float] = (0.03, 0.09)
    cell: int = 64
    seed: int = 77
    jnd: tuple[float, float, float] = (1.25, 0.35, 10.0)  # the embedding's JND (floor, slope, cap)

    def pattern(self, width: int, height: int) -> Tensor:
        """(height, width) the signed field of a working frame, unit mean power."""
        if max(width, height) > CANVAS:
            raise ValueError(f"a working frame of {width} x {height} exceeds the core's canvas ({CANVAS})")
        y, x = (CANVAS - height) // 2, (CANVAS - width) // 2
        at = (slice(y, y + height), slice(x, x + width))
        return _canvas(*self.band, self.seed)[at] * _signs(self.seed, self.cell)[at]

    def read(self, received: Tensor, box: Box, width: int, height: int, search: int) -> CoreReading:
        """Correlate the received (3, h, w), placed at ``box`` of a ``width`` x ``height``
        working frame, with the pattern at every shift up to ``search`` working pixels. Read
        in the frame brought to a long side of at most ``READ_SIDE`` (the band stays below
        its Nyquist limit), so every level costs about the same."""
        k = min(1.0, READ_SIDE / max(width, height))
        fw, fh = max(round(width * k), 1), max(round(height * k), 1)
        win, y0, x0 = resample(received, box, fw, fh)
        _, h, w = win.shape
        if h * w < MIN_CELLS * (self.cell * k) ** 2:
            return CoreReading(0.0, box, (0, 0))
        lo, hi = self.band
        r = _unit_energy(_bandpass(luminance(win[None])[0, 0] * 255, lo / k, hi / k))
        m = jnd_map(win[None].float(), *self.jnd)[0, 0]
        mw = r * m  # the matched filter's weight rides on the received side (the JND is the photo's)
        s = max(1, round(search * k))
        # the expected field over the window grown by the search range (zero off the frame)
        big = torch.zeros(h + 2 * s, w + 2 * s)
        ya, xa = max(y0 - s, 0), max(x0 - s, 0)
        yb, xb = min(y0 + h + s, fh), min(x0 + w + s, fw)
        if yb > ya and xb > xa:
            big[ya - (y0 - s):yb - (y0 - s), xa - (x0 - s):xb - (x0 - s)] = \
                _reduced(self.band, self.cell, self.seed, width, height, fw, fh)[ya:yb, xa:xb]
        # the correlation at every shift (FFT): surface[dy + s, dx + s] pairs window pixel
        # (a, b) with frame pixel (y0 + a + dy, x0 + b + dx)
        n = (h + 2 * s, w + 2 * s)
        spec = torch.fft.rfft2(big, s=n) * torch.fft.rfft2(mw, s=n).conj()
        surface = torch.fft.irfft2(spec, s=n)[:2 * s + 1, :2 * s + 1]
        # the per-cell spread at the box as placed: the noise of the statistic
        prod = mw * big[s:s + h, s:s + w]
        cell = self.cell * k
        ys = ((torch.arange(h) + y0) / cell).long()
        xs = ((torch.arange(w) + x0) / cell).long()
        idx = (ys[:, None] * (int(xs.max()) + 1) + xs[None, :]).flatten()
        cells = torch.zeros(int(idx.max()) + 1).index_add_(0, idx, prod.flatten())
        z = surface / float(cells.pow(2).sum().sqrt().clamp_min(1e-9))
        at = int(z.argmax())
        dy, dx = at // z.shape[1] - s, at % z.shape[1] - s
        # the received pixels sit (dy, dx) further into the frame than the box placed them
        moved = (box[0] + dx / fw, box[1] + dy / fh, box[2] + dx / fw, box[3] + dy / fh)
        return CoreReading(float(z.max()), moved, (round(dy / k), round(dx / k)))


@lru_cache(maxsize=16)
def _reduced(band: tuple[float, float], cell: int, seed: int, width: int, height: int, fw: int, fh: int
             ) -> Tensor:
    """The pattern of a ``width`` x ``height`` frame brought to ``fw`` x ``fh`` (area average)."""
    p = Core(band, cell, seed).pattern(width, height)
    if (fw, fh) == (width, height):
        return p
    return F.interpolate(p[None, None], size=(fh, fw), mode="area")[0, 0]
