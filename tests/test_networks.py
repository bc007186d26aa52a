"""Localizer C, pre-processor P, discriminators D and the CLRNet bundle
(save / load as safetensors, shipped-model lookup)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from clrnet.core.geometry import FULL_FRAME, crop, zero_pad_resize
from clrnet.models.zoo import load_model
from clrnet.paper.config import DiscriminatorConfig, LocalizerConfig, ModelConfig, PreprocessorConfig
from clrnet.paper.model import CLRNet
from clrnet.paper.networks import Localizer, PatchDiscriminator, Preprocessor, lsgan_loss
from clrnet.paper.networks.localizer import coordinate_targets

SIZE = 32
LOC = LocalizerConfig(channels=[4, 4, 4], stem_stride=1, map_stride=2, mlp_hidden=[16, 8, 4])


def _tiny_config(spectral_norm: bool = False, preprocessor: bool = True) -> ModelConfig:
    return ModelConfig.model_validate({
        "name": "tiny-networks-test", "size": SIZE,
        "generator": {"levels": 2, "blocks_per_level": 1, "hidden": [8, 8], "coord_freqs": 1,
                      "bottom_dilations": [1], "spectral_norm": spectral_norm},
        "localizer": LOC.model_dump(),
        "preprocessor": {"enabled": preprocessor, "channels": 4},
    })


def _images(b: int = 2, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _randomize_generator(model: CLRNet, seed: int = 0) -> None:
    """Non-zero couplings (the last layers start at zero). Spectrally normalised
    weights keep their default init so their power-iteration state stays valid."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.generator.named_parameters():
            if "parametrizations" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


# --------------------------------------------------------------------------- localizer
def test_localizer_outputs_ordered_boxes_in_unit_square():
    torch.manual_seed(0)
    loc = Localizer(LOC, SIZE)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in loc.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)  # spread-out raw corners
        boxes, logits = loc(_images(4))
    assert boxes.shape == (4, 4) and logits.shape == (4,)
    assert boxes.min() >= 0 and boxes.max() <= 1
    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
    assert torch.isfinite(logits).all()
    # Different inputs, different answers.
    assert (boxes[0] - boxes[1]).abs().max() > 0


def test_localizer_sorts_swapped_corners():
    loc = Localizer(LOC, SIZE)
    last = loc.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([2.0, 1.0, -2.0, -1.0, 0.7]))  # x0 > x1, y0 > y1 raw
    boxes, logits = loc(_images(1))
    s = torch.sigmoid
    expected = torch.tensor([[s(torch.tensor(-2.0)), s(torch.tensor(-1.0)),
                              s(torch.tensor(2.0)), s(torch.tensor(1.0))]])
    torch.testing.assert_close(boxes, expected)
    torch.testing.assert_close(logits, torch.tensor([0.7]))


def test_localizer_is_differentiable():
    loc = Localizer(LOC, SIZE)
    x = _images(2).requires_grad_()
    boxes, logits = loc(x)
    (boxes.sum() + logits.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (1, 3, 32, 64), (1, 3, 64, 64)])
def test_localizer_rejects_wrong_input_size(shape):
    loc = Localizer(LOC, SIZE)
    with pytest.raises(ValueError):
        loc(torch.zeros(shape))


def test_localizer_rejects_indivisible_native_size():
    with pytest.raises(ValueError):
        Localizer(LOC, 36)  # needs a multiple of 4 * map_stride * stem_stride = 8
    Localizer(LocalizerConfig(channels=[4, 4, 4], stem_stride=2, map_stride=2,
                              mlp_hidden=[8, 4, 4]), 48)
    with pytest.raises(ValueError):
        Localizer(LocalizerConfig(channels=[4, 4, 4], stem_stride=2, map_stride=2), 40)


def test_localizer_with_stem_stride_two():
    cfg = LocalizerConfig(channels=[4, 4, 4], stem_stride=2, map_stride=2, mlp_hidden=[8, 4, 4])
    loc = Localizer(cfg, SIZE)
    boxes, logits = loc(_images(2))
    assert boxes.shape == (2, 4) and logits.shape == (2,)
    assert boxes.min() >= 0 and boxes.max() <= 1


def test_localizer_dense_map_shape():
    loc = Localizer(LOC, SIZE)
    boxes, logits, fmap = loc.forward_dense(_images(2))
    b2, l2 = loc(_images(2))
    assert torch.equal(boxes, b2) and torch.equal(logits, l2)
    side = SIZE // (LOC.map_stride * LOC.stem_stride)
    assert fmap.shape == (2, 2, side, side)


