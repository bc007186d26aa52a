"""Many photos at once: inputs (files, folders, globs), resume, failures among good
photos, parallel workers, results.jsonl / results.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clrnet.batch.local import inspect_many, protect_many
from clrnet.cli.main import app
from clrnet.files.inputs import InputPatternError, expand_inputs, is_batch

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture()
def shoot(tmp_path, photo) -> Path:
    """A folder: three photos (PNG, JPEG, WebP), a subfolder with one more, a text file."""
    d = tmp_path / "shoot"
    (d / "day2").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(["a.png", "b.jpg", "c.webp", "day2/d.png"]):
        left = int(rng.integers(0, 60))
        photo.crop((left, 0, left + 300 - 20 * i, 260)).save(d / name, **({"quality": 92} if "jpg" in name else {}))
    (d / "notes.txt").write_text("not a photo")
    return d


def files_under(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_expand_inputs(shoot):
    assert [str(p.relative) for p in expand_inputs([shoot])] == ["a.png", "b.jpg", "c.webp"]
    assert [str(p.relative) for p in expand_inputs([shoot], recursive=True)] == ["a.png", "b.jpg", "c.webp",
                                                                                 "day2/d.png"]
    assert [p.path.name for p in expand_inputs([str(shoot / "*.png"), shoot / "a.png"])] == ["a.png"]
    with pytest.raises(InputPatternError, match="no photo matches"):
        expand_inputs([str(shoot / "*.gif")])
    with pytest.raises(InputPatternError, match="no such file"):
        expand_inputs([shoot / "nope.png"])
    (shoot / "empty").mkdir()
    with pytest.raises(InputPatternError, match="holds no photo"):
        expand_inputs([shoot / "empty"])
    assert not is_batch([shoot / "a.png"]) and is_batch([shoot]) and is_batch([str(shoot / "*.png")])


def test_protect_folder_keeps_names_formats_and_structure(tmp_path, shoot, tiny_model_path):
    out = tmp_path / "out"
    r = run("protect", shoot, "-o", out, "--recursive", "--model", tiny_model_path)
    assert r.exit_code == 0, r.output
    assert files_under(out) == ["a.png", "b.jpg", "c.webp", "day2/d.png"]
    for name in files_under(out):
        assert Image.open(out / name).size == Image.open(shoot / name).size
    assert "protected 4, skipped 0" in r.output


def test_failing_file_among_good_ones_then_resume(tmp_path, shoot, tiny_model_path):
    (shoot / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    r = run("protect", shoot, "-o", out, "--model", tiny_model_path)
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert f"failed: {shoot / 'broken.jpg'}: " in r.output
    assert files_under(out) == ["a.png", "b.jpg", "c.webp"]  # the others were done
    stamp = {n: (out / n).stat().st_mtime_ns for n in files_under(out)}
    r = run("protect", shoot, "-o", out, "--model", tiny_model_path)
    assert "protected 0, skipped 3" in r.output and r.exit_code == 1
    assert {n: (out / n).stat().st_mtime_ns for n in files_under(out)} == stamp  # not rewritten


def test_interrupted_run_resumes_where_it_stopped(tmp_path, shoot, tiny_model_path):
    out = tmp_path / "out"
    gen = protect_many([shoot], out, str(tiny_model_path))
    first = next(gen)
    gen.close()  # as Ctrl-C would stop it
    assert first.status == "done" and files_under(out) == ["a.png"]
    statuses = [r.status for r in protect_many([shoot], out, str(tiny_model_path))]
    assert statuses == ["skipped", "done", "done"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_workers_give_byte_identical_outputs(tmp_path, shoot, tiny_model_path):
    one, two = tmp_path / "one", tmp_path / "two"
    list(protect_many([shoot], one, str(tiny_model_path), workers=1))
    res = list(protect_many([shoot], two, str(tiny_model_path), workers=3))
    assert [r.source.name for r in res] == ["a.png", "b.jpg", "c.webp"]  # input order
    for name in files_under(one):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_never_overwrites_an_input(tmp_path, shoot, tiny_model_path):
    before = (shoot / "a.png").read_bytes()
    res = list(protect_many([shoot / "a.png", shoot / "b.jpg"], shoot, str(tiny_model_path), force=True))
    assert all(r.status == "failed" and "refusing to overwrite the input" in r.error for r in res)
    assert (shoot / "a.png").read_bytes() == before


def test_same_output_name_from_two_folders_is_refused(tmp_path, shoot, tiny_model_path):
    other = tmp_path / "other"
    other.mkdir()
    (shoot / "a.png").rename(other / "a.png")
    Image.open(other / "a.png").save(shoot / "a.png")
    res = list(protect_many([shoot / "a.png", other / "a.png"], tmp_path / "out", str(tiny_model_path)))
    assert [r.status for r in res] == ["done", "failed"] and "already" in res[1].error


def test_format_option_for_a_batch(tmp_path, shoot, tiny_model_path):
    out = tmp_path / "out"
    r = run("protect", str(shoot / "*.*"), "-o", out, "--format", "jpeg", "--model", tiny_model_path)
    assert r.exit_code == 0, r.output
    assert files_under(out) == ["a.jpg", "b.jpg", "c.jpg"]


def test_inspect_batch_writes_reports_jsonl_and_csv(tmp_path, shoot, tiny_model_path):
    (shoot / "broken.png").write_bytes(b"garbage")
    out = tmp_path / "reports"
    r = run("inspect", shoot, "-o", out, "--model", tiny_model_path)
    assert r.exit_code == 1 and "Traceback" not in r.output
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [Path(x["file"]).name for x in lines] == ["a.png", "b.jpg", "broken.png", "c.webp"]
    by_name = {Path(x["file"]).name: x for x in lines}
    assert by_name["broken.png"]["status"] == "failed" and "not an image" in by_name["broken.png"]["error"]
    for name in ("a.png", "b.jpg", "c.webp"):
        facts = json.loads((out / name / "report.json").read_text())
        assert by_name[name]["score"] == facts["score"] and by_name[name]["report"] == name
        assert {p.name for p in (out / name).iterdir()} == {"recovered.png", "mask.png", "overlay.png",
                                                            "report.json"}
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [Path(x["file"]).name for x in rows] == ["a.png", "b.jpg", "broken.png", "c.webp"]
    assert float(rows[0]["score"]) == by_name["a.png"]["score"] and rows[2]["error"]
    # a rerun skips finished photos and still lists every photo
    r = run("inspect", shoot, "-o", out, "--model", tiny_model_path)
    assert "inspected 0, skipped 3" in r.output
    again = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [x["status"] for x in again] == ["skipped", "skipped", "failed", "skipped"]
    assert [x.get("score") for x in again] == [x.get("score") for x in lines]


def test_inspect_many_without_output_folder_writes_nothing(tmp_path, shoot, tiny_model_path):
    before = files_under(tmp_path)
    res = list(inspect_many([shoot], None, str(tiny_model_path), workers=2))
    assert [r.status for r in res] == ["done"] * 3 and all(r.inspection is not None for r in res)
    assert files_under(tmp_path) == before


def test_inspect_batch_no_images(tmp_path, shoot, tiny_model_path):
    out = tmp_path / "reports"
    r = run("inspect", str(shoot / "*.png"), shoot / "b.jpg", "-o", out, "--no-images", "--model", tiny_model_path)
    assert r.exit_code == 0, r.output
    assert files_under(out) == ["a.png/report.json", "b.jpg/report.json", "results.csv", "results.jsonl"]


def test_batch_input_errors_are_one_line(tmp_path, tiny_model_path):
    r = run("protect", str(tmp_path / "*.jpg"), "-o", tmp_path / "out", "--model", tiny_model_path)
    assert r.exit_code == 2 and "no photo matches" in r.output and "Traceback" not in r.output
    r = run("protect", tmp_path, "-o", tmp_path / "out", "--workers", "0", "--model", tiny_model_path)
    assert r.exit_code == 2 and "--workers" in r.output
