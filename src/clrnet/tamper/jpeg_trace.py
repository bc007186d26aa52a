"""How hard was the received photo last JPEG-compressed? Read from its own pixels.

JPEG keeps each 8 x 8 block's DCT coefficients as multiples of a quantiser step; decoded
to pixels they stay close to those multiples, on the grid the encoder used. So the grid is
where the most AC coefficients are (near) zero, and the luminance DC step on that grid
gives the quality of the standard (libjpeg / Pillow) tables: step 3 at quality 90, 6 at
80, 10 at 70, 16 at 50. After a resize or a blur that followed the compression the
multiples are gone and nothing is read (None): the trace only says something when it is
there.

The tamper map needs it because JPEG takes the protection out of smooth neighbourhoods
(their coefficients fall to zero whatever was added), where a missing protection says
nothing about an edit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LUMA_DC_BASE = 16  # the standard luminance table's DC entry (quality 50)
SPAN = 512  # pixels a side read at most: the trace is the same everywhere
GRID_EDGE = 1.3  # the JPEG grid's share of zero AC coefficients over the median alignment's
MIN_BLOCKS = 64  # unclipped blocks needed to read a step


def _dct_matrix() -> Tensor:
    k = torch.arange(8, dtype=torch.float64)[:, None]
    n = torch.arange(8, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * n + 1) * k / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d


_D = _dct_matrix()


def block_dct(y: Tensor, dy: int, dx: int) -> Tensor:
    """Orthonormal 8 x 8 DCTs (nby, nbx, 8, 8) of ``y`` (h, w) on the grid starting at (dy, dx)."""
    a = y[dy:, dx:]
    h, w = a.shape[0] // 8 * 8, a.shape[1] // 8 * 8
    b = a[:h, :w].reshape(h // 8, 8, w // 8, 8).permute(0, 2, 1, 3)
    return _D @ b @ _D.T


def _step(values: Tensor, most: int = 40, agree: float = 0.3) -> int:
    """The largest step (2..``most``) that ``values`` cluster at multiples of (1: none).
    Without JPEG the phases of ``values`` spread evenly (agreement about 1 / sqrt(n)); the
    decoder's rounding leaves 0.5-0.9 at the true step."""
    if values.numel() < MIN_BLOCKS:
        return 1
    found = 1
    for q in range(2, most + 1):
        if float(torch.exp(2j * math.pi * values / q).mean().abs()) > agree:
            found = q
    return found


def dc_step(window: Tensor) -> int:
    """The luminance DC quantiser step of the last JPEG compression of ``window``
    (3, h, w in [0, 1]) on its best-aligned 8 x 8 grid; 1 when there is no trace: no
    alignment stands out (its share of zero AC coefficients at most ``GRID_EDGE`` times the
    median alignment's) or too few blocks free of clipped pixels (clipping moves the DC
    off its multiples)."""
    _, h, w = window.shape
    t, left = max((h - SPAN) // 2, 0), max((w - SPAN) // 2, 0)
    rgb = window[:, t:t + SPAN, left:left + SPAN].double() * 255
    if min(rgb.shape[1:]) < 32:
        return 1
    y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    zero = torch.zeros(8, 8, dtype=torch.float64)
    for dy in range(8):
        for dx in range(8):
            zero[dy, dx] = (block_dct(y, dy, dx).reshape(-1, 64)[:, 1:].abs() < 1.0).double().mean()
    dy, dx = divmod(int(zero.argmax()), 8)
    if float(zero.max()) <= GRID_EDGE * float(zero.flatten().median()):
        return 1
    clipped = ((rgb.amax(0) > 254.5) | (rgb.amin(0) < 0.5)).double()
    free = block_dct(clipped, dy, dx).reshape(-1, 64)[:, 0] == 0
    dc = block_dct(y, dy, dx).reshape(-1, 64)[:, 0]
    return _step(dc[free] - 1024)  # JPEG shifts levels by 128 (DC: 8 x 128) before the DCT


def jpeg_quality(window: Tensor) -> int | None:
    """The quality (1-100, standard tables) the window was last JPEG-compressed at, or None
    when no JPEG trace is there (never compressed, or resized or filtered since)."""
    q = dc_step(window)
    if q < 2:
        return None
    scale = q * 100 / LUMA_DC_BASE
    quality = 5000 / scale if scale > 100 else (200 - scale) / 2
    return int(round(min(max(quality, 1), 100)))
