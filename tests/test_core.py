"""The core layer (``payload.core``): low-frequency keyed pilots read after a downscale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clrnet.core.geometry import FULL_FRAME
from clrnet.payload.core import Core


def _spectrum_share(p: torch.Tensor, lo: float, hi: float) -> float:
    """Share of the power of a field (H, W) at radial frequencies in [lo, hi] cycles per pixel."""
    f = torch.fft.rfft2(p - p.mean())
    fy = torch.fft.fftfreq(p.shape[0])[:, None]
    fx = torch.fft.rfftfreq(p.shape[1])[None, :]
    r = (fx ** 2 + fy ** 2).sqrt()
    power = f.abs() ** 2
    return float(power[(r >= lo) & (r <= hi)].sum() / power.sum())


def test_the_pattern_has_unit_power_and_flips_its_sign_by_cell():
    core = Core()
    p = core.pattern(1536, 1024)
    assert p.shape == (1024, 1536)
    assert float(p.pow(2).mean()) == pytest.approx(1.0, rel=0.05)
    # the field itself (signs undone) lies in the band: the flips spread a little power beyond it
    assert _spectrum_share(p, 0.5 * core.band[0], 1.5 * core.band[1]) > 0.9
    # the same key gives the same pattern; another seed an unrelated one
    assert torch.equal(p, Core().pattern(1536, 1024))
    other = Core(seed=78).pattern(1536, 1024)
    assert abs(float((p * other).mean())) < 0.02


def test_the_pattern_is_cut_from_the_canvas_centre():
    """A frame one pixel taller shows the same field half a pixel away (at most one row off),
    so a box read with an aspect one pixel off still finds it."""
    core = Core()
    a, b = core.pattern(1536, 1024), core.pattern(1536, 1025)
    assert torch.equal(a, b[:1024]) or torch.equal(a, b[1:])
    with pytest.raises(ValueError, match="canvas"):
        core.pattern(4096, 100)


def _photo_like(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(3, h, w) a smooth random scene: noise with a 1/f spectrum around mid grey."""
    g = torch.Generator().manual_seed(seed)
    spec = torch.fft.rfft2(torch.randn(h, w, generator=g))
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    y = torch.fft.irfft2(spec / (fx ** 2 + fy ** 2).sqrt().clamp_min(1 / max(h, w)), s=(h, w))
    y = 0.5 + 0.15 * y / y.std()
    return y.clamp(0, 1).expand(3, h, w).clone()


def test_reading_finds_the_pattern_at_its_shift_and_nothing_where_there_is_none():
    core = Core()
    photo = _photo_like(512, 768)
    marked = (photo + 4 / 255 * core.pattern(768, 512)).clamp(0, 1)
    # read as the 768 x 512 frame, the box placed 5 px too far left: the search finds the shift
    box = (-5 / 768, 0.0, 1 - 5 / 768, 1.0)
    r = core.read(marked, box, 768, 512, search=12)
    assert r.z > 10
    assert r.shift == (0, 5)
    assert r.box[0] == pytest.approx(0.0, abs=1 / 768)
    # without the pattern, or at another frame (level): about a standard normal's maximum
    assert core.read(photo, FULL_FRAME, 768, 512, search=12).z < 5
    assert core.read(marked, FULL_FRAME, 1024, 683, search=12).z < 5


def test_the_statistic_is_at_chance_on_noise():
    """Over many noise images the statistic at the box stays near a standard normal's range."""
    core = Core()
    rng = np.random.default_rng(0)
    zs = []
    for _ in range(12):
        x = torch.from_numpy(rng.random((3, 256, 384), dtype=np.float32))
        zs.append(core.read(x, FULL_FRAME, 384, 256, search=4).z)
    assert max(zs) < 5