def test_coordinate_targets_map_received_cells_to_original_frame():
    h, w = 4, 8
    full = coordinate_targets(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), h, w)
    assert full.shape == (1, 2, h, w)
    torch.testing.assert_close(full[0, 0, 0], (torch.arange(w) + 0.5) / w)
    torch.testing.assert_close(full[0, 1, :, 0], (torch.arange(h) + 0.5) / h)
    box = torch.tensor([[0.25, 0.5, 0.75, 1.0]])
    t = coordinate_targets(box, h, w)
    # A received image showing the box: its cells cover only the box, linearly.
    torch.testing.assert_close(t[0, 0, 2], 0.25 + 0.5 * (torch.arange(w) + 0.5) / w)
    torch.testing.assert_close(t[0, 1, :, 5], 0.5 + 0.5 * (torch.arange(h) + 0.5) / h)
    assert t[0, 0].min() > 0.25 and t[0, 0].max() < 0.75
    assert torch.all(t[0, 0] == t[0, 0, :1]) and torch.all(t[0, 1] == t[0, 1, :, :1])


# --------------------------------------------------------------------------- preprocessor
def test_preprocessor_is_identity_at_init_and_returns_three_feature_maps():
    pre = Preprocessor(PreprocessorConfig(channels=4))
    x = _images(2)
    y, feats = pre(x)
    assert torch.equal(y, x)
    assert len(feats) == 3
    for f in feats:
        assert f.shape == (2, 4, SIZE, SIZE)
    # The features are not trivial and depend on the input.
    _, feats2 = pre(_images(2, seed=5))
    assert (feats[-1] - feats2[-1]).abs().max() > 1e-3


def test_preprocessor_after_training_is_not_identity_and_is_differentiable():
    pre = Preprocessor(PreprocessorConfig(channels=4))
    with torch.no_grad():
        pre.out.weight.normal_(0, 0.1)
    x = _images(1).requires_grad_()
    y, _ = pre(x)
    assert (y - x).abs().max() > 1e-3
    y.sum().backward()
    assert x.grad.abs().sum() > 0


