"""Crop geometry (clrnet.core.geometry): boxes, masks, crops, ZR and the box-shift warp."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clrnet.core.geometry import (
    FULL_FRAME,
    box_area,
    box_iou,
    box_mask,
    box_to_pixels,
    crop,
    resize,
    sample_crop_box,
    shift_to_box,
    soft_box_mask,
    zero_pad_resize,
)


def _image(b=1, c=3, h=32, w=32, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("width,height", [(64, 64), (100, 60), (33, 47)])
@pytest.mark.parametrize("min_area,max_area", [(0.25, 1.0), (0.5, 0.6), (0.9, 1.0)])
def test_sample_crop_box_area_alignment_and_bounds(width, height, min_area, max_area):
    rng = np.random.default_rng(123)
    # Rounding each side to whole pixels moves the area by at most this much.
    tol = 0.5 / width + 0.5 / height + 0.25 / (width * height)
    for _ in range(200):
        box = sample_crop_box(rng, width, height, min_area, max_area, max_aspect=2.0)
        x0, y0, x1, y1 = box
        assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0
        # Pixel aligned: every edge lies on the pixel grid of the frame.
        for v, n in ((x0, width), (x1, width), (y0, height), (y1, height)):
            assert abs(v * n - round(v * n)) < 1e-9
        assert min_area - tol <= box_area(box) <= max_area + tol
        # Pixel alignment means crop/box_to_pixels reproduce the box exactly.
        left, top, right, bottom = box_to_pixels(box, width, height)
        assert (left / width, top / height, right / width, bottom / height) == pytest.approx(box)


def test_sample_crop_box_aspect_ratio_and_spread():
    rng = np.random.default_rng(7)
    n = 64
    boxes = [sample_crop_box(rng, n, n, 0.25, 1.0, max_aspect=2.0) for _ in range(300)]
    aspects = np.array([(b[2] - b[0]) / (b[3] - b[1]) for b in boxes])
    areas = np.array([box_area(b) for b in boxes])
    tol = 2 / (0.5 * n)  # one pixel of rounding on a side of at least half the frame
    assert aspects.min() >= 0.5 - tol and aspects.max() <= 2.0 + tol
    # Really random: areas cover the range, positions vary.
    assert areas.min() < 0.35 and areas.max() > 0.9
    assert len({b[0] for b in boxes}) > 10 and len({b[1] for b in boxes}) > 10


def test_sample_crop_box_is_deterministic_per_seed():
    a = [sample_crop_box(np.random.default_rng(5), 64, 48) for _ in range(1)]
    b = [sample_crop_box(np.random.default_rng(5), 64, 48) for _ in range(1)]
    assert a == b
    ra, rb = np.random.default_rng(9), np.random.default_rng(9)
    seq_a = [sample_crop_box(ra, 64, 48) for _ in range(20)]
    seq_b = [sample_crop_box(rb, 64, 48) for _ in range(20)]
    assert seq_a == seq_b
    seq_c = [sample_crop_box(np.random.default_rng(10), 64, 48)]
    assert len(set(seq_a)) > 10 and seq_c[0] != seq_a[0]


# --------------------------------------------------------------------------- pixels and masks
def test_box_to_pixels_rounds_and_is_never_empty():
    assert box_to_pixels((0.25, 0.5, 0.75, 1.0), 16, 8) == (4, 4, 12, 8)
    assert box_to_pixels(FULL_FRAME, 10, 7) == (0, 0, 10, 7)
    degenerate = [(0.5, 0.5, 0.5, 0.5), (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.0),
                  (0.9, 0.8, 0.1, 0.2), (-0.5, -0.5, 1.5, 1.5), (0.51, 0.49, 0.52, 0.5)]
    for box in degenerate:
        for w, h in ((16, 8), (1, 1), (7, 5)):
            left, top, right, bottom = box_to_pixels(box, w, h)
            assert 0 <= left < right <= w and 0 <= top < bottom <= h, (box, w, h)


def test_box_mask_matches_crop():
    img = _image(1, 1, 12, 20)
    box = (0.1, 0.25, 0.6, 0.75)
    m = box_mask(box, 12, 20)
    assert m.shape == (12, 20) and set(m.unique().tolist()) == {0.0, 1.0}
    c = crop(img, box)
    assert tuple(c.shape[-2:]) == (int(m.sum(0).max()), int(m.sum(1).max()))
    # Exactly the masked pixels form the crop.
    assert torch.equal(img[0, 0][m.bool()], c[0, 0].flatten())


def test_crop_of_full_frame_is_everything():
    img = _image()
    assert torch.equal(crop(img, FULL_FRAME), img)
    assert torch.equal(box_mask(FULL_FRAME, 5, 6), torch.ones(5, 6))


# --------------------------------------------------------------------------- ZR
def test_zero_pad_resize_inverts_a_pixel_aligned_crop_exactly():
    rng = np.random.default_rng(0)
    img = _image(2, 3, 32, 48)
    for _ in range(20):
        box = sample_crop_box(rng, 48, 32, 0.1, 1.0)
        zr = zero_pad_resize(crop(img, box), box, 32, 48)
        assert torch.equal(zr, img * box_mask(box, 32, 48))


def test_zero_pad_resize_resizes_into_the_box():
    received = torch.ones(1, 3, 5, 7)  # arbitrary size: gets resized into the box
    box = (0.25, 0.5, 0.75, 1.0)
    out = zero_pad_resize(received, box, 16, 16)
    assert out.shape == (1, 3, 16, 16)
    torch.testing.assert_close(out, box_mask(box, 16, 16).expand(1, 3, 16, 16))


def test_resize_is_identity_at_same_size():
    img = _image(1, 3, 20, 30)
    out = resize(img, 20, 30)
    assert torch.equal(out, img)


@pytest.mark.parametrize("size", [(10, 15), (13, 7), (40, 45), (40, 15), (20, 60)])
def test_resize_matches_pillow_bilinear(size):
    """Bilinear, antialiased when shrinking: the same filter as Pillow's BILINEAR
    resize (compared in float mode, so without 8-bit rounding)."""
    h, w = size
    img = _image(1, 3, 20, 30)
    out = resize(img, h, w)
    assert out.shape == (1, 3, h, w)
    ref = np.stack([np.asarray(Image.fromarray(img[0, c].numpy()).resize(
        (w, h), Image.Resampling.BILINEAR)) for c in range(3)])
    np.testing.assert_allclose(out[0].numpy(), ref, atol=1e-5)


def test_resize_keeps_constants_constant():
    flat = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(resize(flat, 17, 5), torch.full((1, 3, 17, 5), 0.3))


# --------------------------------------------------------------------------- IoU
def test_box_iou_known_values():
    a = (0.0, 0.0, 0.5, 1.0)
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(FULL_FRAME, FULL_FRAME) == pytest.approx(1.0)
    assert box_iou(a, (0.5, 0.0, 1.0, 1.0)) == 0.0  # touching edges
    assert box_iou((0.0, 0.0, 0.2, 0.2), (0.5, 0.5, 0.9, 0.9)) == 0.0
    # Half of each box overlaps: inter 0.25, union 0.75.
    assert box_iou(a, (0.25, 0.0, 0.75, 1.0)) == pytest.approx(1 / 3)
    # A box inside another: IoU = area ratio.
    assert box_iou(FULL_FRAME, (0.2, 0.2, 0.8, 0.8)) == pytest.approx(0.36)
    # Symmetric.
    b, c = (0.1, 0.2, 0.7, 0.9), (0.3, 0.1, 0.8, 0.6)
    assert box_iou(b, c) == pytest.approx(box_iou(c, b))
    inter = (0.7 - 0.3) * (0.6 - 0.2)
    assert box_iou(b, c) == pytest.approx(inter / (0.6 * 0.7 + 0.5 * 0.5 - inter))
    assert box_iou((0.5, 0.5, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5)) == 0.0  # empty boxes


# --------------------------------------------------------------------------- soft mask
def test_soft_box_mask_matches_hard_mask_away_from_edges():
    n = 64
    box = (0.125, 0.25, 0.75, 0.875)  # pixel-aligned: 8..48 x 16..56
    soft = soft_box_mask(torch.tensor([box]), n, n)
    assert soft.shape == (1, 1, n, n)
    assert soft.min() >= 0 and soft.max() <= 1
    hard = box_mask(box, n, n)
    left, top, right, bottom = box_to_pixels(box, n, n)
    ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    dist = torch.minimum(torch.minimum((xs - left).abs(), (xs - right + 1).abs()),
                         torch.minimum((ys - top).abs(), (ys - bottom + 1).abs()))
    far = dist >= 6
    assert far.sum() > n * n / 4
    assert (soft[0, 0][far] - hard[far]).abs().max() < 0.01
    # At the edge the soft mask is about half.
    mid = (top + bottom) // 2
    assert 0.3 < float(soft[0, 0, mid, left]) < 0.7
    assert 0.3 < float(soft[0, 0, mid, left - 1]) < 0.7
    # Thresholding reproduces the hard mask along the edge midlines.
    assert torch.equal((soft[0, 0, mid] > 0.5).float(), hard[mid])


def test_soft_box_mask_is_differentiable_wrt_boxes():
    boxes = torch.tensor([[0.2, 0.3, 0.6, 0.8], [0.0, 0.0, 1.0, 1.0]], requires_grad=True)
    target = box_mask((0.25, 0.25, 0.75, 0.75), 32, 32).expand(2, 1, 32, 32)
    m = soft_box_mask(boxes, 32, 32).clamp(1e-6, 1 - 1e-6)
    F.binary_cross_entropy(m, target).backward()
    g = boxes.grad
    assert g is not None and torch.isfinite(g).all()
    assert (g[0].abs() > 1e-4).all()  # every corner of a wrong box is pushed
    # Gradient descent directions make sense: x0=0.2 should grow towards 0.25,
    # y1=0.8 should shrink towards 0.75.
    assert g[0, 0] < 0 and g[0, 3] > 0


# --------------------------------------------------------------------------- shift
def test_shift_to_box_is_identity_when_boxes_agree():
    img = _image(2, 3, 16, 24)
    for box in [(0.25, 0.25, 0.75, 0.75), FULL_FRAME, (0.1, 0.3, 0.4, 0.9)]:
        torch.testing.assert_close(shift_to_box(img, box, box), img, atol=1e-5, rtol=0)


def test_shift_to_box_translates_content_by_whole_pixels():
    n = 16
    img = _image(1, 3, n, n)
    true = (0.25, 0.25, 0.75, 0.75)
    pred = (0.25 + 2 / n, 0.25 - 1 / n, 0.75 + 2 / n, 0.75 - 1 / n)  # 2 px right, 1 px up
    out = shift_to_box(img, true, pred)
    # out[r, c] = img[r + 1, c - 2] wherever that source pixel exists.
    torch.testing.assert_close(out[..., 0:n - 1, 2:n], img[..., 1:n, 0:n - 2], atol=1e-5, rtol=0)
    # Outside the frame the border is replicated.
    torch.testing.assert_close(out[..., 0:n - 1, 0], img[..., 1:n, 0], atol=1e-5, rtol=0)


def test_shift_to_box_maps_true_box_content_onto_pred_box():
    n = 16
    img = _image(1, 3, n, n)
    true = (0.25, 0.25, 0.5, 0.5)  # 4 x 4 pixels
    out = shift_to_box(img, true, FULL_FRAME)  # blown up to the whole frame
    up = resize(crop(img, true), n, n)
    # Away from the crop's own edges (where grid_sample sees neighbours), identical.
    torch.testing.assert_close(out[..., 2:14, 2:14], up[..., 2:14, 2:14], atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape,size", [((1, 1, 3000, 2000), (700, 466)), ((1, 3, 60000, 96), (2048, 8))])
def test_window_of_resize_keeps_the_scale_and_says_where_the_window_sits(shape, size):
    """On a ramp (value = row + 10 000 * column) a shrinking antialiased resize holds,
    in the interior, the ramp at each output pixel's centre to a few hundredths of a
    pixel (the whole image's resize too): every pixel of the window must, at the
    position the window says it starts at; half a pixel off would be 50 times that."""
    from clrnet.core.geometry import window_of_resize

    big_h, big_w = shape[-2:]
    rows = torch.arange(big_h, dtype=torch.float64)[:, None]
    cols = torch.arange(big_w, dtype=torch.float64)[None, :]
    image = (rows + 10_000 * cols).expand(*shape).contiguous()
    h, w = size
    wh, ww = min(h, 256), min(w, 256)
    win, top, left = window_of_resize(image, h, w, ((h - wh) // 2, (w - ww) // 2, wh, ww))
    assert win.shape[-2:] == (wh, ww)
    assert abs(top - (h - wh) // 2) <= 0.5 and abs(left - (w - ww) // 2) <= 0.5
    i = torch.arange(wh, dtype=torch.float64)[:, None] + top
    j = torch.arange(ww, dtype=torch.float64)[None, :] + left
    expect = ((i + 0.5) * big_h / h - 0.5) + 10_000 * ((j + 0.5) * big_w / w - 0.5)
    inner = (slice(2, -2), slice(2, -2) if ww > 8 else slice(1, -1))  # not the image's own edges
    assert (win[0, 0][inner] - expect[inner]).abs().max() <= 0.05 * (1 + 10_000)
    full = resize(image, h, w)[0, 0, (h - wh) // 2:(h - wh) // 2 + wh, (w - ww) // 2:(w - ww) // 2 + ww]
    i0 = torch.arange(wh, dtype=torch.float64)[:, None] + (h - wh) // 2
    j0 = torch.arange(ww, dtype=torch.float64)[None, :] + (w - ww) // 2
    whole = ((i0 + 0.5) * big_h / h - 0.5) + 10_000 * ((j0 + 0.5) * big_w / w - 0.5)
    assert (full[inner] - whole[inner]).abs().max() <= 0.05 * (1 + 10_000)
