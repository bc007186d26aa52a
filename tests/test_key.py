"""Keyed protection (issue 8): the key selects the patterns; without it nothing is found."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from clrnet.data import pil_to_tensor
from clrnet.geometry import FULL_FRAME
from clrnet.pipeline import get_model, with_key
from clrnet.protection.key import KeyFileError, ProtectionKey, generate_key, key_json, load_key

CLI = [sys.executable, "-m", "clrnet.cli"]


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    from skimage import data

    out = []
    for k, img in enumerate((data.astronaut(), data.chelsea(), data.coffee())):
        out.append(pil_to_tensor(Image.fromarray(img).resize((384, 256) if k != 1 else (300, 300))))
    return out


def _boxes(x: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (left, top, right, bottom): the whole photo and two crops."""
    _, h, w = x.shape
    return [(0, 0, w, h), (w // 6, h // 8, w * 5 // 6, h * 7 // 8), (w // 3, 0, w, h * 3 // 4)]


def _crops(x: torch.Tensor) -> list[torch.Tensor]:
    return [x[:, t:b, le:r] for le, t, r, b in _boxes(x)]


def test_key_derives_distinct_stable_seeds():
    k = ProtectionKey(bytes(range(32)))
    assert k.seed("ruler") == ProtectionKey(bytes(range(32))).seed("ruler")
    assert len({k.seed("ruler"), k.seed("layout"), k.seed("whiten")}) == 3
    assert k.seed("ruler") != ProtectionKey(bytes(range(1, 33))).seed("ruler")
    assert generate_key() != generate_key()
    with pytest.raises(KeyFileError):
        ProtectionKey(b"short")


def test_with_the_key_the_readings_equal_the_public_ones(photos):
    """Keyed protection reads as well as the public one: the same verdicts, boxes to
    a few pixels of the truth, the payload decoded."""
    public = get_model("clrnet-v2")
    keyed = with_key(public, generate_key())
    for x in photos:
        _, h, w = x.shape
        truth = [(le / w, t / h, r / w, b / h) for le, t, r, b in _boxes(x)]
        for k, (rp_part, rk_part) in enumerate(zip(_crops(public.protect(x)), _crops(keyed.protect(x)))):
            for r in (public.inspect(rp_part), keyed.inspect(rk_part)):
                assert r.protected and r.cropped == (k > 0)
                err = np.abs(np.subtract(r.box if k else truth[0], truth[k])) * [w, h, w, h]
                assert err.max() <= 3
                assert r.decoded is not None and r.decoded.message is not None


def test_without_the_right_key_no_protection_is_found(photos):
    """A keyed photo read publicly or with another key, and a public photo read with a
    key: "no protection found", the whole frame, never a box."""
    public = get_model("clrnet-v2")
    k1, k2 = generate_key(), generate_key()
    a, b = with_key(public, k1), with_key(public, k2)
    for x in photos[:2]:
        for prot, readers in ((a.protect(x), (public, b)), (public.protect(x), (a,))):
            for part in _crops(prot)[1:]:
                for reader in readers:
                    r = reader.inspect(part)
                    assert not r.protected and not r.cropped and r.box == FULL_FRAME


def test_a_key_needs_protection_v2():
    with pytest.raises(ValueError, match="protection v2"):
        with_key(get_model("clrnet-small-128"), generate_key())


def test_key_file_round_trip_and_bad_files(tmp_path):
    k = generate_key()
    path = tmp_path / "k.json"
    path.write_text(key_json(k))
    assert load_key(path) == k
    data = json.loads(path.read_text())
    for bad, why in [("{}", "not a clrnet key file"), ("not json", "not a usable"),
                     (json.dumps({**data, "secret": data["secret"][:10]}), "not a usable"),
                     (json.dumps({**data, "fingerprint": "0" * 16}), "does not match")]:
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(KeyFileError, match=why):
            load_key(tmp_path / "bad.json")
    with pytest.raises(KeyFileError, match="no such key file"):
        load_key(tmp_path / "missing.json")


def test_cli_keygen_protect_inspect_round_trip(tmp_path):
    key = tmp_path / "k.json"
    r = subprocess.run(CLI + ["keygen", "-o", str(key)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.stat(key).st_mode & 0o077 == 0  # the owner's only
    again = subprocess.run(CLI + ["keygen", "-o", str(key)], capture_output=True, text=True)
    assert again.returncode != 0 and "not overwritten" in again.stderr and "Traceback" not in again.stderr
    from skimage import data

    Image.fromarray(data.astronaut()).resize((384, 256)).save(tmp_path / "a.png")
    r = subprocess.run(CLI + ["protect", str(tmp_path / "a.png"), "-o", str(tmp_path / "p.png"), "--model",
                              "clrnet-v2", "--key", str(key)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    Image.open(tmp_path / "p.png").crop((40, 30, 300, 230)).save(tmp_path / "c.jpg", quality=90)
    r = subprocess.run(CLI + ["inspect", str(tmp_path / "c.jpg"), "-o", str(tmp_path / "r"), "--model", "clrnet-v2",
                              "--key", str(key)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rep["cropped"] and rep["protected"] and load_key(key).fingerprint in rep["model"]
    r = subprocess.run(CLI + ["inspect", str(tmp_path / "c.jpg"), "-o", str(tmp_path / "r9"), "--key", str(key),
                              "--model", "clrnet-small-128"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "protection v2" in r.stderr and "Traceback" not in r.stderr
