"""CLI round trips on real files, and every bad input the CLI must refuse cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clrnet.cli.main import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def output_of(result) -> str:
    try:
        return result.stdout + result.stderr
    except (ValueError, AttributeError):
        return result.output


def assert_clean_failure(result, needle: str) -> None:
    """Non-zero exit, a one-line message naming the problem, no traceback."""
    out = output_of(result)
    assert result.exit_code != 0, out
    assert isinstance(result.exception, SystemExit), f"unexpected exception {result.exception!r}"
    assert "Traceback" not in out
    assert needle in out, out
    assert len([ln for ln in out.splitlines() if ln.startswith("error:")]) == 1


@pytest.fixture()
def photo_file(tmp_path, photo) -> Path:
    p = tmp_path / "photo.png"
    photo.save(p)
    return p


def test_protect_then_inspect_round_trip(tmp_path, photo_file, tiny_model_path, photo):
    prot = tmp_path / "photo.protected.png"
    r = run("protect", photo_file, "-o", prot, "--model", tiny_model_path)
    assert r.exit_code == 0, output_of(r)
    out = Image.open(prot)
    assert out.size == photo.size and out.mode == "RGB"
    # the attacker crops and JPEG-compresses
    w, h = out.size
    received = tmp_path / "received.jpg"
    out.crop((w // 5, h // 6, w - w // 10, h - h // 8)).save(received, quality=80)
    report = tmp_path / "report"
    r = run("inspect", received, "-o", report, "--model", tiny_model_path, "--original-size", f"{w}x{h}")
    assert r.exit_code == 0, output_of(r)
    for name in ("recovered.png", "mask.png", "overlay.png", "report.json"):
        assert (report / name).is_file(), name
    facts = json.loads((report / "report.json").read_text())
    assert set(facts) >= {"cropped", "score", "box", "original_size"}
    assert facts["original_size"] == [w, h]
    assert Image.open(report / "recovered.png").size == (w, h)
    assert Image.open(report / "mask.png").mode == "L"
    assert 0.0 <= facts["score"] <= 1.0
    assert ("CROPPED" in r.output) == facts["cropped"]


def test_protect_refuses_to_overwrite_input(photo_file, tiny_model_path):
    before = photo_file.read_bytes()
    r = run("protect", photo_file, "-o", photo_file, "--model", tiny_model_path)
    assert_clean_failure(r, "refusing to overwrite the input")
    assert photo_file.read_bytes() == before


def test_protect_refuses_existing_output_unless_forced(tmp_path, photo_file, tiny_model_path):
    target = tmp_path / "exists.png"
    target.write_bytes(b"keep me")
    r = run("protect", photo_file, "-o", target, "--model", tiny_model_path)
    assert_clean_failure(r, "already exists")
    assert target.read_bytes() == b"keep me"
    r = run("protect", photo_file, "-o", target, "--model", tiny_model_path, "--force")
    assert r.exit_code == 0
    assert Image.open(target).size == Image.open(photo_file).size
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_inspect_refuses_non_empty_report_folder(tmp_path, photo_file, tiny_model_path):
    report = tmp_path / "rep"
    report.mkdir()
    (report / "notes.txt").write_text("mine")
    r = run("inspect", photo_file, "-o", report, "--model", tiny_model_path)
    assert_clean_failure(r, "not empty")
    assert (report / "notes.txt").read_text() == "mine"


def test_bad_original_size_option(tmp_path, photo_file, tiny_model_path):
    r = run("inspect", photo_file, "-o", tmp_path / "r", "--model", tiny_model_path, "--original-size", "big")
    assert_clean_failure(r, "--original-size")


def test_unknown_model(tmp_path, photo_file):
    r = run("protect", photo_file, "-o", tmp_path / "x.png", "--model", "no-such-model")
    assert_clean_failure(r, "no-such-model")


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    buf = tmp / "good.jpg"
    good.save(buf, quality=90)
    files = {}
    files["missing"] = (tmp / "nope.png", "no such file")
    (tmp / "empty.png").write_bytes(b"")
    files["empty"] = (tmp / "empty.png", "file is empty")
    data = buf.read_bytes()
    (tmp / "truncated.jpg").write_bytes(data[: len(data) // 2])
    files["truncated"] = (tmp / "truncated.jpg", "truncated or corrupt")
    (tmp / "notes.jpg").write_text("this is not an image\n")
    files["not an image"] = (tmp / "notes.jpg", "not an image")
    Image.new("1", (12000, 10000)).save(tmp / "bomb.png")
    files["decompression bomb"] = (tmp / "bomb.png", "too large")
    good.resize((20, 40)).save(tmp / "tiny.png")
    files["too small"] = (tmp / "tiny.png", "too small")
    return files


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "not an image",
                                  "decompression bomb", "too small"])
@pytest.mark.parametrize("command", ["protect", "inspect"])
def test_bad_inputs_fail_cleanly(tmp_path, tiny_model_path, kind, command):
    files = _bad_files(tmp_path)
    path, needle = files[kind]
    r = run(command, path, "-o", tmp_path / "out-dir" / "x.png", "--model", tiny_model_path)
    assert_clean_failure(r, needle)
    assert str(path) in output_of(r)
    assert not (tmp_path / "out-dir").exists()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK", "LA"])
def test_unusual_modes_are_converted(tmp_path, tiny_model_path, photo, mode):
    if mode == "I;16":
        arr = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
        img = Image.fromarray(arr)
        path = tmp_path / "deep.png"
    elif mode == "CMYK":
        img, path = photo.convert("CMYK"), tmp_path / "cmyk.jpg"
    else:
        img, path = photo.convert(mode), tmp_path / f"img-{mode}.png"
    img.save(path)
    out = tmp_path / "out.png"
    r = run("protect", path, "-o", out, "--model", tiny_model_path)
    assert r.exit_code == 0, output_of(r)
    res = Image.open(out)
    assert res.mode == "RGB" and res.size == photo.size


def test_real_process_prints_one_line_error_without_traceback(tmp_path):
    missing = tmp_path / "missing.jpg"
    p = subprocess.run([sys.executable, "-m", "clrnet.cli.main", "protect", str(missing), "-o",
                        str(tmp_path / "o.png")], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr + p.stdout
    assert p.stderr.strip() == f"error: {missing}: no such file"


def test_inspect_says_plainly_when_a_photo_was_never_protected(tmp_path, photo_file, tiny_matched_model_path):
    report = tmp_path / "report"
    r = run("inspect", photo_file, "-o", report, "--model", tiny_matched_model_path)
    assert r.exit_code == 0, output_of(r)
    assert "no protection found" in output_of(r)
    facts = json.loads((report / "report.json").read_text())
    assert facts["protected"] is False and facts["cropped"] is False


def test_inspect_finds_a_crop_with_the_matched_model(tmp_path, photo_file, tiny_matched_model_path):
    prot = tmp_path / "p.png"
    assert run("protect", photo_file, "-o", prot, "--model", tiny_matched_model_path).exit_code == 0
    img = Image.open(prot)
    w, h = img.size
    img.crop((0, 0, w // 2, h)).save(tmp_path / "left.jpg", quality=90)
    r = run("inspect", tmp_path / "left.jpg", "-o", tmp_path / "rep", "--model", tiny_matched_model_path)
    assert r.exit_code == 0 and "CROPPED" in output_of(r), output_of(r)
    facts = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert facts["protected"] is True
    assert abs(facts["box"][2] - 0.5) < 0.05 and facts["box"][0] < 0.05


def test_bench_prints_a_table(tiny_model_path):
    r = run("bench", "--model", tiny_model_path, "--sizes", "32,48", "--repeats", "1", "--threads", "1",
            "--no-large")
    assert r.exit_code == 0, output_of(r)
    out = output_of(r)
    assert "| protect | 32x32 |" in out and "| inspect | 48x48 |" in out and "threads 1" in out


def test_bench_measures_a_batchs_throughput_over_processes(tiny_model_path):
    r = run("bench", "--model", tiny_model_path, "--sizes", "32", "--repeats", "1", "--threads", "1",
            "--no-large", "--processes", "2")
    assert r.exit_code == 0, output_of(r)
    row = [line for line in output_of(r).splitlines() if "2 processes x 1 thread | 32x32 |" in line]
    assert len(row) == 1, output_of(r)
    seconds, rate = (float(v) for v in row[0].split("|")[3:5])
    assert rate > 0 and seconds > 0


def test_bench_rejects_bad_sizes(tiny_model_path):
    assert_clean_failure(run("bench", "--model", tiny_model_path, "--sizes", "big"), "--sizes")
    assert_clean_failure(run("bench", "--model", tiny_model_path, "--processes", "-1"), "--processes")


def test_eval_quick_writes_the_report(tmp_path, tiny_matched_model_path):
    from helpers import make_photo_folder

    folder = make_photo_folder(tmp_path / "photos", 3)
    r = run("eval", "--data", folder, "--model", tiny_matched_model_path, "--quick", "--out", tmp_path / "ev")
    assert r.exit_code == 0, output_of(r)
    out = output_of(r)
    assert "Table I layout" in out and "2 photos" in out
    assert (tmp_path / "ev" / "report.md").is_file() and (tmp_path / "ev" / "curves.png").is_file()


def test_eval_rejects_unknown_attack_and_missing_folder(tmp_path, tiny_model_path):
    assert_clean_failure(run("eval", "--data", tmp_path, "--model", tiny_model_path, "-a", "jpeg71"), "jpeg71")
    assert_clean_failure(run("eval", "--data", tmp_path / "nope", "--model", tiny_model_path, "--quick"), "nope")
    assert_clean_failure(run("eval", "--data", tmp_path, "--model", tiny_model_path, "--size", "512x768"), "512x768")


def test_eval_real_path_needs_large_photos(tmp_path):
    from PIL import Image

    Image.new("RGB", (640, 480), "grey").save(tmp_path / "small.png")
    assert_clean_failure(run("eval", "--data", tmp_path, "--model", "clrnet-v2", "--real-path"),
                         "8 megapixels")


def test_eval_passive_ablation_needs_the_runs_folder(tmp_path):
    assert_clean_failure(run("eval", "passive-ablation", "--data", tmp_path), "passive/log.csv")


def test_eval_v2_writes_report_and_figure(tmp_path, photo):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo.resize((320, 212)).save(folder / "cat.png")
    r = run("eval", "--data", folder, "--model", "clrnet-v2", "--attack", "jpeg80", "--attack", "none",
            "--protected-only", "--out", tmp_path / "ev")
    assert r.exit_code == 0, output_of(r)
    assert "cut-away − best baseline, paired (dB)" in r.output
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "cut-away − best baseline" in report and "crops within 0.5 dB of the best baseline" in report
    # both attacks in one table with their mean
    assert "every attack" in report and "| JPEG 80 |" in report and "| mean of the 2 attacks |" in report
    assert "never-protected called protected" not in report  # --protected-only: not run, not shown
    # one CSV row per sample: 3 bins + the uncropped copy, protected only, per attack
    import csv

    rows = list(csv.DictReader((tmp_path / "ev" / "results.csv").open()))
    assert len(rows) == 8 and all(r["image"] == "cat.png" and r["protected"] == "True" for r in rows)
    assert [sum(r["attack"] == a for r in rows) for a in ("jpeg80", "none")] == [4, 4]
    assert sorted({r["bin"] for r in rows if r["cropped"] == "True"}) == ["[0.50,0.65]", "[0.65,0.80]", "[0.80,1.00]"]
    fig = Image.open(tmp_path / "ev" / "figure.png")
    assert fig.size[0] > 600 and fig.size[1] > 150  # one row: original, received, recovered, Telea


def test_eval_formats_prints_every_format(tmp_path, photo, tiny_matched_model_path):
    from clrnet.evaluation.formats import TABLE_FORMATS

    folder = tmp_path / "photos"
    folder.mkdir()
    photo.resize((160, 120)).save(folder / "cat.png")
    r = run("eval", "--formats", "--data", folder, "--model", tiny_matched_model_path)
    assert r.exit_code == 0, output_of(r)
    for fmt in TABLE_FORMATS:
        assert f"| {fmt.label} |" in r.output


def test_bench_routes_are_the_copies_people_send():
    """``clrnet bench --routes`` times inspect on these: each a JPEG of the stated size."""
    from clrnet.api import get_model, inspect
    from clrnet.evaluation.bench import route_photos

    m = get_model("clrnet-v2")
    routes = dict(route_photos(m, 1600, 1066))
    sizes = {name: im.size for name, im in routes.items()}
    assert sizes["whole, 1600x1066"] == (1600, 1066)
    assert sizes["whole, to 1280 px"] == (1280, 853) and sizes["whole, to 960 px"] == (960, 640)
    assert max(sizes["crop 50 %, to 1080 px"]) == 1080
    assert sizes["laundered crop (77 % crop protected again)"] == (1232, 821)
    assert sizes["never protected"] == (1600, 1066)
    assert inspect(routes["whole, 1600x1066"], m).protected and not inspect(routes["never protected"], m).protected
