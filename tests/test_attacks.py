"""Attacks: the torch simulations (clrnet.paper.attacks.functional) against the real
operations (clrnet.attacks.real: Pillow / scikit-image), and the training attack
layer (clrnet.paper.attacks.layer)."""

from __future__ import annotations

import io
import typing

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageFilter, JpegImagePlugin

from clrnet.attacks import real as R
from clrnet.paper.attacks import functional as A
from clrnet.paper.attacks.layer import AttackDraw, AttackLayer, apply_attack, draw_attack
from clrnet.paper.config import AttackConfig, AttackName

ATTACK_NAMES = list(typing.get_args(AttackName))

# IJG (libjpeg) standard tables, ITU T.81 Annex K, natural order.
_IJG_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
             14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
             18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
             49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_IJG_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
               24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _ijg_table(base: list[int], quality: int) -> list[int]:
    """libjpeg's jpeg_set_quality scaling of a base table."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(max((v * scale + 50) // 100, 1), 255) for v in base]


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A real photo: scikit-image's astronaut, reduced to 64 x 64."""
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((64, 64), Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def photo_wide() -> Image.Image:
    """A non-square real photo (chelsea the cat), 72 x 56 (W x H)."""
    from skimage import data

    return Image.fromarray(data.chelsea()).resize((72, 56), Image.Resampling.LANCZOS)


def _t(img: Image.Image) -> torch.Tensor:
    return A.from_uint8(np.array(img))[None]


def _u8(x: torch.Tensor) -> np.ndarray:
    return A.to_uint8(x[0])


def _psnr(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2)))


def _levels(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, dtype=np.int32) - np.asarray(b, dtype=np.int32))


class _JpegSpy:
    """Records the bytes of every in-memory file Pillow opens (the encoded JPEGs)."""

    def __init__(self, monkeypatch):
        self.files: list[bytes] = []
        orig = Image.open

        def spy(fp, *args, **kwargs):
            if isinstance(fp, io.BytesIO):
                self.files.append(fp.getvalue())
            return orig(fp, *args, **kwargs)

        monkeypatch.setattr(Image, "open", spy)


# --------------------------------------------------------------------------- uint8 helpers
def test_uint8_round_trip_is_exact(photo):
    arr = np.array(photo)
    assert np.array_equal(A.to_uint8(A.from_uint8(arr)), arr)
    x = torch.tensor([[[0.0, 0.6 / 255, 1.49 / 255, 1.2]]]).expand(3, 1, 4)
    assert A.to_uint8(x)[0, :, 0].tolist() == [0, 1, 1, 255]


# --------------------------------------------------------------------------- JPEG
@pytest.mark.parametrize("quality", [50, 70, 95])
def test_jpeg_pillow_equals_real_jpeg_and_pillow_save(photo, quality):
    x = _t(photo)
    sim = _u8(A.jpeg_pillow(x, quality))
    assert np.array_equal(sim, np.array(R.jpeg(photo, quality)))
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=quality)
    assert np.array_equal(sim, np.array(Image.open(buf).convert("RGB")))
    assert not np.array_equal(sim, np.array(photo))  # lossy: it did something


def test_jpeg_pillow_per_sample_quality_and_straight_through_gradient(photo, photo_wide):
    x = torch.cat([_t(photo), _t(photo)]).requires_grad_()
    out = A.jpeg_pillow(x, [50, 95])
    assert np.array_equal(_u8(out[0:1]), np.array(R.jpeg(photo, 50)))
    assert np.array_equal(_u8(out[1:2]), np.array(R.jpeg(photo, 95)))
    w = torch.randn_like(out)
    (out * w).sum().backward()
    torch.testing.assert_close(x.grad, w)  # identity gradient
    # Non-square frames (not multiples of 16) work too.
    assert np.array_equal(_u8(A.jpeg_pillow(_t(photo_wide), 70)), np.array(R.jpeg(photo_wide, 70)))


