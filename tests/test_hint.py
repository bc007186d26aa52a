"""The thumbnail hint: exact invertibility, decoding after a real crop + JPEG, and the fill."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clrnet.core.geometry import box_mask, crop, zero_pad_resize
from clrnet.paper.networks import ThumbnailHint
from clrnet.recovery.paint import distance_to, harmonic_extension

N = 128


@pytest.fixture(scope="module")
def hint() -> ThumbnailHint:
    return ThumbnailHint(N, cells=4, amplitude=0.022, band=(12, 32))


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    from skimage import data

    img = Image.fromarray(data.astronaut()).resize((N, N), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(img).astype(np.float32) / 255).permute(2, 0, 1)[None]


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    arr = (x[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return torch.from_numpy(np.asarray(Image.open(buf)).astype(np.float32) / 255).permute(2, 0, 1)[None]


def test_patterns_have_zero_mean_in_every_cell_and_unit_rms(hint):
    cell_means = F.avg_pool2d(hint.patterns[:, None], N // 4)
    assert float(cell_means.abs().max()) < 1e-5
    assert torch.allclose(hint.patterns.pow(2).mean((1, 2)), torch.ones(len(hint.patterns)), atol=1e-4)


def test_hint_layer_is_exactly_invertible_and_keeps_the_thumbnail(hint, astronaut):
    y = hint(astronaut)
    assert torch.allclose(hint.thumbnail(y), hint.thumbnail(astronaut), atol=1e-6)
    assert torch.allclose(hint.inverse(y), astronaut, atol=1e-5)
    rms = float((y - astronaut).pow(2).mean().sqrt())
    assert 0.01 < rms < 0.04  # about the configured amplitude


def test_hint_rejects_bad_settings():
    with pytest.raises(ValueError, match="divide"):
        ThumbnailHint(100, cells=3)
    with pytest.raises(ValueError, match="band"):
        ThumbnailHint(64, band=(12, 40))


@pytest.mark.parametrize("quality", [None, 80])
def test_decode_finds_the_thumbnail_of_the_cut_away_part(hint, astronaut, quality):
    protected = (hint(astronaut).clamp(0, 1) * 255).round() / 255
    box = (0.0, 0.0, 0.6, 0.7)  # the right and bottom cells are cut away
    received = crop(protected, box)
    if quality is not None:
        received = _jpeg(received, quality)
    keep = box_mask(box, N, N)[None, None]
    frame = zero_pad_resize(received, box, N, N)
    found = hint.decode(frame, keep)
    true = hint.thumbnail(astronaut)
    cut_cells = F.adaptive_avg_pool2d(keep, 4) < 0.9
    err = (found - true).abs()[cut_cells.expand_as(found)]
    mean_gray = (true.mean() - true).abs()[cut_cells.expand_as(true)]
    assert float(err.mean()) < 0.06
    assert float(err.mean()) < 0.5 * float(mean_gray.mean())  # far better than guessing grey


def test_fill_keeps_the_received_part_and_beats_inpainting(hint, astronaut):
    """Given the true thumbnail, the fill beats scikit-image's biharmonic inpainting."""
    from clrnet.evaluation.baselines import inpaint_biharmonic

    box = (0.3, 0.0, 1.0, 0.8)
    keep = box_mask(box, N, N)[None, None]
    frame = astronaut * keep
    filled = hint.fill(frame, keep, hint.thumbnail(astronaut))
    assert torch.equal(filled * keep, frame * keep)
    cut = 1 - keep

    def mse(x: torch.Tensor) -> float:
        return float(((x - astronaut) ** 2 * cut).sum() / (3 * cut.sum()))

    inpainted = inpaint_biharmonic(frame[0], keep[0, 0])[None]
    assert mse(filled) < 0.5 * mse(inpainted) < 0.5 * mse(frame)


def test_harmonic_extension_of_a_constant_is_that_constant():
    keep = box_mask((0.0, 0.0, 0.5, 1.0), 64, 64)[None, None]
    values = torch.full((1, 3, 64, 64), 0.3) * keep
    out = harmonic_extension(values, keep)
    assert torch.allclose(out, torch.full_like(out, 0.3), atol=3e-3)


@pytest.mark.parametrize("h,w", [(64, 64), (75, 101), (20, 13)])
def test_harmonic_extension_opencv_path_equals_the_torch_path(h, w):
    """Without gradients the extension runs in OpenCV; with them, in torch: the same iterations."""
    g = torch.Generator().manual_seed(h * w)
    keep = (torch.rand(1, 1, h, w, generator=g) > 0.6).float()
    keep[..., h // 4:h // 2, w // 3:] = 1
    values = torch.rand(2, 3, h, w, generator=g) * keep
    keep = keep.expand(2, 1, h, w).contiguous()
    fast = harmonic_extension(values, keep)
    slow = harmonic_extension(values.clone().requires_grad_(True), keep).detach()
    assert fast.shape == slow.shape == values.shape
    assert torch.allclose(fast, slow, atol=1e-5)
    assert torch.equal(fast * keep, values * keep)  # the known part stays exactly


def test_distance_to_matches_chessboard_distance_to_a_box():
    keep = box_mask((0.25, 0.5, 0.5, 0.75), 32, 32)[None, None]  # pixels 8..15, 16..23
    d = distance_to(keep)[0, 0]
    ys, xs = np.mgrid[0:32, 0:32]
    dx = np.maximum(np.maximum(8 - xs, xs - 15), 0)
    dy = np.maximum(np.maximum(16 - ys, ys - 23), 0)
    assert np.array_equal(d.numpy(), np.maximum(dx, dy).astype(np.float32))
