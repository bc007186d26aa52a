"""The reconstruction of the cut-away part: painting and the learned refine network."""

from __future__ import annotations

import numpy as np
import torch

from clrnet.core.geometry import box_mask
from clrnet.recovery.paint import paint, upsample
from clrnet.recovery.refine import RefineNet, coarseness_of, load_refine, refine_frame
from clrnet.training.refine import RefineConfig, cut_mse, make_sample


def _scene(h: int = 96, w: int = 128) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([xx, yy, 0.5 + 0.3 * torch.sin(12 * xx) * torch.cos(9 * yy)]).clamp(0, 1)


def test_untrained_net_returns_the_painted_frame():
    img = _scene()
    keep = box_mask((0.2, 0.1, 0.7, 0.9), 96, 128)[None, None]
    base = upsample(torch.nn.functional.avg_pool2d(img[None], 16), 96, 128)
    painted = paint(img[None] * keep, keep, base)
    out = RefineNet(8)(painted, base, keep, torch.tensor([0.5]))
    assert torch.equal(out, painted.clamp(0, 1))


def test_refine_frame_keeps_the_received_pixels_at_any_size():
    torch.manual_seed(0)
    net = RefineNet(8)
    for p in net.out.parameters():
        torch.nn.init.normal_(p, std=0.05)  # a net that changes things
    img = _scene(300, 450)
    keep = box_mask((0.3, 0.2, 0.9, 0.8), 300, 450)[None]
    base = upsample(torch.nn.functional.avg_pool2d(img[None], 30), 300, 450)[0]
    painted = paint(img[None] * keep[None], keep[None], base[None])[0]
    out = refine_frame(net, painted, base, keep, 15)
    assert out.shape == painted.shape
    k = keep.bool().expand_as(out)
    assert torch.equal(out[k], painted[k])
    assert not torch.equal(out[~k], painted[~k])


def test_coarseness_grows_with_the_frame_per_thumbnail_pixel():
    assert coarseness_of(256, 256) == 0.0
    assert coarseness_of(256, 1) == 1.0
    assert coarseness_of(768, 12) < coarseness_of(768, 3)


def test_training_sample_is_what_inspect_hands_the_network():
    rng = np.random.default_rng(0)
    img = _scene(192, 192)
    painted, base, keep, c = make_sample(img, rng)
    assert painted.shape == base.shape == (3, 192, 192) and keep.shape == (1, 192, 192)
    area = float(keep.mean())
    assert 0.25 - 0.02 <= area < 1.0
    k = keep.bool().expand_as(painted)
    assert float((painted[k] - img[k]).abs().max()) < 0.25  # the kept part: the photo after JPEG
    assert 0.0 <= c <= 1.0
    assert float(cut_mse(img[None], img[None], keep[None])) == 0.0


def test_a_few_training_steps_lower_the_cut_away_loss():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    img = _scene(64, 64)
    painted, base, keep, c = make_sample(img, rng)
    net = RefineNet(8)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    args = (painted[None], base[None], keep[None], torch.tensor([c]))
    first = cut_mse(net(*args), img[None], keep[None]).item()
    for _ in range(30):
        loss = cut_mse(net(*args), img[None], keep[None])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert cut_mse(net(*args), img[None], keep[None]).item() < 0.8 * first


def test_shipped_weights_load_and_a_missing_file_gives_none(tmp_path):
    assert load_refine(str(tmp_path / "absent.safetensors")) is None
    net = load_refine()
    if net is not None:  # shipped with the package
        assert isinstance(net, RefineNet) and not net.training
    assert RefineConfig().size == 192


