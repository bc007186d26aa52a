"""The ruler position code and its matched-filter readout, on real photos with a real
JPEG codec (Pillow): it must find crops, say "whole frame" for uncropped photos and
"not protected" for photos without the code."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from clrnet.core.geometry import FULL_FRAME, box_iou, crop, resize, sample_crop_box
from clrnet.paper.networks.invertible import PositionCode
from clrnet.sync.ruler import Ruler, RulerReadout

N = 128


@pytest.fixture(scope="module")
def ruler() -> Ruler:
    return Ruler((20, 48))


@pytest.fixture(scope="module")
def readout(ruler: Ruler) -> RulerReadout:
    return RulerReadout(ruler, N, presence=0.47)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Four real photos from scikit-image at N x N."""
    from skimage import data

    from clrnet.core.image import pil_to_tensor

    imgs = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    return torch.stack([pil_to_tensor(Image.fromarray(a).resize((N, N), Image.Resampling.LANCZOS))
                        for a in imgs])


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    arr = (x.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return torch.from_numpy(np.asarray(Image.open(buf)).astype(np.float32) / 255).permute(2, 0, 1)


def test_ruler_profile_is_deterministic_unit_power_and_band_limited(ruler):
    u = (torch.arange(4096, dtype=torch.float64) + 0.5) / 4096
    p = ruler.profile(u, "x")
    assert torch.equal(p, Ruler((20, 48)).profile(u, "x"))
    assert float((p ** 2).mean()) == pytest.approx(1.0, rel=0.02)
    spec = torch.fft.rfft(p).abs()
    inside = spec[20:49].pow(2).sum()
    assert float(inside / spec.pow(2).sum()) > 0.999
    assert not torch.allclose(p, ruler.profile(u, "y"))  # x and y rulers differ


def test_ruler_code_has_the_requested_rms_and_is_grey(ruler):
    code = ruler.code(N, N, 0.016)
    assert code.shape == (1, 3, N, N)
    assert float(code.pow(2).mean().sqrt()) == pytest.approx(0.016, rel=0.05)
    assert torch.equal(code[:, 0], code[:, 1]) and torch.equal(code[:, 1], code[:, 2])


def test_position_code_layer_with_ruler_is_invertible(ruler):
    layer = PositionCode(N, N, 0.016, "ruler")
    x = torch.rand(2, 3, N, N)
    assert torch.allclose(layer.inverse(layer(x)), x, atol=1e-6)
    assert torch.allclose(layer.code, ruler.code(N, N, 0.016))


def test_ruler_rejects_bad_band():
    with pytest.raises(ValueError, match="band"):
        Ruler((0, 10))


def test_readout_rejects_wrong_size(readout):
    with pytest.raises(ValueError, match="expects"):
        readout(torch.rand(1, 3, 64, 64))


def test_readout_locates_exact_crops_of_the_code_alone(ruler, readout):
    """Without any photo, the code of a crop resized to N is read back almost exactly."""
    code = ruler.code(4 * N, 4 * N, 0.05) + 0.5
    rng = np.random.default_rng(0)
    for _ in range(5):
        box = sample_crop_box(rng, 4 * N, 4 * N)
        received = resize(crop(code, box), N, N)
        found, logits = readout(received)
        assert box_iou(tuple(found[0].tolist()), box) > 0.97
        assert float(logits[0]) > 0


@pytest.mark.parametrize("quality", [80, 50])
def test_readout_finds_crops_of_protected_photos_under_real_jpeg(ruler, readout, photos, quality):
    code = ruler.code(N, N, 0.016)
    protected = (photos + code).clamp(0, 1)
    rng = np.random.default_rng(1)
    ious, detected = [], []
    for img in protected:
        for _ in range(3):
            box = sample_crop_box(rng, N, N)
            received = resize(_jpeg(crop(img[None], box)[0], quality)[None], N, N)
            found, logits, strength = readout.read(received)
            ious.append(box_iou(tuple(found[0].tolist()), box))
            detected.append(float(logits[0]) > 0)
    assert np.median(ious) > 0.95
    assert np.mean(detected) >= 0.75


def test_readout_says_whole_frame_for_uncropped_protected_photos(ruler, readout, photos):
    protected = (photos + ruler.code(N, N, 0.016)).clamp(0, 1)
    for img in protected:
        found, logits, strength = readout.read(_jpeg(img, 80)[None])
        assert float(strength[0]) > readout.presence
        assert float(logits[0]) < 0  # not cropped
        assert box_iou(tuple(found[0].tolist()), FULL_FRAME) > 0.95


def test_readout_finds_no_protection_in_plain_photos(readout, photos):
    rng = np.random.default_rng(2)
    for img in photos:
        for box in (FULL_FRAME, sample_crop_box(rng, N, N)):
            received = resize(_jpeg(crop(img[None], box)[0], 90)[None], N, N)
            found, logits, strength = readout.read(received)
            assert float(strength[0]) < readout.presence
            assert float(logits[0]) < 0
            assert tuple(found[0].tolist()) == FULL_FRAME


def test_readout_hypotheses_cover_boxes_down_to_min_side(readout):
    widths = readout.hyps[:, 1] - readout.hyps[:, 0]
    assert math.isclose(float(widths.min()), 0.2, abs_tol=1 / 256)
    assert float(widths.max()) == 1.0
    assert float(readout.hyps.min()) >= 0 and float(readout.hyps.max()) <= 1


def test_readout_templates_equal_the_ruler_profile():
    """The per-width matrix product gives the cosine sums of ``Ruler.profile`` exactly."""
    from clrnet.sync.ruler import templates

    ruler = Ruler((32, 80), 7)
    hyps = torch.tensor([(a / 64, a / 64 + w / 64) for w in (13, 20, 64) for a in range(0, 65 - w, 3)],
                        dtype=torch.float64)
    u = (torch.arange(100, dtype=torch.float64) + 0.5) / 100
    for axis in ("x", "y"):
        ref = ruler.profile(hyps[:, :1] + u[None] * (hyps[:, 1:] - hyps[:, :1]), axis)
        assert torch.allclose(templates(ruler, hyps, u, axis), ref, atol=1e-9)


def test_local_power_equals_avg_pool_without_padding():
    from clrnet.sync.ruler import _local_power

    d = torch.randn(2, 40, 57, generator=torch.Generator().manual_seed(3))
    fast = _local_power(d, 9)
    ref = torch.nn.functional.avg_pool2d((d * d)[:, None], 9, 1, 4, count_include_pad=False)[:, 0]
    assert torch.allclose(fast, ref, rtol=1e-5, atol=1e-6)