@pytest.mark.parametrize("quality", [70, 85])
def test_real_jpeg_file_has_pillow_and_ijg_quantisation_tables(photo, monkeypatch, quality):
    spy = _JpegSpy(monkeypatch)
    R.jpeg(photo, quality)
    A.jpeg_pillow(_t(photo), quality)
    files = list(spy.files)
    monkeypatch.undo()  # stop recording before opening files ourselves
    assert len(files) == 2
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=quality)
    ref = Image.open(io.BytesIO(buf.getvalue()))
    for data in files:
        assert data[:2] == b"\xff\xd8"  # JPEG SOI marker
        jpg = Image.open(io.BytesIO(data))
        assert jpg.format == "JPEG"
        q = {k: list(v) for k, v in jpg.quantization.items()}
        assert q == {k: list(v) for k, v in ref.quantization.items()}
        assert q[0] == _ijg_table(_IJG_LUMA, quality)
        assert q[1] == _ijg_table(_IJG_CHROMA, quality)
        assert JpegImagePlugin.get_sampling(jpg) == 2  # 4:2:0 chroma subsampling
        assert data == buf.getvalue()  # byte-identical to Pillow's own encoder


@pytest.mark.parametrize("quality", [50, 70, 90])
def test_jpeg_differentiable_is_close_to_pillow_and_has_gradients(photo, photo_wide, quality):
    for img in (photo, photo_wide):
        x = _t(img).requires_grad_()
        sim = A.jpeg_differentiable(x, float(quality))
        real = np.array(R.jpeg(img, quality))
        sim_u8 = _u8(sim)
        # Measured 36.5-39 dB on these photos; the real JPEG vs the original is 25-30 dB.
        assert _psnr(sim_u8, real) > 33
        assert _psnr(sim_u8, real) > _psnr(np.array(img), real) + 5
        sim.square().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # Stronger compression loses more.
    x = _t(photo)
    err_lo = (A.jpeg_differentiable(x, 30.0) - x).abs().mean()
    err_hi = (A.jpeg_differentiable(x, 95.0) - x).abs().mean()
    assert err_lo > err_hi


