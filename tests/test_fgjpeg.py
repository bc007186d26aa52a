"""FG-JPEG's QF predictor: the SRM and Bayar layers, the network's shapes, its real-JPEG data,
resumable training and the accuracy table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clrnet.paper.fgjpeg.data import QFConfig, encode, make_sample
from clrnet.paper.fgjpeg.layers import BayarConv, SRMConv, srm_kernels
from clrnet.paper.fgjpeg.predictor import QFS, QFPredictor, predict_qf, tiles


def test_srm_kernels_are_high_pass_and_fixed() -> None:
    """Each kernel sums to zero: a flat or a linear ramp gives no residual inside the frame;
    the layer has no parameters to learn."""
    k = srm_kernels()
    assert k.shape == (3, 5, 5) and torch.allclose(k.sum((1, 2)), torch.zeros(3), atol=1e-6)
    layer = SRMConv(3)
    assert not list(layer.parameters())
    ramp = torch.linspace(0, 50, 40).expand(1, 3, 40, 40).clone() + 7
    out = layer(ramp)
    assert out.shape == (1, 9, 40, 40)
    assert float(out[..., 2:-2, 2:-2].abs().max()) < 1e-4
    noise = layer(torch.randn(1, 3, 40, 40))
    assert float(noise.abs().mean()) > 0.1


def test_bayar_constraint_holds_after_an_optimiser_step() -> None:
    """Centre -1, the other taps sum to 1 (a kernel sums to zero), before and after a step."""
    torch.manual_seed(0)
    layer = BayarConv(3, 4)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    for _ in range(2):
        k = layer.kernel()
        assert torch.allclose(k[..., 2, 2], -torch.ones(4, 3))
        assert torch.allclose(k.sum((2, 3)), torch.zeros(4, 3), atol=1e-5)
        loss = layer(torch.randn(2, 3, 16, 16)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float((layer(torch.full((1, 3, 16, 16), 0.3))[..., 2:-2, 2:-2]).abs().max()) < 1e-5


@pytest.mark.parametrize("size", [(64, 64), (37, 91), (130, 65)])
def test_predictor_shapes_at_odd_sizes(size) -> None:
    net = QFPredictor(blocks=1).eval()
    assert net(torch.rand(2, 3, *size)).shape == (2, len(QFS))
    t = tiles(torch.rand(3, *size), most=16)
    assert t.shape[1:] == (3, 64, 64) and 1 <= len(t) <= 16
    q, p = predict_qf(net, torch.rand(3, *size))
    assert q in QFS and torch.isclose(p.sum(), torch.tensor(1.0))


def test_samples_are_real_jpegs_of_their_class_and_seeded() -> None:
    """A sample is Pillow's JPEG of a region at QFS[label]: lower qualities change the region
    more; the same generator state gives the same sample."""
    from skimage import data

    photo = data.astronaut()
    errs = []
    for q in QFS:
        x = encode(photo, q)
        errs.append(float(np.abs(x.astype(int) - photo.astype(int)).mean()))
    assert errs == sorted(errs, reverse=True) and errs[-1] < 2.0 and errs[0] > 3 * errs[-1]
    a = make_sample(photo, np.random.default_rng(3), 2, 64)
    b = make_sample(photo, np.random.default_rng(3), 2, 64)
    assert a.shape == (64, 64, 3) and np.array_equal(a, b)
    assert make_sample(photo[:30, :40], np.random.default_rng(0), 0, 64).shape == (64, 64, 3)


def _tree(root) -> None:
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    for split, folder in (("train", "bsds500"), ("train", "imagenet-samples"), ("val", "bsds500"),
                          ("test", "kodak24"), ("test", "set14")):
        d = root / split / folder
        d.mkdir(parents=True)
        for i, p in enumerate(photos):
            Image.fromarray(p).resize((160, 120)).save(d / f"{i}.png")


def test_training_resumes_exactly_and_the_table_reads_the_weights(tmp_path) -> None:
    """Four steps in one go equal 2 + 2 across a resume; the best weights load and fill the
    accuracy table (one row per folder and QF, and one over all)."""
    from clrnet.paper.fgjpeg.evaluation import nearest_class, predictor_rows
    from clrnet.paper.fgjpeg.training import train_predictor
    from clrnet.paper.fgjpeg.weights import load_predictor

    _tree(tmp_path / "data")
    cfg = QFConfig(blocks=1, batch_size=6, steps=4, val_every=2, val_photos=2, workers=0, checkpoint_every=1)
    train_predictor(cfg, tmp_path / "a", tmp_path / "data", progress=False)
    train_predictor(cfg, tmp_path / "b", tmp_path / "data", steps=2, progress=False)
    train_predictor(cfg, tmp_path / "b", tmp_path / "data", progress=False)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for k, v in a["net"].items():
        assert torch.equal(v, b["net"][k]), k
    net = load_predictor(tmp_path / "b" / "best.safetensors")
    rows = predictor_rows(tmp_path / "data", net, limit=2, progress=False)
    assert len(rows) == 2 * (len(QFS) + 1)
    assert all(0 <= r["predictor accuracy"] <= 1 for r in rows)
    assert nearest_class(None) == 100 and nearest_class(76) == 70 and nearest_class(83) == 90


def test_train_command_knows_the_predictor_config() -> None:
    from clrnet.cli.train import _qf_config

    cfg = _qf_config("qf-predictor")
    assert cfg is not None and cfg.blocks == 5 and cfg.tile == 64  # ResNet-32 on 64 px tiles
    assert _qf_config("passive") is None


def test_shipped_predictor_names_the_quality_of_real_jpegs() -> None:
    """The shipped weights on two photos it never saw (scikit-image's astronaut and coffee),
    Pillow JPEG at each class's quality: every one read right."""
    from skimage import data

    from clrnet.paper.fgjpeg.weights import load_predictor, shipped_predictor

    net = load_predictor(shipped_predictor())
    for photo in (data.astronaut(), data.coffee()):
        for q in QFS:
            x = torch.from_numpy(encode(photo, q).copy()).permute(2, 0, 1).float() / 255
            assert predict_qf(net, x)[0] == q, q
