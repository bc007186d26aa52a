"""Invertible building blocks of the generator G (clrnet.paper.networks.invertible)."""

from __future__ import annotations

import math

import pytest
import torch

from clrnet.paper.config import GeneratorConfig
from clrnet.paper.networks.invertible import (
    AffineCoupling,
    HaarDownsample,
    HaarUpsample,
    InvertibleUNet,
    coordinate_features,
)


def _randomize(module: torch.nn.Module, std: float = 0.05, seed: int = 0) -> None:
    """Give the parameters (including the zero-initialised last layers) random values.

    Spectrally normalised weights keep their (already random) default init: their
    stored power-iteration vectors belong to those weights, and overwriting them
    would leave spectral norm dividing by a stale, possibly tiny, sigma.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "parametrizations" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def _image(b: int = 2, c: int = 3, h: int = 32, w: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- Haar
def test_haar_down_then_up_is_exact_inverse():
    x = _image(2, 3, 16, 24)
    down = HaarDownsample()
    y = down(x)
    assert y.shape == (2, 12, 8, 12)
    torch.testing.assert_close(down.inverse(y), x, atol=1e-6, rtol=0)
    # And the other way round: inverse first, then forward.
    z = torch.randn(1, 8, 4, 4)
    torch.testing.assert_close(down(down.inverse(z)), z, atol=1e-6, rtol=0)


def test_haar_upsample_is_the_inverse_transform():
    x = _image(1, 3, 8, 8)
    up = HaarUpsample()
    y = HaarDownsample()(x)
    torch.testing.assert_close(up(y), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(up.inverse(x), y, atol=1e-6, rtol=0)


def test_haar_is_orthonormal_energy_preserving():
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    y = HaarDownsample()(x)
    assert torch.allclose((y ** 2).sum(), (x ** 2).sum(), rtol=1e-5)
    # Inner products are preserved too (orthonormal, not merely norm-preserving).
    x2 = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    y2 = HaarDownsample()(x2)
    assert torch.allclose((y * y2).sum(), (x * x2).sum(), rtol=1e-4, atol=1e-4)


def test_haar_low_band_is_scaled_block_mean_and_bands_are_band_major():
    x = _image(1, 3, 4, 4)
    y = HaarDownsample()(x)
    block_mean = torch.nn.functional.avg_pool2d(x, 2)
    # LL (first C channels) = 2 * mean of each 2x2 block for an orthonormal transform.
    torch.testing.assert_close(y[:, :3], 2 * block_mean, atol=1e-6, rtol=0)
    # A constant image has no detail energy.
    yc = HaarDownsample()(torch.full((1, 2, 4, 4), 0.7))
    assert torch.all(yc[:, 2:] == 0)
    torch.testing.assert_close(yc[:, :2], torch.full((1, 2, 2, 2), 1.4))


# --------------------------------------------------------------------------- coupling
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("cond_channels", [0, 6])
def test_affine_coupling_round_trip_with_random_weights(flip, cond_channels):
    coupling = AffineCoupling(12, 3, hidden=8, cond_channels=cond_channels, clamp=1.0,
                              dilation=2, flip=flip)
    _randomize(coupling, seed=5)
    x = torch.randn(2, 12, 8, 8, generator=torch.Generator().manual_seed(6))
    cond = torch.randn(1, cond_channels, 8, 8) if cond_channels else None
    with torch.no_grad():
        y = coupling(x, cond)
        # Not trivially the identity: the random sub-networks really transform x.
        assert (y - x).abs().max() > 1e-2
        torch.testing.assert_close(coupling.inverse(y, cond), x, atol=1e-5, rtol=0)


def test_affine_coupling_uses_the_conditioning():
    coupling = AffineCoupling(4, 2, hidden=8, cond_channels=2)
    _randomize(coupling, seed=7)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        y_a = coupling(x, torch.zeros(1, 2, 8, 8))
        y_b = coupling(x, torch.ones(1, 2, 8, 8))
        assert (y_a - y_b).abs().max() > 1e-3
        # Inverting with the wrong conditioning does not give x back.
        assert (coupling.inverse(y_a, torch.ones(1, 2, 8, 8)) - x).abs().max() > 1e-3


def test_affine_coupling_flip_changes_which_half_is_transformed_first():
    a = AffineCoupling(4, 2, hidden=8, flip=False)
    b = AffineCoupling(4, 2, hidden=8, flip=True)
    _randomize(a, seed=8)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert (a(x) - b(x)).abs().max() > 1e-3


def test_affine_coupling_is_identity_at_init():
    coupling = AffineCoupling(8, 2, hidden=8, cond_channels=3, flip=True)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(coupling(x, torch.randn(1, 3, 8, 8)), x)


def test_affine_coupling_log_scale_is_clamped():
    coupling = AffineCoupling(2, 1, hidden=4, clamp=0.5)
    _randomize(coupling, std=3.0, seed=9)  # huge weights -> saturated scales
    x = torch.randn(1, 1, 6, 6)
    with torch.no_grad():
        s, _ = coupling._st(coupling.f1, x, None)
    assert s.abs().max() <= 0.5 + 1e-6


# --------------------------------------------------------------------------- coordinates
@pytest.mark.parametrize("freqs", [0, 1, 3])
def test_coordinate_features_shape_and_range(freqs):
    h, w = 6, 10
    f = coordinate_features(h, w, freqs)
    assert f.shape == (1, 2 + 4 * freqs, h, w)
    assert f.min() >= -1 and f.max() <= 1
    gx, gy = f[0, 0], f[0, 1]
    # x varies along the width only, y along the height only; pixel centres strictly inside.
    assert torch.all(gx == gx[0:1]) and torch.all(gy == gy[:, 0:1])
    torch.testing.assert_close(gx[0], (torch.arange(w) + 0.5) / w * 2 - 1)
    torch.testing.assert_close(gy[:, 0], (torch.arange(h) + 0.5) / h * 2 - 1)
    assert gx.abs().max() < 1 and gy.abs().max() < 1
    torch.testing.assert_close(gx[0], -gx[0].flip(0))  # symmetric about the centre
    for k in range(freqs):
        sin_x, cos_x = f[0, 2 + 4 * k], f[0, 3 + 4 * k]
        torch.testing.assert_close(sin_x, torch.sin(math.pi * 2 ** k * gx))
        torch.testing.assert_close(sin_x ** 2 + cos_x ** 2, torch.ones(h, w))


# --------------------------------------------------------------------------- G
_CONFIGS = {
    "levels2": GeneratorConfig(levels=2, blocks_per_level=2, hidden=[8, 8], coord_freqs=2,
                               bottom_dilations=[1, 2], spectral_norm=False),
    "levels3_sn": GeneratorConfig(levels=3, blocks_per_level=[1, 2, 2], hidden=[8, 8, 16],
                                  coord_freqs=1, bottom_dilations=[1, 2, 4], spectral_norm=True),
    "no_coords": GeneratorConfig(levels=2, blocks_per_level=2, hidden=[8, 8], coord_freqs=0,
                                 spectral_norm=False),
}


@pytest.mark.parametrize("name", list(_CONFIGS))
def test_unet_is_identity_at_init(name):
    g = InvertibleUNet(_CONFIGS[name]).eval()
    x = _image(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(g(x), x, atol=1e-5, rtol=0)
        torch.testing.assert_close(g.inverse(x), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(_CONFIGS))
def test_unet_forward_then_inverse_with_random_weights(name):
    torch.manual_seed(0)  # spectral norm's power-iteration vectors come from the global RNG
    g = InvertibleUNet(_CONFIGS[name])
    _randomize(g, seed=11)
    x = _image(2, 3, 16, 16)
    g.eval()  # spectral norm: no power-iteration update between forward and inverse
    with torch.no_grad():
        y = g(x)
        assert (y - x).abs().mean() > 1e-2  # the random couplings really act
        torch.testing.assert_close(g.inverse(y), x, atol=1e-4, rtol=0)
        # Non-square frames work as long as both sides are divisible.
        x2 = _image(1, 3, 8, 24, seed=2)
        torch.testing.assert_close(g.inverse(g(x2)), x2, atol=1e-4, rtol=0)


def test_unet_structure_follows_config():
    cfg = _CONFIGS["levels3_sn"]
    g = InvertibleUNet(cfg)
    kinds = [type(layer).__name__ for layer in g.layers]
    assert kinds.count("HaarDownsample") == 3 and kinds.count("HaarUpsample") == 3
    # blocks per level [1, 2, 2] on the way down plus [2, 1] on the way up (level 0 has none).
    assert kinds.count("AffineCoupling") == (1 + 2 + 2) + (2 + 1)
    assert g.cond_channels == 2 + 4 * cfg.coord_freqs
    assert InvertibleUNet(_CONFIGS["no_coords"]).cond_channels == 0
    # Spectral norm is registered on the sub-network convs when asked for.
    sn_names = [n for n, _ in g.named_parameters() if "parametrizations" in n]
    assert sn_names
    assert not [n for n, _ in InvertibleUNet(_CONFIGS["levels2"]).named_parameters()
                if "parametrizations" in n]


def test_unet_coordinate_conditioning_makes_it_position_aware():
    g = InvertibleUNet(_CONFIGS["levels2"])
    _randomize(g, seed=12)
    g.eval()
    x = torch.full((1, 3, 32, 32), 0.5)  # translation invariant input
    with torch.no_grad():
        y = g(x)
    # With coordinate features the output of a flat image is not flat.
    assert y.std() > 1e-3


@pytest.mark.parametrize("shape", [(1, 3, 30, 32), (1, 3, 32, 36), (1, 3, 20, 20)])
def test_unet_rejects_sides_not_divisible(shape):
    g = InvertibleUNet(_CONFIGS["levels3_sn"])  # needs multiples of 8
    with pytest.raises(ValueError):
        g(torch.zeros(shape))
    with pytest.raises(ValueError):
        g.inverse(torch.zeros(shape))


def test_unet_is_differentiable():
    g = InvertibleUNet(_CONFIGS["levels2"])
    _randomize(g, seed=13)
    x = _image(1, 3, 16, 16).requires_grad_()
    g(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in g.parameters())


def test_position_code_is_exactly_invertible_and_position_dependent():
    from clrnet.paper.networks.invertible import PositionCode

    for pattern in ("fourier", "random"):
        layer = PositionCode(16, 16, 0.02, pattern)
        x = torch.rand(2, 3, 16, 16)
        y = layer(x)
        assert torch.allclose(layer.inverse(y), x, atol=1e-7)
        code = (y - x)[0]
        if pattern == "fourier":
            assert code.abs().max() <= 0.02 * 2 + 1e-6  # four unit sinusoids / 2, times 0.02
        else:
            assert abs(float(code.std()) - 0.02) < 0.004
        assert code.flatten(1).std(-1).min() > 1e-3  # varies over the frame
    assert not list(PositionCode(8, 8, 0.02).parameters())  # fixed by default
    assert len(list(PositionCode(8, 8, 0.02, learn=True).parameters())) == 1
    with pytest.raises(ValueError):
        PositionCode(8, 8, 0.02, "zigzag")


def test_unet_with_position_code_round_trip_and_needs_size():
    cfg = GeneratorConfig(levels=2, blocks_per_level=1, hidden=[8, 8], coord_freqs=1,
                          spectral_norm=False, position_code="fourier")
    with pytest.raises(ValueError, match="native size"):
        InvertibleUNet(cfg)
    g = InvertibleUNet(cfg, size=16)
    _randomize(g)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        y = g(x)
        assert (y - x).abs().max() > 1e-3
        assert torch.allclose(g.inverse(y), x, atol=1e-4)
