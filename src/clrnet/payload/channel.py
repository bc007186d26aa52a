"""The payload channel: coded bits <-> a shaped luminance pattern, tile by tile.

Layout. The working frame is cut into ``tile`` x ``tile`` tiles of
``block`` x ``block`` blocks. Every tile carries the *whole* coded payload: each
block holds one coded bit (or a known pilot), the same bit in the same block
of every tile, so any kept part at least a tile wide, wherever it sits, holds
every bit, and a larger part holds more copies (repetition over tiles is the
erasure code: losing tiles loses copies, never bits). Inside a block the bit
is the sign of a fixed mid-band carrier (periods of 3 to 8 working pixels,
which JPEG keeps and photos carry little of); a per-block pseudo-random sign
that depends on the block's place in the frame makes the pattern
non-periodic.

Reading. The received part is resampled onto the working grid at the box the
ruler found; the pilots, cross-correlated over small shifts in each quarter of
the part, refine the box to a fraction of a pixel (the ruler gives about
1/256 of the frame); then each block's correlation with its carrier, weighted
by the expected strength (the JND map) over the local noise, is summed into
its bit. The sums are soft bits; their signs, Reed-Solomon decoded
(``payload.ecc``), give the message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from clrnet.core.image import box_mean, plain_cpu
from clrnet.core.jnd import jnd_map

PILOT_EVERY = 8  # one block in eight is a known pilot


def tile_for_level(level: int, block: int = 4) -> int:
    """Tile side: about a third of the short side of a 3:2 frame, so the thinnest crop
    the protocol draws (a quarter of the area, aspect 2) still spans a whole tile."""
    return block * max(8, math.floor(0.34 * level * 2 / 3 / block))


@dataclass(frozen=True)
class Layout:
    """Where every coded bit sits in a ``width`` x ``height`` working frame."""

    width: int
    height: int
    tile: int
    block: int = 4
    reps: int = 1  # blocks per bit in each tile
    seed: int = 2024
    rate: str = ""  # the inner code's rate where it is not the protector's default for the level

    @property
    def blocks_per_side(self) -> int:
        return self.tile // self.block

    @property
    def n_blocks(self) -> int:
        return self.blocks_per_side ** 2

    @property
    def n_pilots(self) -> int:
        return self.n_blocks // PILOT_EVERY

    @property
    def n_bits(self) -> int:
        """Coded bits per tile (a multiple of 8)."""
        return ((self.n_blocks - self.n_pilots) // self.reps) // 8 * 8

    @property
    def n_bytes(self) -> int:
        return self.n_bits // 8


@lru_cache(maxsize=16)
def _roles(n_blocks: int, n_pilots: int, n_bits: int, seed: int) -> Tensor:
    """Role of each block of a tile: -1 pilot, k >= 0 coded bit k, -2 unused."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n_blocks, generator=g)
    roles = torch.full((n_blocks,), -2, dtype=torch.long)
    roles[perm[:n_pilots]] = -1
    data = perm[n_pilots:]
    usable = len(data) // n_bits * n_bits if n_bits else 0
    roles[data[:usable]] = torch.arange(usable) % max(n_bits, 1)
    return roles


@lru_cache(maxsize=16)
def carrier(tile: int, seed: int, lo: float = 0.12, hi: float = 0.34) -> Tensor:
    """(tile, tile) unit-rms noise band-limited to [lo, hi] cycles per pixel, periodic
    on the tile (so tiles join without seams)."""
    g = torch.Generator().manual_seed(seed + 1)
    f = torch.fft.fftfreq(tile)
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    band = ((radius >= lo) & (radius <= hi)).float()
    noise = torch.randn(tile, tile, generator=g)
    c = torch.fft.ifft2(torch.fft.fft2(noise) * band).real
    return c / c.pow(2).mean().sqrt()


def _hash_sign(i: Tensor, j: Tensor, seed: int) -> Tensor:
    """Pseudo-random +-1 from integer block coordinates (any frame size)."""
    h = i * 73856093 + j * 19349663 + seed * 83492791
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return ((h & 1) * 2 - 1).float()


