"""FG-JPEG's generator and controller, the other JPEG simulators (against references), the
attack layer's switch between them, and the compact ablation weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clrnet.paper.attacks.codec import jpeg_libjpeg_like, quant_tables
from clrnet.paper.attacks.functional import jpeg_differentiable, jpeg_pillow
from clrnet.paper.attacks.jpeg import SIMULATORS, jpeg_mask, jpeg_mixup, simulate
from clrnet.paper.fgjpeg.generator import Controller, Generator


def _photo(h: int = 96, w: int = 128) -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(data.astronaut()[100:100 + h, 150:150 + w].copy()).permute(2, 0, 1)[None].float() / 255


def test_controller_conditioning_changes_with_quality() -> None:
    """Zero-initialised heads start as the identity modulation; once trained (here: randomised)
    the scale and shift differ between QF 10 and QF 90, and so does the generator's output."""
    c = Controller([8, 16, 32])
    for a, b in c(torch.tensor([10.0, 90.0])):
        assert torch.equal(a, torch.ones_like(a)) and torch.equal(b, torch.zeros_like(b))
    torch.manual_seed(0)
    for h in c.heads:
        torch.nn.init.normal_(h.weight, std=0.5)
    mods = c(torch.tensor([10.0, 90.0]))
    assert [a.shape[1] for a, _ in mods] == [8, 16, 32]
    assert all(float((a[0] - a[1]).abs().max().detach()) > 1e-3 for a, _ in mods)
    g = Generator((8, 8, 16, 16), base="input").eval()
    torch.manual_seed(1)
    for p in g.parameters():  # a generator whose output layer and controller are no longer zero
        torch.nn.init.normal_(p, std=0.1) if p.dim() > 1 else None
    x = _photo(32, 32)
    assert float((g(x, 10) - g(x, 90)).abs().mean()) > 1e-4


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (64, 130)])
@pytest.mark.parametrize("base", ["input", "diff", "codec"])
def test_generator_keeps_any_size_and_starts_as_its_base(size, base) -> None:
    x = torch.rand(2, 3, *size)
    g = Generator((8, 8, 16, 16), base=base).eval()
    out = g(x, torch.tensor([30.0, 70.0]))
    assert out.shape == x.shape
    expected = {"input": x, "diff": jpeg_differentiable(x, torch.tensor([30.0, 70.0])),
                "codec": jpeg_libjpeg_like(x, torch.tensor([30.0, 70.0]))}[base]
    assert torch.allclose(out, expected, atol=1e-6)  # zero-initialised last layer


def test_libjpeg_like_codec_follows_pillow_closer_than_kornia() -> None:
    """Against Pillow's real JPEG (4:2:0) of a photo: at least 44 dB at
    every quality, and closer than kornia's Diff-JPEG; libjpeg's tables, including the clamps."""
    from clrnet.core.metrics import psnr

    x = _photo(96, 136)
    for q in (10, 30, 50, 70, 90):
        real = jpeg_pillow(x, q)[0]
        ours = psnr(jpeg_libjpeg_like(x, q)[0], real)
        kornia = psnr(torch.round(jpeg_differentiable(x, float(q)).clamp(0, 1) * 255)[0] / 255, real)
        assert ours > 44 and ours > kornia + 1, (q, ours, kornia)
    luma, chroma = quant_tables(torch.tensor([1.0, 50.0, 100.0]))
    assert luma[0, 0, 0] == 255 and luma[1, 0, 0] == 16 and luma[2].max() == 1 and chroma[1, 7, 7] == 99


def test_jpeg_mask_matches_a_blockwise_dct_reference() -> None:
    """Against scipy's orthonormal DCT per 8 x 8 block of YCbCr: 5 x 5 luma and 3 x 3 chroma
    coefficients kept; a size that is not a multiple of 8 is padded and cut back."""
    from scipy.fft import dctn, idctn

    x = _photo(40, 48)
    ycc_m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    ycc = np.einsum("ij,jhw->ihw", ycc_m, x[0].double().numpy())
    out = np.zeros_like(ycc)
    for c, keep in ((0, 5), (1, 3), (2, 3)):
        for by in range(0, 40, 8):
            for bx in range(0, 48, 8):
                coef = dctn(ycc[c, by:by + 8, bx:bx + 8], norm="ortho")
                coef[keep:, :] = 0
                coef[:, keep:] = 0
                out[c, by:by + 8, bx:bx + 8] = idctn(coef, norm="ortho")
    ref = np.einsum("ij,jhw->ihw", np.linalg.inv(ycc_m), out)
    assert np.abs(jpeg_mask(x)[0].double().numpy() - ref).max() < 1e-4
    assert jpeg_mask(torch.rand(1, 3, 21, 30)).shape == (1, 3, 21, 30)


