"""Quality and localisation metrics (clrnet.core.metrics) against scikit-image and
hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from clrnet.core.geometry import box_mask
from clrnet.core.metrics import accuracy, mask_f1, mask_iou, mean_ci, psnr, ssim


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A real photo (chelsea, 64 x 48) and a noisy copy, as (3, H, W) in [0, 1]."""
    from skimage import data

    img = np.asarray(Image.fromarray(data.chelsea()).resize((64, 48), Image.Resampling.LANCZOS))
    a = img.astype(np.float64) / 255
    rng = np.random.default_rng(0)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    t = lambda x: torch.from_numpy(x).permute(2, 0, 1).float()  # noqa: E731
    return t(a), t(b)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.double().permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------- PSNR
def test_psnr_matches_skimage(pair):
    a, b = pair
    ref = peak_signal_noise_ratio(_np(a), _np(b), data_range=1)
    assert psnr(a, b) == pytest.approx(ref, abs=1e-6)
    assert 20 < psnr(a, b) < 35
    c = (a * 0.9 + 0.05)
    assert psnr(a, c) == pytest.approx(peak_signal_noise_ratio(_np(a), _np(c), data_range=1), abs=1e-6)


def test_psnr_known_values():
    a = torch.zeros(3, 4, 4)
    assert psnr(a, a + 0.1) == pytest.approx(20.0)  # mse 0.01
    assert psnr(a, a + 0.01) == pytest.approx(40.0)
    assert psnr(a, a + 10, data_range=255) == pytest.approx(20 * math.log10(25.5))
    assert psnr(a, a) == math.inf


def test_masked_psnr_equals_psnr_on_the_masked_pixels(pair):
    a, b = pair
    mask = box_mask((0.25, 0.0, 0.75, 0.5), 48, 64)
    sel = mask.bool()
    mse = float(((a[:, sel].double() - b[:, sel].double()) ** 2).mean())
    assert psnr(a, b, mask) == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)
    # Only masked pixels count: wrecking the rest changes nothing.
    b2 = b.clone()
    b2[:, ~sel] = 1 - b2[:, ~sel]
    assert psnr(a, b2, mask) == pytest.approx(psnr(a, b, mask), abs=1e-9)
    assert psnr(a, b2) < psnr(a, b) - 3
    # A full mask is the plain PSNR; an empty one is undefined.
    assert psnr(a, b, torch.ones(48, 64)) == pytest.approx(psnr(a, b), abs=1e-9)
    assert math.isnan(psnr(a, b, torch.zeros(48, 64)))


# --------------------------------------------------------------------------- SSIM
def test_ssim_matches_skimage_gaussian(pair):
    a, b = pair
    for other in (b, (a * 0.8 + 0.1), torch.roll(a, 1, dims=-1)):
        ref = structural_similarity(_np(a), _np(other), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0, channel_axis=-1)
        assert ssim(a, other) == pytest.approx(ref, abs=1e-4)
    assert ssim(a, b) < 0.9  # noise really lowers it


def test_masked_ssim_matches_skimage_map_over_the_mask(pair):
    a, b = pair
    _, ref_map = structural_similarity(_np(a), _np(b), gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=1.0, channel_axis=-1,
                                       full=True)
    mask = box_mask((0.0, 0.0, 0.5, 1.0), 48, 64)
    inner = np.zeros((48, 64), bool)
    inner[5:-5, 5:-5] = mask.numpy()[5:-5, 5:-5] > 0
    assert ssim(a, b, mask) == pytest.approx(float(ref_map[inner].mean()), abs=1e-4)
    assert ssim(a, b, torch.ones(48, 64)) == pytest.approx(ssim(a, b), abs=1e-9)
    assert math.isnan(ssim(a, b, torch.zeros(48, 64)))


def test_ssim_identity_and_symmetry(pair):
    a, b = pair
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-9)


# --------------------------------------------------------------------------- masks
def _hand_f1(p: np.ndarray, t: np.ndarray) -> float:
    tp = int(np.sum(p & t))
    fp = int(np.sum(p & ~t))
    fn = int(np.sum(~p & t))
    return 2 * tp / (2 * tp + fp + fn)


def test_mask_f1_against_hand_computation():
    rng = np.random.default_rng(0)
    for _ in range(10):
        p = rng.random((12, 9)) < 0.4
        t = rng.random((12, 9)) < 0.6
        assert mask_f1(torch.from_numpy(p).float(), torch.from_numpy(t).float()) == pytest.approx(
            _hand_f1(p, t))
    # A tiny known case: TP=2, FP=1, FN=1 -> 4 / 6.
    p = torch.tensor([[1, 1, 1, 0]])
    t = torch.tensor([[1, 1, 0, 1]])
    assert mask_f1(p, t) == pytest.approx(4 / 6)


def test_mask_f1_whole_frame_against_box():
    n = 50
    box = (0.0, 0.0, 1.0, 0.6)  # 60 % of the frame
    t = box_mask(box, n, n)
    assert float(t.mean()) == pytest.approx(0.6)
    # Predicting "not cropped" (whole frame) against a 60 % crop.
    assert mask_f1(torch.ones(n, n), t) == pytest.approx(2 * 0.6 / (1 + 0.6))
    assert mask_f1(t, t) == 1.0
    assert mask_f1(torch.zeros(n, n), torch.zeros(n, n)) == 1.0
    assert mask_f1(torch.zeros(n, n), t) == 0.0


def test_mask_iou():
    n = 20
    a = box_mask((0.0, 0.0, 0.5, 1.0), n, n)
    b = box_mask((0.25, 0.0, 0.75, 1.0), n, n)
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, 1 - a) == 0.0
    assert mask_iou(torch.zeros(n, n), torch.zeros(n, n)) == 1.0
    assert mask_iou(torch.ones(n, n), box_mask((0.2, 0.2, 0.8, 0.8), n, n)) == pytest.approx(0.36)


def test_accuracy():
    assert accuracy([True, False, True, True], [True, True, True, False]) == 0.5
    assert accuracy([], []) == 0.0


# --------------------------------------------------------------------------- mean and CI
def test_mean_ci_known_data():
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == pytest.approx(3.0)
    assert half == pytest.approx(1.96 * math.sqrt(2.5) / math.sqrt(5))  # sample std
    mean, half = mean_ci([2.0, 2.0, 2.0])
    assert (mean, half) == (2.0, 0.0)


def test_mean_ci_drops_nans_and_handles_tiny_samples():
    mean, half = mean_ci([1.0, float("nan"), 3.0])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(1.96 * math.sqrt(2.0) / math.sqrt(2))
    mean, half = mean_ci([4.0])
    assert mean == 4.0 and math.isnan(half)
    assert all(math.isnan(v) for v in mean_ci([]))
    assert all(math.isnan(v) for v in mean_ci([float("nan")]))
