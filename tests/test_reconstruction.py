"""The reconstruction of the cut-away part: painting and the learned refine network."""

from __future__ import annotations

import numpy as np
import torch

from clrnet.geometry import box_mask
from clrnet.reconstruction.paint import paint, upsample
from clrnet.reconstruction.refine import RefineNet, coarseness_of, load_refine, refine_frame
from clrnet.reconstruction.train_refine import RefineConfig, cut_mse, make_sample


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