def test_mixup_lies_between_real_jpeg_and_diff_jpeg() -> None:
    x = _photo()
    real, diff = jpeg_pillow(x, 50), jpeg_differentiable(x, 50.0)
    out = jpeg_mixup(x, 50, torch.Generator().manual_seed(0))
    lo, hi = torch.minimum(real, diff), torch.maximum(real, diff)
    assert bool(((out >= lo - 1e-6) & (out <= hi + 1e-6)).all())


def test_every_simulator_carries_a_gradient_to_its_input() -> None:
    from clrnet.paper.fgjpeg.weights import load_generator, shipped

    fg = load_generator(shipped("fg-jpeg"))
    for name in SIMULATORS:
        x = _photo(48, 40).requires_grad_()
        out = simulate(name, x, [40], fg=fg, generator=torch.Generator().manual_seed(0))
        assert out.shape == x.shape, name
        out.sum().backward()
        assert float(x.grad.abs().sum()) > 0, name
    assert not any(p.requires_grad for p in fg.parameters())
    with pytest.raises(ValueError, match="unknown JPEG simulator"):
        simulate("webp", _photo(), 50)


def test_attack_layer_switches_its_jpeg_simulator() -> None:
    """``attack.jpeg`` picks what the jpeg attacks run: the real JPEG (gradient straight
    through, as before), or a simulator whose own output and gradient are used."""
    from clrnet.paper.attacks.functional import quantize
    from clrnet.paper.attacks.layer import AttackDraw, AttackLayer
    from clrnet.paper.config import AttackConfig

    x = torch.rand(1, 3, 64, 64)
    box = (0.0, 0.0, 1.0, 1.0)
    draw = [AttackDraw("jpeg", {"quality": 30.0})]
    outs = {}
    for name in SIMULATORS:
        layer = AttackLayer(AttackConfig(jpeg=name), 64)
        assert (layer.fg is not None) == (name == "fg")
        assert not list(layer.parameters())  # FG-JPEG is not trained with the model
        xi = x.clone().requires_grad_()
        outs[name] = layer(xi, [box], draw, torch.Generator().manual_seed(0))
        outs[name].sum().backward()
        assert float(xi.grad.abs().sum()) > 0
    assert torch.equal(outs["real"], quantize(jpeg_pillow(x, 30)))
    assert torch.equal(outs["mask"], quantize(jpeg_mask(x)))
    assert all(not torch.equal(outs["real"], outs[n]) for n in ("diff", "mask", "fg"))
    # other attacks are untouched by the switch
    blur = [AttackDraw("gaussian_blur", {"sigma": 1.0})]
    assert torch.equal(AttackLayer(AttackConfig(jpeg="mask"), 64)(x, [box], blur),
                       AttackLayer(AttackConfig(), 64)(x, [box], blur))


def test_config_overrides_and_the_paper_config_uses_fg_jpeg() -> None:
    from clrnet.paper.config import load_config

    assert load_config("small", ["attack.jpeg=mixup", "train.steps=7"]).attack.jpeg == "mixup"
    assert load_config("small", ["train.steps=7"]).train.steps == 7
    assert load_config("paper").attack.jpeg == "fg"
    with pytest.raises(ValueError):
        load_config("small", ["attack.jpeg"])
    with pytest.raises(ValueError):
        load_config("small", ["attack.jpeg=webp"])


def test_compact_ablation_weights_round_trip(tmp_path) -> None:
    """Parameters in float16, the fixed patterns rebuilt from the config: the model read back
    protects like the one saved, to float16 precision."""
    from clrnet.paper.config import load_config
    from clrnet.paper.fgjpeg.ablation import load_compact, save_compact
    from clrnet.paper.model import CLRNet

    torch.manual_seed(0)
    model = CLRNet(load_config("small")).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_compact(model, tmp_path / "m.safetensors", {"simulator": "test"})
    back = load_compact(tmp_path / "m.safetensors")
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert float((model.protect(x) - back.protect(x)).abs().max()) < 2e-3
    assert (tmp_path / "m.safetensors").stat().st_size < 3_000_000