# --------------------------------------------------------------------------- discriminator
@pytest.mark.parametrize("layers", [2, 3])
def test_patch_discriminator_output_shape(layers):
    d = PatchDiscriminator(DiscriminatorConfig(channels=4, layers=layers))
    out = d(_images(2))
    assert out.shape == (2, 1, SIZE // 2 ** layers, SIZE // 2 ** layers)
    out = d(torch.rand(1, 3, 32, 64))
    assert out.shape == (1, 1, 32 // 2 ** layers, 64 // 2 ** layers)


def test_lsgan_loss_values():
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert float(lsgan_loss(ones, True)) == 0.0
    assert float(lsgan_loss(ones, False)) == 1.0
    assert float(lsgan_loss(zeros, True)) == 1.0
    assert float(lsgan_loss(zeros, False)) == 0.0
    half = torch.full((1, 1, 2, 2), 0.5)
    assert float(lsgan_loss(half, True)) == pytest.approx(0.25)
    pred = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert float(lsgan_loss(pred, True)) == pytest.approx((1 + 0 + 1 + 4) / 4)
    assert float(lsgan_loss(pred, False)) == pytest.approx((0 + 1 + 4 + 9) / 4)


# --------------------------------------------------------------------------- CLRNet
def test_clrnet_parts_and_parameter_counts():
    m = CLRNet(_tiny_config())
    counts = m.num_parameters()
    assert set(counts) == {"generator", "localizer", "preprocessor"}
    assert counts["localizer"] == sum(p.numel() for p in m.localizer.parameters())
    assert all(v > 0 for v in counts.values())
    m2 = CLRNet(_tiny_config(preprocessor=False))
    assert m2.preprocessor is None and "preprocessor" not in m2.num_parameters()
    x = _images(1)
    y, feats = m2.preprocess(x)
    assert y is x and feats == []


def test_clrnet_protect_recover_round_trip_uncropped():
    torch.manual_seed(0)
    m = CLRNet(_tiny_config())
    _randomize_generator(m, seed=1)
    m.eval()
    x = _images(2)
    with torch.no_grad():
        prot = m.protect(x)
        assert (prot - x).abs().mean() > 1e-2
        rec = m.recover(prot, [FULL_FRAME, FULL_FRAME])
    torch.testing.assert_close(rec, x, atol=1e-4, rtol=0)


def test_clrnet_recover_places_the_crop_at_its_box():
    torch.manual_seed(0)
    m = CLRNet(_tiny_config())  # identity generator at init
    x = _images(1)
    box = (0.25, 0.25, 0.75, 1.0)
    with torch.no_grad():
        rec = m.recover(crop(x, box), [box])
    torch.testing.assert_close(rec, zero_pad_resize(crop(x, box), box, SIZE, SIZE),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_clrnet_save_load_round_trip(tmp_path, spectral_norm):
    torch.manual_seed(0)
    m = CLRNet(_tiny_config(spectral_norm=spectral_norm))
    _randomize_generator(m, seed=2)
    with torch.no_grad():
        m.localizer.mlp[-1].bias.normal_()
        m.preprocessor.out.weight.normal_(0, 0.1)
    m.eval()
    path = tmp_path / "tiny.safetensors"
    m.save(path, extra={"note": "unit test"})
    assert path.is_file() and not (tmp_path / "tiny.safetensors.tmp").exists()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["note"] == "unit test"
    assert ModelConfig.model_validate_json(meta["config"]) == m.cfg

    loaded = CLRNet.load(path)
    assert not loaded.training  # loaded for inference
    assert loaded.cfg == m.cfg
    x = _images(2, seed=3)
    with torch.no_grad():
        assert torch.equal(loaded.protect(x), m.protect(x))
        p_a, f_a = m.preprocess(x)
        p_b, f_b = loaded.preprocess(x)
        assert torch.equal(p_a, p_b) and all(torch.equal(a, b) for a, b in zip(f_a, f_b))
        b_a, l_a = m.localize(x)
        b_b, l_b = loaded.localize(x)
        assert torch.equal(b_a, b_b) and torch.equal(l_a, l_b)
        boxes = [(0.0, 0.0, 0.5, 0.5), FULL_FRAME]
        assert torch.equal(loaded.recover(x, boxes), m.recover(x, boxes))
    # load_model accepts a path too.
    via_path = load_model(path)
    with torch.no_grad():
        assert torch.equal(via_path.net.protect(x), m.protect(x))
    # A different model really gives different outputs (the comparison can fail).
    other = CLRNet(_tiny_config(spectral_norm=spectral_norm))
    _randomize_generator(other, seed=99)
    other.eval()
    with torch.no_grad():
        assert not torch.equal(other.protect(x), m.protect(x))


def test_clrnet_load_without_config_metadata_raises(tmp_path):
    m = CLRNet(_tiny_config())
    state = {k: v.contiguous() for k, v in m.state_dict().items()}
    bare = tmp_path / "bare.safetensors"
    save_file(state, str(bare))
    with pytest.raises(ValueError, match="config"):
        CLRNet.load(bare)
    other_meta = tmp_path / "other.safetensors"
    save_file(state, str(other_meta), metadata={"format": "pt"})
    with pytest.raises(ValueError):
        CLRNet.load(other_meta)


def test_load_model_unknown_name_raises():
    with pytest.raises(FileNotFoundError):
        load_model("no-such-model-xyz")
    with pytest.raises(FileNotFoundError):
        load_model("/nonexistent/dir/model.safetensors")


def test_matched_localizer_needs_the_ruler_code():
    from helpers import tiny_matched_config

    cfg = tiny_matched_config()
    cfg.generator.position_code = "fourier"
    with pytest.raises(ValueError, match="ruler"):
        CLRNet(cfg)


def test_ruler_band_must_fit_the_native_size():
    from helpers import tiny_matched_config

    cfg = tiny_matched_config()
    cfg.generator.position_code_band = (8, 31)  # 31 cycles on 64 px: at the Nyquist limit
    with pytest.raises(ValueError, match="band"):
        CLRNet(cfg)


def test_matched_model_has_no_localizer_weights(tmp_path):
    from helpers import tiny_matched_config

    model = CLRNet(tiny_matched_config())
    assert model.num_parameters()["localizer"] == 0
    model.save(tmp_path / "m.safetensors")
    again = CLRNet.load(tmp_path / "m.safetensors")
    assert torch.equal(again.generator.position_code(), model.generator.position_code())