def block_grid(layout: Layout, y0: int, x0: int, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Per-pixel (role, sign) over frame pixels [y0, y0 + h) x [x0, x0 + w) (computed per
    block, then spread over its pixels)."""
    b, bpt = layout.block, layout.blocks_per_side
    if h <= 0 or w <= 0:
        return torch.zeros(max(h, 0), max(w, 0), dtype=torch.long), torch.zeros(max(h, 0), max(w, 0))
    ys = torch.arange(y0, y0 + h) // b
    xs = torch.arange(x0, x0 + w) // b
    by = torch.arange(int(ys[0]), int(ys[-1]) + 1)[:, None]
    bx = torch.arange(int(xs[0]), int(xs[-1]) + 1)[None, :]
    roles = _roles(layout.n_blocks, layout.n_pilots, layout.n_bits, layout.seed)[(by % bpt) * bpt + bx % bpt]
    sign = _hash_sign(by, bx, layout.seed)
    iy, ix = (ys - ys[0])[:, None], (xs - xs[0])[None, :]
    return roles[iy, ix], sign[iy, ix]


def unit_pattern(layout: Layout, y0: int, x0: int, h: int, w: int) -> Tensor:
    """Carrier x per-block sign over a frame region (every bit +1): (h, w)."""
    t = layout.tile
    c = carrier(t, layout.seed)
    yy = torch.arange(y0, y0 + h) % t
    xx = torch.arange(x0, x0 + w) % t
    _, sign = block_grid(layout, y0, x0, h, w)
    return c[yy[:, None], xx[None, :]] * sign


def bits_to_values(bits: Tensor, roles: Tensor) -> Tensor:
    """+-1 per pixel: pilots +1, data blocks the sign of their bit, unused 0."""
    vals = torch.zeros(roles.shape)
    vals[roles == -1] = 1.0
    data = roles >= 0
    vals[data] = bits[roles[data]].float() * 2 - 1
    return vals


def embed(layout: Layout, bits: Tensor) -> Tensor:
    """The payload pattern (H, W) of unit rms for coded ``bits`` (n_bits of 0/1)."""
    if bits.numel() != layout.n_bits:
        raise ValueError(f"layout carries {layout.n_bits} bits, got {bits.numel()}")
    roles, _ = block_grid(layout, 0, 0, layout.height, layout.width)
    return unit_pattern(layout, 0, 0, layout.height, layout.width) * bits_to_values(bits, roles)


@lru_cache(maxsize=8)
def frame_pilots(layout: Layout, height: int, width: int) -> np.ndarray:
    """The whitened pilot pattern (pilots only, data blocks 0) of a whole
    ``height`` x ``width`` frame: what the pilot searches correlate with (cached:
    the searches of one inspection share it)."""
    return _pilots(layout, 0, 0, height, width)


def _pilots(layout: Layout, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """The whitened pilot pattern (data blocks 0) over frame pixels [y0, y0 + h) x [x0, x0 + w)."""
    roles, _ = block_grid(layout, y0, x0, h, w)
    return whiten(unit_pattern(layout, y0, x0, h, w) * (roles == -1).float()).numpy()


def whiten(x: Tensor) -> Tensor:
    """Remove what is below the carrier's band: x - (5 x 5 binomial blur of x), (..., H, W)."""
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    shape = x.shape
    x4 = x.reshape(-1, 1, *shape[-2:])
    # reflection needs more than 2 pixels a side; a sliver of a window (a box at the edge of a
    # photo 2 px wide, found by the fuzzer) repeats its edge instead
    reflect = min(shape[-2:]) > 2
    if plain_cpu(x4):  # OpenCV's separable filter: much faster on large frames
        import cv2

        kn = k1.numpy()
        border = cv2.BORDER_REFLECT_101 if reflect else cv2.BORDER_REPLICATE
        planes = x4[:, 0].numpy()
        blur = np.stack([cv2.sepFilter2D(np.ascontiguousarray(p), -1, kn, kn, borderType=border) for p in planes])
        return (x4[:, 0] - torch.from_numpy(blur)).reshape(shape)
    k = (k1[:, None] * k1[None, :]).view(1, 1, 5, 5).to(x.dtype)
    blur = F.conv2d(F.pad(x4, (2, 2, 2, 2), mode="reflect" if reflect else "replicate"), k)
    return (x4 - blur).reshape(shape)


def weights(window: Tensor, rgb: Tensor | None = None) -> Tensor:
    """Matched-filter weights of a whitened window (h, w): the expected signal
    strength (JND of ``rgb``, if given) over the local noise power."""
    power = box_mean((window ** 2)[None, None], 9)[0, 0]
    w = 1 / (power + 1e-5)
    if rgb is not None:
        w = w * jnd_map(rgb[None])[0, 0]
    return w


@dataclass
class Soft:
    """Soft bits read from a window: sums, how many blocks fed each, pilot strength."""

    sums: Tensor  # (n_bits,)
    counts: Tensor  # (n_bits,)
    pilot: float  # normalised pilot correlation (about 0 without the payload)
    block_scores: Tensor  # (h, w) per-pixel signed contribution (for presence maps)


def demodulate(layout: Layout, lum: Tensor, y0: int, x0: int, rgb: Tensor | None = None,
               erase: Tensor | None = None) -> Soft:
    """Soft bits from a luminance window ``lum`` (h, w) whose top-left pixel is frame
    pixel (y0, x0); pixels where ``erase`` (h, w, bool) is set are left out (an edited
    region carries noise, not the payload)."""
    h, w = lum.shape
    q = torch.from_numpy(matched(lum, rgb)) * whiten(unit_pattern(layout, y0, x0, h, w))
    if erase is not None:
        q = q * (~erase).to(q.dtype)
    return soft_bits(layout, q, y0, x0)


def soft_bits(layout: Layout, q: Tensor, y0: int, x0: int) -> Soft:
    """:func:`demodulate` from the per-pixel products ``q`` (h, w) of a window whose
    top-left pixel is frame pixel (y0, x0): a slice of a larger window's products
    gives the soft bits of that part alone, without filtering it again."""
    h, w = q.shape
    roles, _ = block_grid(layout, y0, x0, h, w)
    # only whole blocks: partial ones at the window's edges are the least reliable
    sums = torch.zeros(layout.n_bits, dtype=torch.float64)
    counts = torch.zeros(layout.n_bits, dtype=torch.float64)
    b = layout.block
    oy, ox = (-y0) % b, (-x0) % b
    hb, wb = (h - oy) // b, (w - ox) // b
    if hb <= 0 or wb <= 0:
        return Soft(sums, counts, 0.0, torch.zeros(h, w))
    qb = q[oy:oy + hb * b, ox:ox + wb * b].reshape(hb, b, wb, b).sum((1, 3)).double()
    rb = roles[oy:oy + hb * b:b, ox:ox + wb * b:b]
    data = rb >= 0
    sums.index_add_(0, rb[data], qb[data])
    counts.index_add_(0, rb[data], torch.ones_like(qb[data]))
    pil = rb == -1
    # pilot strength: mean block correlation over its spread, a t-like statistic
    pv = qb[pil]
    pilot = float(pv.mean() / (pv.std() / math.sqrt(max(pv.numel(), 1)) + 1e-12)) if pv.numel() > 2 else 0.0
    return Soft(sums, counts, pilot, q)


def _agreement(layout: Layout, q: Tensor, y0: int, x0: int, bits: Tensor | None,
               smooth: int) -> tuple[Tensor, Tensor, Tensor, tuple[int, int, int, int]]:
    """Per whole block: its correlation times the sign it should have, the sign's
    weight (0 where nothing is known) and the local agreement averaged over
    ``smooth`` x ``smooth`` blocks (correlation over magnitude); and (oy, ox, hb, wb)."""
    h, w = q.shape
    b = layout.block
    oy, ox = (-y0) % b, (-x0) % b
    hb, wb = (h - oy) // b, (w - ox) // b
    roles, _ = block_grid(layout, y0, x0, h, w)
    qb = q[oy:oy + hb * b, ox:ox + wb * b].reshape(hb, b, wb, b).sum((1, 3)).float()
    rb = roles[oy:oy + hb * b:b, ox:ox + wb * b:b]
    sign = torch.zeros(hb, wb)
    sign[rb == -1] = 1.0
    if bits is not None:
        data = rb >= 0
        sign[data] = bits[rb[data]].float() * 2 - 1
    agree = box_mean((qb * sign)[None, None], smooth)[0, 0]
    scale = box_mean((qb.abs() * sign.abs())[None, None], smooth)[0, 0].clamp_min(1e-12)
    return qb * sign, sign.abs(), agree / scale, (oy, ox, hb, wb)


def presence_map(layout: Layout, q: Tensor, y0: int, x0: int, bits: Tensor | None,
                 smooth: int = 8) -> tuple[Tensor, float]:
    """Where in a window the protection is intact (h, w), from the per-pixel products
    ``q`` of ``demodulate`` and the coded ``bits`` the decoded payload implies (None:
    the pilots alone, when the payload did not decode): each whole block's
    correlation times the sign it should have, averaged over ``smooth`` x ``smooth``
    blocks and divided by the same average of its magnitude, relative to the window's
    upper quartile (the intact level even when much of the window was edited),
    clamped to [0, 1]: about 1 where the protection is intact, about 0 where it is
    missing (a pasted, moved or repainted region).

    Also the signal-to-noise ratio of one block's correlation where the protection is
    intact (the better half of the window by local agreement): how reliable the map is
    after whatever the photo went through (lower after heavy JPEG or a median filter)."""
    h, w = q.shape
    b = layout.block
    if (h - (-y0) % b) // b <= 0 or (w - (-x0) % b) // b <= 0:
        return torch.zeros(h, w), 0.0
    v, known, local, (oy, ox, hb, wb) = _agreement(layout, q, y0, x0, bits, smooth)
    rel = (local / max(float(torch.quantile(local.flatten(), 0.75)), 1e-6)).clamp(0, 1)
    up = F.interpolate(rel[None, None], size=(hb * b, wb * b), mode="bilinear", align_corners=False)[0, 0]
    presence = F.pad(up[None, None], (ox, w - ox - wb * b, oy, h - oy - hb * b), mode="replicate")[0, 0]
    keep = (known > 0) & (local >= local.median())
    snr = 0.0
    if int(keep.sum()) >= 8:
        x = v[keep]
        snr = float(x.mean() / (x.std() + 1e-12))
    return presence, snr


def _prominence(c: np.ndarray, iy: int, ix: int, guard: int = 2) -> float:
    """How far the peak c[iy, ix] stands above the rest of the surface, in robust
    standard deviations of the surface away from the peak (its own ±``guard``
    neighbourhood, which the pattern's autocorrelation widens, excluded)."""
    away = np.ones(c.shape, dtype=bool)
    away[max(iy - guard, 0):iy + guard + 1, max(ix - guard, 0):ix + guard + 1] = False
    rest = c[away]
    rest = rest[::max(1, rest.size // 20000)]  # robust statistics need no more
    if rest.size < 8:
        return 0.0
    med = float(np.median(rest))
    sigma = 1.4826 * float(np.median(np.abs(rest - med)))
    return float((c[iy, ix] - med) / (sigma + 1e-12))


def matched(lum: Tensor, rgb: Tensor | None = None) -> np.ndarray:
    """A luminance window (h, w) as the pilot searches correlate it: whitened and
    multiplied by its matched-filter weights (float32, computed once per window;
    the searches in its quarters take slices)."""
    r = whiten(lum)
    return (weights(r, rgb) * r).numpy()


def pilot_pattern(layout: Layout, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """The whitened pilot pattern over frame pixels [y0, y0 + h) x [x0, x0 + w), (h, w):
    the region alone, built with the whitening blur's 2 px beyond each side, so it is
    the slice of the whole frame's pattern (each box an inspection tries has a frame
    of its own shape, and building that frame's whole pattern for one window made every
    such try slow)."""
    return _pilots(layout, y0 - 2, x0 - 2, h + 4, w + 4)[2:-2, 2:-2]


def correlate_shifts(pattern: np.ndarray, window: np.ndarray, spectrum: np.ndarray | None = None) -> np.ndarray:
    """c[dy, dx] = sum over k of pattern[k + (dy, dx)] * window[k], for every shift that
    keeps the window inside the pattern: ``scipy.signal.fftconvolve``'s "valid"
    correlation, computed as one circular correlation at the pattern's size (the
    shifts asked for never wrap), in single precision. ``spectrum``: the pattern's
    own (``_spectrum``), when it is correlated with many windows."""
    from scipy import fft

    n, workers = _fft_size(pattern.shape), torch.get_num_threads()  # as many as torch may use: same result
    spec = (_spectrum(pattern) if spectrum is None else spectrum) * np.conj(fft.rfft2(window, n, workers=workers))
    c = fft.irfft2(spec, n, workers=workers)
    return c[:pattern.shape[0] - window.shape[0] + 1, :pattern.shape[1] - window.shape[1] + 1]


def _fft_size(shape: tuple[int, ...]) -> list[int]:
    from scipy import fft

    return [fft.next_fast_len(s, real=True) for s in shape]


def _spectrum(pattern: np.ndarray) -> np.ndarray:
    from scipy import fft

    return fft.rfft2(pattern, _fft_size(pattern.shape), workers=torch.get_num_threads())


@lru_cache(maxsize=4)
def frame_pilots_spectrum(layout: Layout, height: int, width: int) -> np.ndarray:
    """The spectrum of :func:`frame_pilots` (cached: a never-protected photo is searched
    for at some 40 scales of a few frames, and at 2048 px each transform of the frame
    took as long as the window's)."""
    return _spectrum(frame_pilots(layout, height, width))


def pilot_shift(layout: Layout, window: np.ndarray, y0: int, x0: int, search: int,
                pattern: np.ndarray | None = None) -> tuple[float, float, float]:
    """Sub-pixel (dy, dx) such that window pixel (y, x) is frame pixel (y0 + y + dy,
    x0 + x + dx), found by cross-correlating the ``matched`` window (h, w) with the
    pilot pattern over shifts in [-search, search]; and the peak's prominence.
    ``pattern``: that pattern, (h + 2 search, w + 2 search) from frame pixel
    (y0 - search, x0 - search), when the caller has it (a slice of a larger window's)."""
    h, w = window.shape
    p = pilot_pattern(layout, y0 - search, x0 - search, h + 2 * search, w + 2 * search) if pattern is None else pattern
    c = correlate_shifts(p, window)  # (2s+1, 2s+1): c[dy+s, dx+s]
    iy, ix = np.unravel_index(int(np.argmax(c)), c.shape)
    prominence = _prominence(c, iy, ix)

    def parabola(m1: float, m0: float, p1: float) -> float:
        den = m1 - 2 * m0 + p1
        return 0.0 if den >= 0 else 0.5 * (m1 - p1) / den

    fy = parabola(c[iy - 1, ix], c[iy, ix], c[iy + 1, ix]) if 0 < iy < c.shape[0] - 1 else 0.0
    fx = parabola(c[iy, ix - 1], c[iy, ix], c[iy, ix + 1]) if 0 < ix < c.shape[1] - 1 else 0.0
    return iy - search + fy, ix - search + fx, prominence


def hard_bits(soft: Soft) -> tuple[Tensor, list[int]]:
    """Bits (0/1) and the byte positions with an unobserved bit (erasures)."""
    bits = (soft.sums > 0).to(torch.uint8)
    unseen = (soft.counts == 0).reshape(-1, 8).any(1)
    return bits, [int(i) for i in torch.nonzero(unseen).flatten()]


def bytes_to_bits(data: bytes) -> Tensor:
    arr = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    return torch.from_numpy(arr.copy())


def bits_to_bytes(bits: Tensor) -> bytes:
    return np.packbits(bits.numpy().astype(np.uint8)).tobytes()


def host_boost(layout: Layout, lum: Tensor, strength: Tensor, bits: Tensor, limit: float = 2.0) -> Tensor:
    """Informed embedding (improved spread spectrum): per-pixel amplitude factors
    (H, W) that strengthen each block by as much as the photo itself opposes its
    bit there (up to ``limit`` extra), so the photo's own content does not flip it.

    ``lum`` (H, W) is the photo's luminance, ``strength`` (H, W) the amplitude the
    pattern will be drawn with (same units)."""
    h, w = lum.shape
    b = layout.block
    u = unit_pattern(layout, 0, 0, h, w)
    roles, _ = block_grid(layout, 0, 0, h, w)
    v = bits_to_values(bits, roles)
    uw = whiten(u)
    host = whiten(lum) * uw
    resp = strength * u * uw
    hb, wb = h // b, w // b
    hs = host[:hb * b, :wb * b].reshape(hb, b, wb, b).sum((1, 3))
    rs = resp[:hb * b, :wb * b].reshape(hb, b, wb, b).sum((1, 3)).clamp_min(1e-9)
    vb = v[:hb * b:b, :wb * b:b]
    extra = (-(hs / rs) * vb).clamp(0, limit)
    out = torch.ones(h, w)
    out[:hb * b, :wb * b] = 1 + extra.repeat_interleave(b, 0).repeat_interleave(b, 1)
    return out


def pilot_search(layout: Layout, lum: Tensor, rgb: Tensor | None = None,
                 frame_hw: tuple[int, int] | None = None) -> tuple[int, int, float]:
    """Where in the frame does the window ``lum`` (h, w), already at working scale, sit?
    Cross-correlates it with the pilot pattern of the whole frame (``frame_hw``,
    default ``layout``'s) by FFT; the pattern is anchored at the frame's top-left
    corner and never repeats, so the peak is the window's offset (y0, x0) whatever
    the frame's true height or width. Returns y0, x0 and the peak's prominence."""
    h, w = lum.shape
    fh, fw = frame_hw or (layout.height, layout.width)
    if h > fh or w > fw:
        return 0, 0, 0.0
    c = correlate_shifts(frame_pilots(layout, fh, fw), matched(lum, rgb), frame_pilots_spectrum(layout, fh, fw))
    iy, ix = np.unravel_index(int(np.argmax(c)), c.shape)
    return int(iy), int(ix), _prominence(c, iy, ix)
