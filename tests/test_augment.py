"""Tamper-based augmentation (clrnet.paper.augment): free-form masks and pasting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import clrnet.paper.augment as augment
from clrnet.paper.augment import free_form_mask, tamper_augment


@pytest.mark.parametrize("height,width", [(32, 32), (48, 64)])
def test_free_form_mask_binary_nonempty(height, width):
    for seed in range(10):
        m = free_form_mask(np.random.default_rng(seed), height, width)
        assert m.shape == (height, width) and m.dtype == torch.float32
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        assert m.sum() > 0  # at least one stroke
        assert m.sum() < height * width  # never the whole frame here


def test_free_form_mask_deterministic_per_seed():
    a = free_form_mask(np.random.default_rng(3), 64, 64)
    b = free_form_mask(np.random.default_rng(3), 64, 64)
    assert torch.equal(a, b)
    others = [free_form_mask(np.random.default_rng(s), 64, 64) for s in range(4, 8)]
    assert not any(torch.equal(a, o) for o in others)


def test_free_form_mask_strokes_are_thick_and_connected():
    from scipy import ndimage

    m = free_form_mask(np.random.default_rng(0), 64, 64, max_strokes=1).numpy().astype(bool)
    _, n = ndimage.label(m)
    assert n == 1  # one stroke -> one connected blob
    # Brush width at least 3 % of the diagonal: the stroke survives a small erosion.
    assert ndimage.binary_erosion(m, iterations=1).sum() > 0


def _batch(b=2, seed=0):
    return torch.rand(b, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_tamper_augment_rate_zero_is_identity():
    imgs = _batch(4)
    out = tamper_augment(imgs, np.random.default_rng(0), rate=0.0)
    assert torch.equal(out, imgs)
    assert out is not imgs  # a copy, the input is not modified in place


def test_tamper_augment_single_image_is_unchanged():
    imgs = _batch(1)
    assert torch.equal(tamper_augment(imgs, np.random.default_rng(0), rate=1.0), imgs)


def test_tamper_augment_rate_one_changes_only_masked_pixels(monkeypatch):
    masks: list[torch.Tensor] = []
    orig = augment.free_form_mask

    def spy(*args, **kwargs):
        masks.append(orig(*args, **kwargs))
        return masks[-1]

    monkeypatch.setattr(augment, "free_form_mask", spy)
    imgs = _batch(2)
    before = imgs.clone()
    out = tamper_augment(imgs, np.random.default_rng(1), rate=1.0)
    assert torch.equal(imgs, before)  # input untouched
    assert len(masks) == 2  # every image tampered
    for i, m in enumerate(masks):
        keep = m == 0
        # Outside the mask: unchanged.
        assert torch.equal(out[i][:, keep], imgs[i][:, keep])
        # Inside: the other photo of the batch (mirrored) was pasted.
        donor = imgs[1 - i].flip(-1)
        assert torch.equal(out[i][:, ~keep], donor[:, ~keep])
        assert (out[i] != imgs[i]).any(0).sum() > 0.9 * (~keep).sum()


def test_tamper_augment_rate_is_a_fraction_of_the_batch():
    imgs = _batch(8)
    rng = np.random.default_rng(2)
    changed = 0
    for _ in range(10):
        out = tamper_augment(imgs, rng, rate=0.3)
        changed += int(((out != imgs).flatten(1).any(1)).sum())
    assert 10 <= changed <= 40  # ~24 of 80 expected
