"""The small channels' picture: DCT coefficients of the photo's colour grid.

Working frames up to 768 px carry 11 to 95 bytes (a 256 px frame once carried 5:
four luma cells at 4 bits and the mean colour left a 2 x 2 picture and, on
square frames, 14 of the 40 bits unused). Transform coding spends every bit
where it lowers the error most: the frame is box-averaged to a small YCbCr grid,
each plane goes through an orthonormal 2-D DCT, and the coefficients get bits by greedy
allocation over a model of their variance (natural photos' power falls as about
1 / f^1.8; the model's constants, fitted on ``train/``, are printed by
``scripts/fit_grid_spectrum.py``). Each coefficient is quantised uniformly with
the step that is optimal for a Gaussian of its modelled spread (Max, 1960),
widened 1.2x: the coefficients are heavier-tailed than a Gaussian.

Encoder and decoder derive the same plan from the frame's shape (the message's
size field) and the budget, so nothing but the coefficients is sent. Decoding
gives the grid as an RGB image and, for :mod:`clrnet.recovery.consistency`,
the interval each coded coefficient was quantised into: the recovery is made to
agree with them.

Even upsampled alone, the smallest grid brings the cut-away part back closer than the
2 x 2 cells it replaced (``clrnet eval``'s ablation).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy.fft import dctn, idctn

# log variance of a coefficient at (fx, fy) cycles per long side, per plane (Y, Cb, Cr):
# A + log(cells) - alpha * log(fx^2 + fy^2 + f0^2) + log(box attenuation)
SPECTRUM = ((4.7973, 0.9169, 0.3614), (1.8230, 0.9058, 0.3034), (1.6749, 0.8750, 0.4856))
DC_MEAN = (116.3, 0.0, 0.0)  # luma: the photos' mean (train/); chroma: grey (near the photos' mean), so grey is a level
# its spread across photos (train/), widened for the tails: 1.3x for luma; for chroma so
# that a blue sky or an orange wall is not clipped
DC_STD = (39.4, 20.0, 17.8)
STEP_SCALE = 1.2  # steps 1.2x Max's: the coefficients are heavier-tailed than a Gaussian
RGB_WEIGHT = (3.0, 3.26, 2.48)  # squared RGB error per unit of squared Y, Cb, Cr error
# the best uniform quantiser of a unit Gaussian with 2^b levels: step, mean squared error
MAX_STEP = {1: 1.596, 2: 0.9957, 3: 0.5860, 4: 0.3352, 5: 0.1881, 6: 0.1041, 7: 0.0569, 8: 0.0308}
MAX_ERROR = {0: 1.0, 1: 0.3634, 2: 0.1188, 3: 0.03744, 4: 0.01154, 5: 0.00349, 6: 0.00104, 7: 0.000305,
             8: 0.0000870}
MAX_BITS = 8

YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
RGB = np.linalg.inv(YCC)  # columns: the RGB change per unit of Y, Cb, Cr


@dataclass(frozen=True)
class Coefficient:
    plane: int  # 0 Y, 1 Cb, 2 Cr
    v: int  # row (vertical frequency)
    u: int  # column
    bits: int
    step: float
    centre: float  # subtracted before quantising (the DC's expected value)


@dataclass(frozen=True)
class GridPlan:
    width: int  # grid cells
    height: int
    coefficients: tuple[Coefficient, ...]  # in the order their bits are sent

    @property
    def bits(self) -> int:
        return sum(c.bits for c in self.coefficients)


def effective_side(bits: int) -> float:
    """The long side of the thumbnail a grid of ``bits`` is worth to the reconstruction
    (the network's coarseness input and the border's reach): one byte per pixel,
    sqrt(bits / 8). The grid itself is finer, but most of its coefficients are coarse:
    chosen on val, better than the grid's side at 256² and as good at the photos' own size."""
    return math.sqrt(bits / 8)


GRID_MAX = 16  # cells on the long side at most (reached from 64 bytes)


def grid_shape(width: int, height: int, bits: int) -> tuple[int, int]:
    """Cells of the grid for a frame and a bit budget: about bits / 2 cells on the long
    side squared (finer grids only add coefficients that get no bits), 2 to ``GRID_MAX``."""
    g = min(GRID_MAX, max(2, round(math.sqrt(bits / 2))))
    if width >= height:
        return g, max(1, round(g * height / width))
    return max(1, round(g * width / height)), g


def _variance(plane: int, v: int, u: int, gw: int, gh: int, width: int, height: int) -> float:
    cells = gw * gh
    if u == 0 and v == 0:
        return cells * DC_STD[plane] ** 2
    a, alpha, f0 = SPECTRUM[plane]
    long = max(width, height)
    fx, fy = u / 2 * long / width, v / 2 * long / height
    att = (np.sinc(u / (2 * gw)) * np.sinc(v / (2 * gh))) ** 2
    return float(math.exp(a) * cells * (fx * fx + fy * fy + f0 * f0) ** -alpha * att)


@lru_cache(maxsize=64)
def plan(width: int, height: int, bits: int) -> GridPlan:
    """Greedy bit allocation: bits go, per bit spent, to the coefficient whose modelled RGB
    error falls most. A chroma coefficient gets 2 bits or none: with 1 bit it would be
    +-half a step, never zero, and grey areas would take a colour cast. Sent in order of
    plane, then zig-zag frequency."""
    gw, gh = grid_shape(width, height, bits)
    items = [(p, v, u) for p in range(3) for v in range(gh) for u in range(gw)]
    var = {it: _variance(it[0], it[1], it[2], gw, gh, width, height) for it in items}
    alloc = {it: 0 for it in items}

    def offer(i: int) -> tuple[float, int, int] | None:
        """(-gain per bit, index, cost) of the next step of item i, None if it has none."""
        it = items[i]
        b = alloc[it]
        step = 2 if b == 0 and it[0] > 0 else 1
        if b + step > MAX_BITS:
            return None
        return -RGB_WEIGHT[it[0]] * var[it] * (MAX_ERROR[b] - MAX_ERROR[b + step]) / step, i, step

    # a heap of every item's next step: the largest gain first, ties to the earliest item
    heap = [o for o in map(offer, range(len(items))) if o is not None and o[0] < 0]
    heapq.heapify(heap)
    left = bits
    while left > 0 and heap:
        _, i, cost = heapq.heappop(heap)
        if cost > left:  # too dear for what is left (never cheaper later)
            continue
        alloc[items[i]] += cost
        left -= cost
        nxt = offer(i)
        if nxt is not None and nxt[0] < 0:
            heapq.heappush(heap, nxt)
    sent = sorted((it for it in items if alloc[it]), key=lambda it: (it[0], it[1] + it[2], it[1]))
    coefs = tuple(Coefficient(p, v, u, alloc[(p, v, u)], STEP_SCALE * MAX_STEP[alloc[(p, v, u)]] * math.sqrt(var[(p, v, u)]),
                              DC_MEAN[p] * math.sqrt(gw * gh) if u == v == 0 else 0.0) for p, v, u in sent)
    return GridPlan(gw, gh, coefs)


def _levels(c: Coefficient) -> tuple[int, int]:
    """Lowest and highest quantiser index (mid-rise for 1 bit: the two halves)."""
    return (0, 1) if c.bits == 1 else (-(1 << (c.bits - 1)), (1 << (c.bits - 1)) - 1)


def _value(c: Coefficient, q: int) -> float:
    return c.centre + ((q - 0.5) * c.step if c.bits == 1 else q * c.step)


def _planes(photo: Image.Image, gw: int, gh: int) -> np.ndarray:
    """(3, gh, gw) YCbCr box means."""
    small = np.asarray(photo.convert("RGB").resize((gw, gh), Image.Resampling.BOX), dtype=np.float64)
    return np.moveaxis(small @ YCC.T, -1, 0)


def encode_grid(photo: Image.Image, budget: int, frame: tuple[int, int] | None = None) -> bytes:
    """``budget`` bytes: the quantised coefficients of ``photo``'s grid, zero-padded;
    planned for ``frame`` (W, H: the size the decoder will be told; default the photo's)."""
    p = plan(*(frame or photo.size), 8 * budget)
    coef = np.stack([dctn(x, norm="ortho") for x in _planes(photo, p.width, p.height)])
    bits: list[int] = []
    for c in p.coefficients:
        lo, hi = _levels(c)
        x = coef[c.plane, c.v, c.u] - c.centre
        q = int(x >= 0) if c.bits == 1 else int(np.clip(np.round(x / c.step), lo, hi))
        bits.extend((q - lo) >> k & 1 for k in range(c.bits - 1, -1, -1))
    bits.extend([0] * (8 * budget - len(bits)))
    return np.packbits(np.array(bits, np.uint8)).tobytes()


@dataclass(frozen=True)
class GridReading:
    """A decoded grid: the coefficients' values and the intervals they were quantised from."""

    plan: GridPlan
    values: np.ndarray  # (3, gh, gw) DCT coefficients as decoded (0 where no bits)
    low: np.ndarray  # (3, gh, gw) the true coefficient's lower bound (-inf where unknown)
    high: np.ndarray  # upper bound (+inf where unknown)

    def image(self) -> Image.Image:
        ycc = np.stack([idctn(v, norm="ortho") for v in self.values], -1)
        return Image.fromarray(np.clip(np.round(ycc @ RGB.T), 0, 255).astype(np.uint8))


def read_grid(message: bytes, width: int, height: int) -> GridReading:
    """Inverse of :func:`encode_grid` for a frame of ``width`` x ``height``."""
    p = plan(width, height, 8 * len(message))
    bits = np.unpackbits(np.frombuffer(message, dtype=np.uint8))
    shape = (3, p.height, p.width)
    values, low, high = np.zeros(shape), np.full(shape, -np.inf), np.full(shape, np.inf)
    values[:, 0, 0] = np.array(DC_MEAN) * math.sqrt(p.width * p.height)  # a DC without bits: its centre
    i = 0
    for c in p.coefficients:
        lo, hi = _levels(c)
        q = lo + int("".join(map(str, bits[i:i + c.bits])), 2)
        i += c.bits
        at = (c.plane, c.v, c.u)
        values[at] = _value(c, q)
        half = c.step / 2
        low[at] = -np.inf if q == lo else (c.centre if c.bits == 1 else values[at] - half)
        high[at] = np.inf if q == hi else (c.centre if c.bits == 1 else values[at] + half)
    return GridReading(p, values, low, high)


def decode_grid(message: bytes, width: int, height: int) -> Image.Image:
    """The grid as an RGB image (its cells, not upsampled)."""
    return read_grid(message, width, height).image()