def test_generator_training_resumes_exactly_and_improves_on_nothing_it_was_not_shown(tmp_path) -> None:
    """Three steps in one go equal 1 + 2 across a resume (the predictor's loss included); the
    best weights load as a frozen generator of the config's shape."""
    from test_fgjpeg import _tree

    from clrnet.paper.fgjpeg.generator_training import FGConfig, soft_target, train_generator
    from clrnet.paper.fgjpeg.weights import load_generator

    _tree(tmp_path / "data")
    cfg = FGConfig(widths=(8, 8, 8, 8), batch_size=2, steps=3, val_every=3, val_photos=2, workers=0,
                   checkpoint_every=1, crop=64)
    train_generator(cfg, tmp_path / "a", tmp_path / "data", progress=False)
    train_generator(cfg, tmp_path / "b", tmp_path / "data", steps=1, progress=False)
    result = train_generator(cfg, tmp_path / "b", tmp_path / "data", progress=False)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 3
    for k, v in a["net"].items():
        assert torch.equal(v, b["net"][k]), k
    g = load_generator(tmp_path / "b" / "best.safetensors")
    assert g.base == "codec" and not any(p.requires_grad for p in g.parameters())
    assert result["val_psnr_diff_jpeg"] > 25
    t = soft_target(torch.tensor([10.0, 40.0, 95.0, 100.0]))
    assert torch.allclose(t.sum(1), torch.ones(4))
    assert t[0, 0] == 1 and t[1, 1] == 0.5 and t[1, 2] == 0.5 and t[2, 4] == 0.5 and t[3, 5] == 1


def test_train_command_knows_the_generator_configs() -> None:
    from clrnet.cli.train import _fg_config

    assert _fg_config("fg-jpeg").base == "codec"
    assert _fg_config("fg-jpeg-plain").base == "input"
    assert _fg_config("qf-predictor") is None


def test_eval_paper_jpeg_prints_both_tables_from_the_shipped_weights(tmp_path) -> None:
    """`clrnet eval paper-jpeg --quick` on a small tree: the predictor's table, the simulators'
    fidelity (every simulator, every quality) and Table IV's rows with the paper's beside them,
    as Markdown, CSV and a figure."""
    from test_cli import run
    from test_fgjpeg import _tree

    from clrnet.paper.fgjpeg.ablation import SETS
    from clrnet.paper.fgjpeg.evaluation import FIDELITY_QS, LABELS

    _tree(tmp_path / "data")
    r = run("eval", "paper-jpeg", "--data", tmp_path / "data", "--quick", "--out", tmp_path / "ev")
    assert r.exit_code == 0, r.output
    md = next((tmp_path / "ev").glob("*.md")).read_text()
    for needle in ("QF predictor", "Fig. 13", "Table IV", "27.02", *(f"PSNR at QF {q}" for q in FIDELITY_QS)):
        assert needle in md, needle
    for label in LABELS.values():
        assert label in md, label
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    n_ablation = sum(len(sims) for _, sims in SETS.values())
    assert sum(" jpeg70 " in ln for ln in rows) == 2 * n_ablation  # two folders
    assert list((tmp_path / "ev").glob("*.png")) and list((tmp_path / "ev").glob("*.csv"))


def test_shipped_fg_jpeg_is_closer_to_real_jpeg_than_diff_jpeg_at_every_quality() -> None:
    """The floor's claim on photos it never saw (scikit-image's astronaut and coffee): the shipped
    FG-JPEG's 8-bit output is nearer Pillow's JPEG than kornia's Diff-JPEG at every quality of
    the table, and the predictor reads the quality of its outputs at the classes' qualities."""
    from skimage import data

    from clrnet.core.metrics import psnr
    from clrnet.paper.fgjpeg.evaluation import FIDELITY_QS
    from clrnet.paper.fgjpeg.predictor import QFS, predict_qf
    from clrnet.paper.fgjpeg.weights import load_generator, load_predictor, shipped, shipped_predictor

    fg, net = load_generator(shipped("fg-jpeg")), load_predictor(shipped_predictor())
    right = total = 0
    for photo in (data.astronaut(), data.coffee()):
        x = torch.from_numpy(photo[:256, :256].copy()).permute(2, 0, 1)[None].float() / 255
        for q in sorted(set(FIDELITY_QS) | set(QFS)):
            real = jpeg_pillow(x, q)[0]
            with torch.no_grad():
                ours = torch.round(fg(x, float(q)).clamp(0, 1)[0] * 255) / 255
            kornia = torch.round(jpeg_differentiable(x, float(q)).clamp(0, 1)[0] * 255) / 255
            if q in FIDELITY_QS:
                assert psnr(ours, real) > psnr(kornia, real), q
            if q in QFS:
                right += predict_qf(net, ours)[0] == q
                total += 1
    assert right >= 0.9 * total, (right, total)
