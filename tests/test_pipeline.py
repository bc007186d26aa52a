"""The Python API on photos of any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import clrnet
from clrnet.api import estimate_original_size
from clrnet.core.geometry import box_iou
from clrnet.paper.model import CLRNet


@pytest.fixture(scope="module")
def tiny(tiny_model_path) -> CLRNet:
    return CLRNet.load(tiny_model_path)


def test_protect_keeps_size_and_is_close(tiny, photo):
    out = clrnet.protect(photo, tiny)
    assert out.size == photo.size and out.mode == "RGB"
    diff = np.abs(np.asarray(out, np.int16) - np.asarray(photo, np.int16))
    assert diff.max() > 0  # something was embedded
    assert diff.mean() < 20


def test_protect_at_native_size_equals_generator(tiny):
    x = torch.rand(3, 32, 32)
    img = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    out = clrnet.protect(img, tiny)
    x8 = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        expect = (tiny.protect(x8[None])[0].clamp(0, 1) * 255).round()
    got = torch.from_numpy(np.asarray(out).copy()).permute(2, 0, 1).float()
    assert torch.equal(got, expect)


def test_inspect_outputs(tiny, photo):
    found = clrnet.inspect(photo, tiny, original_size=(500, 400))
    assert found.recovered.size == (500, 400)
    assert found.mask.size == (500, 400)
    assert found.overlay().size == (500, 400)
    assert found.recovered_native.size == (32, 32)
    x0, y0, x1, y1 = found.box
    assert 0 <= x0 <= x1 <= 1 and 0 <= y0 <= y1 <= 1
    d = found.to_dict()
    assert d["cropped"] == found.cropped and d["original_size"] == [500, 400]
    if not found.cropped:
        assert found.box == (0.0, 0.0, 1.0, 1.0)


def test_estimate_original_size():
    assert estimate_original_size((300, 200), (0.25, 0.0, 0.75, 0.5)) == (600, 400)
    assert estimate_original_size((300, 200), (0.0, 0.0, 1.0, 1.0)) == (300, 200)


def test_shipped_model_loads_and_rejects_unprotected_photos(photo):
    """A photo that was never protected must come out 'not cropped'."""
    names = clrnet.available_models()
    if "clrnet-small-128" not in names:
        pytest.skip("no shipped model in this checkout")
    from skimage import data

    model = clrnet.load_model("clrnet-small-128")
    for arr in (data.astronaut(), data.coffee(), data.chelsea()):
        found = clrnet.inspect(Image.fromarray(arr), model)
        assert not found.cropped, f"false alarm, score {found.score:.3f}"
        assert found.protected is False


def test_shipped_model_finds_a_crop(photo):
    names = clrnet.available_models()
    if "clrnet-small-128" not in names:
        pytest.skip("no shipped model in this checkout")
    from clrnet.attacks import real

    model = clrnet.load_model("clrnet-small-128")
    prot = clrnet.protect(photo, model)
    box = (0.1, 0.2, 0.8, 0.9)
    found = clrnet.inspect(real.jpeg(real.crop(prot, box), 80), model)
    assert found.cropped and found.protected
    assert box_iou(found.box, box) > 0.8
    uncropped = clrnet.inspect(real.jpeg(prot, 80), model)
    assert uncropped.protected and not uncropped.cropped


@pytest.fixture(scope="module")
def tiny_matched(tiny_matched_model_path) -> CLRNet:
    return CLRNet.load(tiny_matched_model_path)


def test_matched_model_localises_a_crop_of_a_full_size_photo(tiny_matched, photo):
    from clrnet.attacks import real

    prot = clrnet.protect(photo, tiny_matched)
    box = (0.1, 0.2, 0.8, 0.9)
    found = clrnet.inspect(real.jpeg(real.crop(prot, box), 90), tiny_matched)
    assert found.protected is True and found.cropped
    assert box_iou(found.box, box) > 0.8
    assert found.to_dict()["protected"] is True


def test_matched_model_says_uncropped_and_unprotected(tiny_matched, photo):
    from clrnet.attacks import real

    prot = clrnet.protect(photo, tiny_matched)
    whole = clrnet.inspect(real.jpeg(prot, 90), tiny_matched)
    assert whole.protected is True and not whole.cropped
    never = clrnet.inspect(photo, tiny_matched)
    assert never.protected is False and not never.cropped
    assert never.box == (0.0, 0.0, 1.0, 1.0)
    assert never.score < 0.5


def test_the_default_model_is_protection_v2_in_python_and_on_the_command_line():
    """The README's status: v2 is what protect / inspect use when no model is named."""
    from typer.testing import CliRunner

    from clrnet.api import get_model
    from clrnet.cli.main import app
    from clrnet.models.designed import Protector

    m = get_model(None)
    assert isinstance(m, Protector) and m.name == "clrnet-v2"
    for command in ("protect", "inspect", "demo", "eval", "bench", "serve"):
        help_text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        assert "default: clrnet-v2" in help_text, command
