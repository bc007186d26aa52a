"""A seeded 200-file subset of scripts/fuzz.py: mutated and malformed files of every
format through read_photo, protect and inspect give a result or a one-line
ImageInputError naming the file, never a traceback, each within the time limit."""

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
    res = fuzz.fuzz(200, seed=1, model_name="clrnet-small-128", keep=None, progress=False)
    assert res["failures"] == [], res["failures"][:3]
    assert res["counts"]["ok"] > 0 and res["counts"]["refused"] > 0
    assert res["slowest_s"] < fuzz.TIME_LIMIT_S
