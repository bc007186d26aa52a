"""A seeded 70-file subset of scripts/fuzz.py (every format with every mutation, twice):
mutated and malformed files through read_photo, protect and inspect give a result or a
one-line ImageInputError naming the file, never a traceback. The time per file is the script's
measurement (a benchmark on a free machine), not asserted here: tests share the cores."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz.py"


def load_fuzz():
    spec = importlib.util.spec_from_file_location("clrnet_fuzz", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_cases_cover_every_format_and_mutation():
    fuzz = load_fuzz()
    names = [n for n, _ in fuzz.cases(len(fuzz.FORMATS) * len(fuzz.MUTATIONS))]
    assert {(n.split("-", 1)[1].rsplit("-", 1)) [0] for n in names} == set(fuzz.FORMATS)
    assert {n.rsplit("-", 1)[1].split(".")[0] for n in names} == set(fuzz.MUTATIONS)
    assert list(fuzz.cases(5, seed=3)) == list(fuzz.cases(5, seed=3))  # seeded


def test_seeded_subset_has_no_tracebacks():
    fuzz = load_fuzz()
    n = 2 * len(fuzz.FORMATS) * len(fuzz.MUTATIONS)  # each pair twice; the 10 000-file run is the script's
    res = fuzz.fuzz(n, seed=1, model_name="clrnet-v2", keep=None, progress=False)  # the default model
    assert res["counts"]["failed"] == 0, [f for f in res["failures"] if f[2]][:3]
    assert res["counts"]["ok"] > 0 and res["counts"]["refused"] > 0


def test_damaged_exif_found_by_the_10k_run_costs_only_the_exif(tmp_path):
    """Two JPEGs of the 10 000-file run (seed 0) whose EXIF Pillow cannot rewrite: the photo
    is still read (upright), protected and inspected; the EXIF is dropped with a note."""
    from clrnet import read_photo
    from clrnet.api import get_model

    fuzz = load_fuzz()
    wanted = {"03479-jpeg-header.jpg", "03864-jpeg-header.jpg"}
    found = {n: d for n, d in fuzz.cases(3865, seed=0) if n in wanted}
    assert set(found) == wanted
    for name, data in found.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert fuzz.run_one(path, get_model("clrnet-small-128"))[0] == "ok"
    assert any("EXIF unreadable" in n for n in read_photo(tmp_path / "03479-jpeg-header.jpg").metadata.notes)