def test_jpeg_differentiable_per_sample_quality(photo):
    x = torch.cat([_t(photo), _t(photo)])
    both = A.jpeg_differentiable(x, torch.tensor([30.0, 95.0]))
    torch.testing.assert_close(both[0:1], A.jpeg_differentiable(x[0:1], 30.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(both[1:2], A.jpeg_differentiable(x[1:2], 95.0), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- resize
@pytest.mark.parametrize("scale", [1.5, 1.25, 0.75, 0.5])
def test_rescale_matches_pillow_bilinear(photo_wide, scale):
    x = _t(photo_wide)
    sim = A.rescale(x, scale)
    real = R.rescale(photo_wide, scale)
    w, h = photo_wide.size
    assert real.size == (round(w * scale), round(h * scale))
    assert sim.shape[-2:] == (real.size[1], real.size[0])
    # Same filter (antialiased bilinear); only Pillow's 8-bit fixed-point arithmetic differs.
    assert _psnr(_u8(sim), real) > 45  # measured ~54-56 dB
    assert _levels(_u8(sim), real).max() <= 2
    assert np.array_equal(np.array(Image.fromarray(np.array(photo_wide)).resize(
        real.size, Image.Resampling.BILINEAR)), np.array(real))


def test_real_rescale_changes_size_by_exactly_the_factor():
    img = Image.new("RGB", (100, 80), (10, 20, 30))
    assert R.rescale(img, 1.5).size == (150, 120)
    assert R.rescale(img, 0.5).size == (50, 40)
    assert R.rescale(img, 1.25).size == (125, 100)
    assert A.rescale(torch.zeros(1, 3, 80, 100), 1.5).shape == (1, 3, 120, 150)
    assert A.rescale(torch.zeros(1, 3, 80, 100), 0.75).shape == (1, 3, 60, 75)
    assert A.rescale(torch.zeros(1, 3, 2, 2), 0.01).shape == (1, 3, 1, 1)  # never empty


# --------------------------------------------------------------------------- blurs
@pytest.mark.parametrize("sigma", [0.3, 0.5, 0.8, 1.0, 1.1, 1.5])
def test_gaussian_blur_matches_skimage_in_the_interior(photo, sigma):
    x = _t(photo)
    sim = _u8(A.gaussian_blur(x, sigma))
    real = np.array(R.gaussian_blur(photo, sigma))
    r = int(np.ceil(3 * sigma))
    interior = _levels(sim, real)[r:-r, r:-r]
    assert interior.max() <= 1  # only 8-bit rounding differs
    assert interior.mean() < 0.1
    # Whole frame: borders differ (torch 'reflect' = scipy 'mirror' padding, while
    # real.gaussian_blur uses scipy 'reflect'), but on average within 2/255.
    assert _levels(sim, real).mean() < 2
    # It really blurs: closer to the real blur than the original is.
    assert _levels(sim, real)[r:-r, r:-r].mean() < _levels(np.array(photo), real)[r:-r, r:-r].mean()


def test_median_blur_matches_pillow_in_the_interior(photo, photo_wide):
    for img in (photo, photo_wide):
        sim = _u8(A.median_blur(_t(img), 3))
        real = np.array(R.median_blur(img, 3))
        assert np.array_equal(real, np.array(img.filter(ImageFilter.MedianFilter(3))))
        assert np.array_equal(sim[1:-1, 1:-1], real[1:-1, 1:-1])
        assert not np.array_equal(real, np.array(img))


def test_median_blur_has_gradient(photo):
    x = _t(photo).requires_grad_()
    A.median_blur(x, 3).sum().backward()
    assert x.grad.abs().sum() > 0


# --------------------------------------------------------------------------- noise
def test_awgn_std_and_determinism():
    x = torch.full((1, 3, 64, 64), 0.5)
    sigma = 0.03
    y = A.awgn(x, sigma, torch.Generator().manual_seed(0))
    noise = y - x
    assert abs(float(noise.std()) - sigma) < 0.05 * sigma
    assert abs(float(noise.mean())) < 3 * sigma / 64
    assert torch.equal(y, A.awgn(x, sigma, torch.Generator().manual_seed(0)))
    assert not torch.equal(y, A.awgn(x, sigma, torch.Generator().manual_seed(1)))
    # Output stays a valid image.
    z = A.awgn(torch.ones(1, 3, 16, 16), 0.5, torch.Generator().manual_seed(0))
    assert z.min() >= 0 and z.max() <= 1 and z.min() < 1
    assert torch.equal(A.awgn(x, 0.0), x)


def test_real_awgn_std_and_determinism():
    img = Image.new("RGB", (64, 64), (128, 128, 128))
    sigma = 0.03
    out = R.awgn(img, sigma, seed=3)
    noise = (np.asarray(out, dtype=np.float64) - 128) / 255
    assert abs(noise.std() - sigma) < 0.05 * sigma
    assert np.array_equal(np.array(out), np.array(R.awgn(img, sigma, seed=3)))
    assert not np.array_equal(np.array(out), np.array(R.awgn(img, sigma, seed=4)))
    # Simulation and real op: same distribution of the noise.
    sim = A.awgn(_t(img), sigma, torch.Generator().manual_seed(0))
    sim_noise = (_u8(sim).astype(np.float64) - 128) / 255
    assert abs(sim_noise.std() - noise.std()) < 0.1 * sigma


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_pixel_dropout_drops_whole_pixels_at_the_rate(photo, rate):
    x = 0.1 + 0.8 * _t(photo)  # no natural zeros
    y = A.pixel_dropout(x, rate, torch.Generator().manual_seed(0))
    zero = y == 0
    # All channels of a pixel go together; kept pixels are untouched.
    assert torch.equal(zero.all(1), zero.any(1))
    assert torch.equal(y[~zero], x[~zero])
    frac = float(zero.all(1).float().mean())
    assert abs(frac - rate) < 0.025
    assert torch.equal(y, A.pixel_dropout(x, rate, torch.Generator().manual_seed(0)))
    assert torch.equal(A.pixel_dropout(x, 0.0), x)


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_real_pixel_dropout_drops_whole_pixels_at_the_rate(rate):
    img = Image.new("RGB", (64, 64), (200, 100, 50))
    out = np.array(R.pixel_dropout(img, rate, seed=1))
    zero = out == 0
    assert np.array_equal(zero.all(-1), zero.any(-1))
    assert (out[~zero.all(-1)] == [200, 100, 50]).all()
    assert abs(zero.all(-1).mean() - rate) < 0.025
    assert np.array_equal(out, np.array(R.pixel_dropout(img, rate, seed=1)))


# --------------------------------------------------------------------------- colour
@pytest.mark.parametrize("factor", [0.5, 0.7, 1.3, 1.5])
def test_contrast_matches_pillow_enhance(photo, photo_wide, factor):
    for img in (photo, photo_wide):
        sim = _u8(A.contrast(_t(img), factor))
        real = np.array(R.contrast(img, factor))
        assert np.array_equal(real, np.array(ImageEnhance.Contrast(img).enhance(factor)))
        assert _levels(sim, real).max() <= 1
        assert _levels(real, np.array(img)).max() > 10  # the operation is not a no-op
    assert np.array_equal(_u8(A.contrast(_t(photo), 1.0)), np.array(photo))


@pytest.mark.parametrize("delta", [20, -20, 60])
def test_brightness_matches_real(photo, delta):
    sim = _u8(A.brightness(_t(photo), delta / 255))
    real = np.array(R.brightness(photo, delta))
    assert _levels(sim, real).max() <= 1
    expected = np.clip(np.array(photo).astype(int) + delta, 0, 255)
    assert np.array_equal(real, expected)


# --------------------------------------------------------------------------- quantize
def test_quantize_values_on_grid_with_identity_gradient():
    x = (torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.4 - 0.2)
    x.requires_grad_()
    q = A.quantize(x)
    levels = q.detach() * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert q.min() >= 0 and q.max() <= 1
    assert (q.detach() - x.detach().clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-6
    w = torch.randn_like(q)
    (q * w).sum().backward()
    torch.testing.assert_close(x.grad, w)  # straight through, even where clipped


def test_straight_through_value_and_gradient():
    sim = torch.tensor([1.0, 2.0], requires_grad=True)
    real = torch.tensor([5.0, 7.0])
    out = A.straight_through(sim * 3, real)
    assert torch.equal(out.detach(), real)
    out.sum().backward()
    assert torch.equal(sim.grad, torch.tensor([3.0, 3.0]))


# --------------------------------------------------------------------------- attack layer
_BOXES = [(0.0, 0.0, 1.0, 1.0), (0.125, 0.25, 0.75, 0.875)]


@pytest.mark.parametrize("name", ATTACK_NAMES)
@pytest.mark.parametrize("detach", [True, False])
def test_attack_layer_shape_grid_and_gradient(name, detach):
    cfg = AttackConfig(detach_attack=detach)
    size = 32
    layer = AttackLayer(cfg, size)
    rng = np.random.default_rng(0)
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1)).requires_grad_()
    draws = [draw_attack(rng, cfg, name) for _ in range(2)]
    y = layer(x, _BOXES, draws, torch.Generator().manual_seed(0))
    assert y.shape == (2, 3, size, size)
    levels = y.detach() * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert y.min() >= 0 and y.max() <= 1
    (y * torch.randn_like(y)).sum().backward()
    g = x.grad
    assert torch.isfinite(g).all()
    for i, box in enumerate(_BOXES):
        assert g[i].abs().sum() > 0, f"no gradient reaches input {i} through {name}"
    # Pixels cut away by the crop get no gradient; the kept ones do.
    from clrnet.core.geometry import box_mask

    outside = box_mask(_BOXES[1], size, size) == 0
    assert g[1][:, outside].abs().max() == 0
    assert g[1][:, ~outside].abs().sum() > 0


@pytest.mark.parametrize("name", ["jpeg", "jpeg_diff", "gaussian_blur", "median_blur", "awgn",
                                  "dropout", "contrast", "brightness"])
def test_detached_attack_gradient_equals_identity_gradient(name):
    """With detach_attack, size-preserving attacks pass the gradient as if they were
    the identity (the paper's gradient stabilisation)."""
    cfg = AttackConfig(detach_attack=True)
    layer = AttackLayer(cfg, 32)
    rng = np.random.default_rng(3)
    x0 = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    w = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    grads = []
    for n in ("identity", name):
        x = x0.clone().requires_grad_()
        draws = [draw_attack(rng, cfg, n) for _ in range(2)]
        (layer(x, _BOXES, draws, torch.Generator().manual_seed(0)) * w).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_attack_layer_values_match_the_operations(photo):
    """Uncropped: identity gives the quantised input; JPEG gives Pillow's JPEG."""
    cfg = AttackConfig()
    x = _t(photo.resize((32, 32)))
    layer = AttackLayer(cfg, 32)
    ident = layer(x, [_BOXES[0]], [AttackDraw("identity", {})])
    assert torch.equal(ident, A.quantize(x))
    jp = layer(x, [_BOXES[0]], [AttackDraw("jpeg", {"quality": 60.0})])
    assert np.array_equal(_u8(jp), np.array(R.jpeg(photo.resize((32, 32)), 60)))
    # A cropped identity attack is the crop resized back to the native size.
    from clrnet.core.geometry import crop, resize

    cropped = layer(x, [_BOXES[1]], [AttackDraw("identity", {})])
    torch.testing.assert_close(cropped, A.quantize(resize(crop(x, _BOXES[1]), 32, 32)))


def test_draw_attack_parameters_within_configured_ranges():
    cfg = AttackConfig(jpeg_quality=(60, 80), resize_scale=(0.6, 1.4), blur_sigma=(0.4, 1.2),
                       median_kernel=[3, 5], noise_sigma=(0.01, 0.02), dropout_rate=(0.02, 0.05),
                       contrast=(0.8, 1.2), brightness=(-0.05, 0.05),
                       attacks=["jpeg", "resize", "awgn"])
    rng = np.random.default_rng(0)
    seen: dict[str, list[dict[str, float]]] = {}
    for name in ATTACK_NAMES:
        for _ in range(60):
            d = draw_attack(rng, cfg, name)
            assert d.name == name
            seen.setdefault(name, []).append(d.params)
    expect = {
        "identity": set(), "jpeg": {"quality"}, "jpeg_diff": {"quality"},
        "resize": {"scale"}, "jpeg_resize": {"quality", "scale"}, "gaussian_blur": {"sigma"},
        "median_blur": {"kernel_size"}, "awgn": {"sigma"}, "dropout": {"rate"},
        "contrast": {"factor"}, "brightness": {"delta"},
    }
    assert set(expect) == set(ATTACK_NAMES)
    ranges = {("jpeg", "quality"): cfg.jpeg_quality, ("jpeg_diff", "quality"): cfg.jpeg_quality,
              ("jpeg_resize", "quality"): cfg.jpeg_quality, ("resize", "scale"): cfg.resize_scale,
              ("jpeg_resize", "scale"): cfg.resize_scale, ("gaussian_blur", "sigma"): cfg.blur_sigma,
              ("awgn", "sigma"): cfg.noise_sigma, ("dropout", "rate"): cfg.dropout_rate,
              ("contrast", "factor"): cfg.contrast, ("brightness", "delta"): cfg.brightness}
    for name, params in seen.items():
        for p in params:
            assert set(p) == expect[name]
        for key in expect[name]:
            values = np.array([p[key] for p in params])
            if key == "kernel_size":
                assert set(values.tolist()) == {3.0, 5.0}
                continue
            lo, hi = ranges[(name, key)]
            assert values.min() >= lo and values.max() <= hi
            assert values.max() - values.min() > 0.3 * (hi - lo)  # actually spread out
            if key == "quality":
                assert np.array_equal(values, values.round())  # whole qualities, ends included
    # Without a name, the attack is drawn from the configured list.
    names = {draw_attack(rng, cfg).name for _ in range(100)}
    assert names == {"jpeg", "resize", "awgn"}


def test_draw_attack_is_deterministic_per_seed():
    cfg = AttackConfig()
    a = [draw_attack(np.random.default_rng(4), cfg) for _ in range(1)]
    b = [draw_attack(np.random.default_rng(4), cfg) for _ in range(1)]
    assert a == b


def test_apply_attack_unknown_name_raises():
    with pytest.raises(ValueError, match="unknown attack"):
        apply_attack(torch.zeros(1, 3, 8, 8), AttackDraw("sharpen", {}))


def test_apply_attack_resize_changes_size():
    x = torch.rand(1, 3, 40, 20)
    out = apply_attack(x, AttackDraw("resize", {"scale": 0.5}))
    assert out.shape == (1, 3, 20, 10)
    out = apply_attack(x, AttackDraw("jpeg_resize", {"scale": 1.5, "quality": 80.0}))
    assert out.shape == (1, 3, 60, 30)
    assert torch.equal(apply_attack(x, AttackDraw("identity", {})), x)


def test_attack_config_rejects_unknown_attack_names():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        AttackConfig(attacks=["identity", "sharpen"])
