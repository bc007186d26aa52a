"""Layered protections (issue 8): a protected crop protected again is still a crop."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import jpeg

from clrnet.pipeline import AlreadyProtectedError, inspect, protect

CLI = [sys.executable, "-m", "clrnet.cli"]


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((384, 256))


@pytest.mark.parametrize("upscale", [False, True])
def test_a_protected_crop_protected_again_is_reported_with_the_earlier_box(photo, upscale):
    first = protect(photo, "clrnet-v2")
    left, top, right, bottom = 60, 40, 330, 220  # about half the area
    crop = first.crop((left, top, right, bottom))
    if upscale:
        crop = crop.resize(photo.size, Image.Resampling.BICUBIC)
    found = inspect(jpeg(protect(crop, "clrnet-v2"), 90), "clrnet-v2")
    assert found.cropped and len(found.layers) == 2
    assert not found.layers[0]["cropped"] and found.layers[1]["cropped"]
    w, h = photo.size
    err = np.abs(np.subtract(found.box, (left / w, top / h, right / w, bottom / h))) * [w, h, w, h]
    assert err.max() <= 3


def test_protected_twice_without_a_crop_is_not_a_crop(photo):
    twice = protect(protect(photo, "clrnet-v2"), "clrnet-v2")
    found = inspect(jpeg(twice, 90), "clrnet-v2")
    assert not found.cropped and len(found.layers) == 2 and found.to_dict()["protections"] == 2


def test_protected_once_reports_one_protection(photo):
    found = inspect(jpeg(protect(photo, "clrnet-v2"), 90), "clrnet-v2")
    assert not found.cropped and found.layers == [{"cropped": False, "score": found.layers[0]["score"],
                                                   "box": [0.0, 0.0, 1.0, 1.0]}]


@pytest.mark.parametrize("model", ["clrnet-v2", "clrnet-small-128"])
def test_protect_refuses_an_already_protected_photo(photo, model):
    once = protect(photo, model)
    with pytest.raises(AlreadyProtectedError, match="already carries a protection"):
        protect(once, model, refuse_protected=True)
    protect(photo, model, refuse_protected=True)  # a never-protected photo is fine


def test_cli_refuses_to_protect_again_unless_forced(tmp_path, photo):
    src = tmp_path / "a.png"
    photo.save(src)
    r = subprocess.run(CLI + ["protect", str(src), "-o", str(tmp_path / "p.png")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    again = subprocess.run(CLI + ["protect", str(tmp_path / "p.png"), "-o", str(tmp_path / "q.png")],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert f"{tmp_path / 'p.png'}: already carries a protection" in again.stderr
    assert not (tmp_path / "q.png").exists()
    forced = subprocess.run(CLI + ["protect", str(tmp_path / "p.png"), "-o", str(tmp_path / "q.png"), "--force"],
                            capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr
