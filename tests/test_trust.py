"""The false-alarm measurement: synthetic hard cases and the table per family."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clrnet.evaluation.false_alarms import HARD_FAMILIES, false_alarms, hard_case, photo_variants


@pytest.mark.parametrize("family", HARD_FAMILIES)
def test_hard_cases_are_seeded_varied_rgb_images(family):
    a, b = hard_case(family, 0), hard_case(family, 0)
    assert a.mode == "RGB" and a.size == (256, 256)
    assert np.array_equal(np.asarray(a), np.asarray(b))  # same seed, same image
    if family != "flat":
        assert np.asarray(a).std() > 1  # a pattern, not a flat field
    assert not np.array_equal(np.asarray(a), np.asarray(hard_case(family, 1)))


def test_grating_frequencies_sweep():
    def cycles(im):  # zero crossings of the centre row of a vertical-ish grating, halved
        row = np.asarray(im.convert("L"), dtype=float)[128]
        row = row - row.mean()
        return int((np.diff(np.sign(row)) != 0).sum()) // 2

    counts = [cycles(hard_case("grating", i)) for i in (0, 2, 4)]  # 0°, about 2, 8, 32 cycles
    assert counts[0] < counts[1] < counts[2] and counts[2] >= 20, counts


def test_photo_variants(photo):
    names = [n for n, _ in photo_variants(photo)]
    assert names == ["native", "native, JPEG 80", "native, halved", "256", "256, JPEG 80", "256, halved"]
    sizes = dict((n, im.size) for n, im in photo_variants(photo))
    assert sizes["native, halved"] == (photo.width // 2, photo.height // 2) and sizes["256"] == (256, 256)


def test_false_alarm_table(tiny_matched_model_path):
    rows = false_alarms(str(tiny_matched_model_path), None, per_family=1, progress=False)
    assert [r["images"] for r in rows] == [*HARD_FAMILIES, "all"]
    assert all(r["n"] == 2 for r in rows[:-1]) and rows[-1]["n"] == 2 * len(HARD_FAMILIES)
    assert all(0 <= r["called protected"] <= 1 and 0 <= r["called cropped"] <= 1 for r in rows)


def test_false_alarms_in_two_processes_count_the_same_as_in_one(tiny_matched_model_path, tmp_path):
    from skimage import data

    for split, arr in (("train", data.astronaut()), ("val", data.chelsea()), ("test", data.coffee())):
        (tmp_path / split).mkdir()
        Image.fromarray(arr).resize((96, 64)).save(tmp_path / split / f"{split}.png")
    one = false_alarms(str(tiny_matched_model_path), tmp_path, per_family=1, progress=False)
    two = false_alarms(str(tiny_matched_model_path), tmp_path, per_family=1, progress=False, workers=2)
    assert one == two
    assert [r["n"] for r in one] == [2] * len(HARD_FAMILIES) + [3] * 6 + [2 * len(HARD_FAMILIES) + 18]


def test_the_default_model_calls_no_hard_case_protected():
    """The README's false-alarm floor (<= 2 % per hard-case family) with the shipped default
    model: two images of every family, as made and after JPEG 80, none called protected."""
    rows = false_alarms(None, None, per_family=2, progress=False)
    assert [r["images"] for r in rows] == [*HARD_FAMILIES, "all"]
    assert all(r["called protected"] == 0 and r["called cropped"] == 0 for r in rows), rows
