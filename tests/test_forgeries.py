"""The passive detector's training and evaluation edits: every generator's mask is the set of
pixels it changed, and post-processing carries the mask along."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from clrnet.attacks.forgeries import KINDS, forge, postprocess, segment_mask, superpixel_mask


@pytest.fixture(scope="module")
def photos() -> tuple[np.ndarray, np.ndarray]:
    return data.astronaut()[::2, ::2].copy(), data.chelsea()[:256, :256].copy()


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(2) > 0


@pytest.mark.parametrize("objects", [0.0, 1.0])
@pytest.mark.parametrize("kind", KINDS)
def test_mask_is_what_changed(kind: str, objects: float, photos) -> None:
    photo, donor = photos
    for seed in range(12):
        edited, mask = forge(kind, photo, np.random.default_rng(seed), donor, objects)
        assert edited.shape == photo.shape and edited.dtype == np.uint8 and mask.shape == photo.shape[:2]
        changed = _changed(edited, photo)
        if kind == "pristine":
            assert not mask.any() and not changed.any()
            continue
        assert 0.002 < mask.mean() < 0.5
        # nothing changes outside the mask but the feathered rim of a paste (a few pixels wide)
        rim = cv2.dilate(mask.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
        assert not (changed & ~rim).any(), (kind, seed)
        if kind == "removal":
            assert not (changed & ~mask).any()
        # and most of the masked pixels did change (a pasted or filled pixel can equal the old by chance)
        assert (changed & mask).sum() >= 0.8 * mask.sum(), (kind, seed)


def test_splice_needs_a_donor_and_kinds_are_checked(photos) -> None:
    with pytest.raises(ValueError, match="donor"):
        forge("splice", photos[0], np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown forgery"):
        forge("blur", photos[0], np.random.default_rng(0))


def test_superpixel_region_is_connected_superpixels_of_the_asked_area(photos) -> None:
    m = superpixel_mask(np.random.default_rng(0), photos[0], 0.1)
    assert 0.1 <= m.mean() < 0.3
    n, _ = cv2.connectedComponents(m.astype(np.uint8))
    assert n == 2  # one region (and the background)


def test_postprocess_carries_the_mask_along(photos) -> None:
    photo = photos[0]
    mask = np.zeros(photo.shape[:2], bool)
    mask[40:90, 60:120] = True
    sizes = set()
    for seed in range(20):
        out, m = postprocess(np.random.default_rng(seed), photo, mask, p=1.0)
        assert out.shape[:2] == m.shape
        sizes.add(out.shape[:2])
        assert m.mean() == pytest.approx(mask.mean(), rel=0.1)
    assert len(sizes) > 1  # resized
    out, m = postprocess(np.random.default_rng(0), photo, mask, p=1.0, resize=False)
    assert out.shape == photo.shape and np.array_equal(m, mask) and not np.array_equal(out, photo)


def test_segment_region_follows_the_photos_edges_clear_of_the_border() -> None:
    """A bright disc on a dark ground: the segment is the disc (its outline is the photo's edge)."""
    photo = np.full((128, 128, 3), 40, np.uint8)
    cv2.circle(photo, (70, 60), 20, (220, 200, 180), -1)
    disc = np.zeros((128, 128), np.uint8)
    cv2.circle(disc, (70, 60), 20, 1, -1)
    for seed in range(4):
        m = segment_mask(np.random.default_rng(seed), photo, float(disc.mean()))
        assert m.dtype == bool and m.shape == (128, 128)
        near = cv2.dilate(disc, np.ones((5, 5), np.uint8)).astype(bool)
        assert not (m & ~near).any() and (m & disc.astype(bool)).sum() >= 0.75 * disc.sum()
