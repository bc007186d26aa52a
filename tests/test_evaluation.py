"""The evaluation protocol and the demo, run end to end with a tiny model."""

from __future__ import annotations

import csv
import io
import math

import pytest
from PIL import Image

from clrnet.evaluation import REAL_ATTACKS, evaluate, format_summary, summarize, write_rows
from clrnet.model import CLRNet

from helpers import make_photo_folder


def test_real_attacks_write_real_formats(photo):
    jpeg70 = REAL_ATTACKS["jpeg70"](photo, 0)
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=70)
    assert jpeg70.tobytes() == Image.open(buf).convert("RGB").tobytes()
    w, h = photo.size
    assert REAL_ATTACKS["scale150"](photo, 0).size == (round(w * 1.5), round(h * 1.5))
    assert REAL_ATTACKS["scale75"](photo, 0).size == (round(w * 0.75), round(h * 0.75))
    assert REAL_ATTACKS["none"](photo, 0).tobytes() == photo.convert("RGB").tobytes()


def test_evaluate_rows_and_summary(tmp_path, tiny_model_path):
    folder = make_photo_folder(tmp_path / "photos", 2)
    model = CLRNet.load(tiny_model_path)
    rows, per = evaluate(model, folder, ["jpeg80", "none"], crops_per_image=1, progress=False)
    assert len(rows) == 2 * 2 * 2  # photos x attacks x (cropped + uncropped)
    assert sum(r.cropped for r in rows) == len(rows) // 2
    for r in rows:
        if r.cropped:
            assert 0.25 - 1e-6 <= r.kept_area <= 1.0
            assert not math.isnan(r.psnr_cut_inpaint) or r.kept_area == 1.0
        else:
            assert r.f1_whole_frame == 1.0
    again, _ = evaluate(model, folder, ["jpeg80", "none"], crops_per_image=1, progress=False)
    assert [r.f1 for r in again] == [r.f1 for r in rows]  # seeded: same numbers
    summary = summarize(rows, per)
    assert 0 <= summary["detection accuracy"][0] <= 1
    assert "mask F1, trivial 'whole frame'" in format_summary(summary, "t")
    write_rows(rows, tmp_path / "out" / "rows.csv")
    assert len(list(csv.DictReader((tmp_path / "out" / "rows.csv").open()))) == len(rows)


def test_inpainting_baseline_beats_zero_fill(photo):
    import torch

    from clrnet.data import pil_to_tensor
    from clrnet.evaluation import inpaint_biharmonic
    from clrnet.geometry import box_mask, resize
    from clrnet.metrics import psnr

    x = resize(pil_to_tensor(photo)[None], 48, 48)[0]
    keep = box_mask((0.0, 0.0, 0.8, 1.0), 48, 48)
    filled = inpaint_biharmonic(x * keep, keep)
    assert torch.equal(filled[:, keep.bool()], (x * keep)[:, keep.bool()].clamp(0, 1)) or \
        (filled - x * keep)[:, keep.bool()].abs().max() < 1e-5
    assert psnr(filled, x, 1 - keep) > psnr(x * keep, x, 1 - keep) + 3


def test_demo_writes_figure(tmp_path, tiny_model_path):
    from clrnet.demo import run_demo

    nums = run_demo(tmp_path / "demo", str(tiny_model_path))
    assert (tmp_path / "demo" / "demo.png").is_file()
    assert Image.open(tmp_path / "demo" / "recovered.png").size == (512, 512)
    assert nums["protected_psnr_db"] > 10 and 0 <= nums["box_iou"] <= 1


@pytest.mark.parametrize("name", sorted(REAL_ATTACKS))
def test_every_real_attack_runs(photo, name):
    out = REAL_ATTACKS[name](photo.crop((0, 0, 64, 48)), 3)
    assert out.mode == "RGB" and min(out.size) > 10