def test_border_continuation_keeps_the_kept_part_and_continues_stripes():
    """Telea's continuation, blended near the crop's edge: the kept pixels stay, nothing
    changes beyond the band, and stripes that run across the edge come back closer to
    the truth than a flat reconstruction (OpenCV's Telea as the reference)."""
    import cv2

    from clrnet.recovery.border import BAND, REACH, WEIGHT, continue_border
    from clrnet.recovery.paint import distance

    h, w = 96, 128
    xx = torch.arange(w).float()[None].expand(h, w)
    truth = (0.5 + 0.3 * torch.sin(xx / 3)).expand(3, h, w).contiguous()  # vertical stripes
    keep = box_mask((0.0, 0.0, 1.0, 0.5), h, w)[None]  # the bottom half cut away
    flat = truth * keep + 0.5 * (1 - keep)
    d = distance(keep[None])[0]
    cell = 16.0
    out = continue_border(flat, keep, d, cell)
    assert torch.equal(out * keep, flat * keep)
    far = d[0] >= BAND * REACH * cell
    assert torch.equal(out[:, far], flat[:, far])
    near = (d[0] > 0) & (d[0] <= 3)
    err = lambda x: float((x - truth)[:, near].abs().mean())  # noqa: E731
    assert err(out) < 0.7 * err(flat)
    # the blend's continuation is OpenCV's Telea
    img = (flat.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    band = ((keep[0] < 0.5) & (d[0] < BAND * REACH * cell)).numpy()
    img[band] = 0
    ref = torch.from_numpy(cv2.inpaint(img, band.astype(np.uint8), 3, cv2.INPAINT_TELEA)).permute(2, 0, 1) / 255
    wgt = WEIGHT * torch.exp(-d / (REACH * cell))
    assert torch.allclose(out[:, band], (flat * (1 - wgt) + ref * wgt)[:, band], atol=1e-5)
    assert torch.equal(continue_border(flat, torch.ones(1, h, w), d, cell), flat)  # nothing cut


def test_distance_equals_scipys_exact_euclidean_transform():
    from scipy.ndimage import distance_transform_edt

    from clrnet.recovery.paint import distance

    g = torch.Generator().manual_seed(4)
    keep = (torch.rand(2, 1, 70, 90, generator=g) > 0.97).float()
    keep[0, 0, 10:30, 20:60] = 1
    got = distance(keep)
    for k, d in zip(keep, got):
        ref = distance_transform_edt(k[0].numpy() < 0.5)
        np.testing.assert_allclose(d[0].numpy(), ref, atol=1e-3)
    assert torch.isinf(distance(torch.zeros(1, 1, 8, 8))).all()  # nothing kept: nothing near


def test_wide_border_continuation_runs_at_half_resolution_without_a_dark_rim():
    """A 5-byte thumbnail's wide blend continues at half resolution: the kept part stays,
    the fill next to a flat kept colour is that colour (the hole's own pixels do not bleed
    into its rim when averaging down), stripes run on across the edge."""
    import cv2

    from clrnet.recovery.border import HALF_FROM, REACH, _telea_half, continue_border
    from clrnet.recovery.paint import distance

    h, w = 96, 128
    img = np.full((h, w, 3), 25, np.uint8)
    img[: h // 2] = 153  # kept, flat
    mask = np.zeros((h, w), np.uint8)
    mask[h // 2:h // 2 + 30] = 1  # the band to fill; darker reconstruction beyond it
    img[mask > 0] = 0  # whatever the hole holds must not matter
    half = _telea_half(img, mask)
    full = cv2.inpaint(img, mask, 3, cv2.INPAINT_TELEA)
    rim = slice(h // 2, h // 2 + 4)
    assert half[rim].min() >= 140 and abs(float(half[rim].mean()) - float(full[rim].mean())) < 8
    assert np.array_equal(half[: h // 2 - 2], img[: h // 2 - 2])  # away from the band: the known pixels

    cell = HALF_FROM / REACH + 1  # reach just above HALF_FROM
    keep = box_mask((0.0, 0.0, 1.0, 0.5), h, w)[None]
    d = distance(keep[None])[0]
    xx = torch.arange(w).float()[None].expand(h, w)
    truth = (0.5 + 0.3 * torch.sin(xx / 5)).expand(3, h, w).contiguous()  # vertical stripes
    flat = truth * keep + 0.5 * (1 - keep)
    out = continue_border(flat, keep, d, cell)
    assert torch.equal(out * keep, flat * keep)
    near = (d[0] > 0) & (d[0] <= 4)
    err = lambda x: float((x - truth)[:, near].abs().mean())  # noqa: E731
    assert err(out) < 0.7 * err(flat)


def test_without_a_payload_the_fill_is_telea_and_harmonic_averaged():
    """No thumbnail: the kept pixels stay, and the cut-away part is the mean of the harmonic
    extension and OpenCV's Telea fill (checked against cv2.inpaint itself at full size)."""
    import cv2

    from clrnet.recovery.paint import TELEA_RADIUS, harmonic_extension, telea

    g = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 3, 64, 80, generator=g)
    keep = box_mask((8, 4, 60, 50), 64, 80)[None, None]
    arr = (frame[0] * keep[0]).permute(1, 2, 0).mul(255).round().numpy().astype(np.uint8)
    ref = cv2.inpaint(arr, (keep[0, 0].numpy() < 0.5).astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)
    t = telea(frame * keep, keep)
    assert torch.equal((t[0] * 255).round().to(torch.uint8), torch.from_numpy(ref).permute(2, 0, 1))
    out = paint(frame * keep, keep, None)
    assert torch.equal(out * keep, frame * keep)
    expect = (harmonic_extension(frame * keep, keep) + t) / 2
    assert torch.allclose((out * (1 - keep)), expect * (1 - keep), atol=1e-6)


def test_telea_on_a_large_frame_fills_at_a_reduced_size_without_a_dark_rim():
    """Past TELEA_SIDE the fill is computed smaller (only known pixels averaged) and upsampled:
    a flat kept part cut on its right goes on flat, with no rim darkened by the hole's zeros."""
    from clrnet.recovery.paint import TELEA_SIDE, telea

    w = 3 * TELEA_SIDE
    frame = torch.full((1, 3, 200, w), 0.4)
    frame[:, 1] = 0.7
    keep = torch.zeros(1, 1, 200, w)
    keep[..., : 2 * TELEA_SIDE - 3] = 1  # an edge off the reduced grid
    t = telea(frame * keep, keep)
    assert torch.equal(t * keep, frame * keep)
    # next to the cut (OpenCV's Telea itself drifts by a level per few pixels deep into a flat hole)
    rim = slice(2 * TELEA_SIDE - 3, 2 * TELEA_SIDE + 12)
    assert float((t - frame)[..., rim].abs().max()) <= 2.5 / 255
