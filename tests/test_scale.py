"""The Ray Data engine gives the plain path's outputs, byte for byte; reruns skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'clrnet[scale]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'clrnet[scale]')")

from clrnet.batch.local import inspect_many, protect_many
from clrnet.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    from clrnet.batch.ray import start_ray

    start_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture()
def photos(tmp_path, photo) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for i in range(5):
        photo.crop((i * 15, i * 5, 300 + i * 15, 250)).save(d / f"p{i}.png")
    photo.save(d / "sub" / "c.jpg", quality=90, exif=_exif())
    (d / "bad.jpg").write_bytes(b"not a photo")
    return d


def _exif() -> bytes:
    e = Image.Exif()
    e[0x010F] = "Canon"
    return e.tobytes()


def tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_ray_protect_writes_the_plain_paths_bytes(tmp_path, photos, tiny_model_path):
    plain = tmp_path / "plain"
    list(protect_many([photos], plain, str(tiny_model_path), recursive=True))
    out = tmp_path / "ray"
    r = runner.invoke(app, ["protect", str(photos), "-o", str(out), "--recursive", "--engine", "ray",
                            "--model", str(tiny_model_path)])
    assert r.exit_code == 1, r.output  # bad.jpg failed, the others done
    assert f"failed: {photos / 'bad.jpg'}: not an image" in r.output
    assert "protected 6, skipped 0" in r.output
    assert tree(out) == tree(plain) and len(tree(out)) == 6
    assert Image.open(out / "sub" / "c.jpg").getexif()[0x010F] == "Canon"  # metadata kept on workers
    r = runner.invoke(app, ["protect", str(photos), "-o", str(out), "--recursive", "--engine", "ray",
                            "--model", str(tiny_model_path)])
    assert "protected 0, skipped 6" in r.output


def test_ray_inspect_gives_the_plain_paths_reports(tmp_path, photos, tiny_model_path):
    plain = tmp_path / "plain"
    list(inspect_many([photos], plain, str(tiny_model_path)))
    out = tmp_path / "ray"
    r = runner.invoke(app, ["inspect", str(photos), "-o", str(out), "--engine", "ray",
                            "--model", str(tiny_model_path)])
    assert r.exit_code == 1, r.output
    ray_rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    plain_rows = [json.loads(x) for x in (plain / "results.jsonl").read_text().splitlines()]
    assert ray_rows == plain_rows and len(ray_rows) == 6
    assert (out / "results.csv").read_text() == (plain / "results.csv").read_text()
    assert tree(out) == tree(plain)


def test_address_needs_the_ray_engine(tmp_path, photos, tiny_model_path):
    r = runner.invoke(app, ["protect", str(photos), "-o", str(tmp_path / "o"), "--address", "auto",
                            "--model", str(tiny_model_path)])
    assert r.exit_code == 2 and "use it with --engine ray" in r.output
    r = runner.invoke(app, ["protect", str(photos), "-o", str(tmp_path / "o"), "--engine", "spark"])
    assert r.exit_code == 2 and "choose plain or ray" in r.output


def test_unreachable_cluster_is_a_one_line_error(tmp_path, photos, tiny_model_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "clrnet.cli.main", "protect", str(photos), "-o", str(tmp_path / "o"),
                        "--engine", "ray", "--address", "127.0.0.1:1", "--model", str(tiny_model_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("error: cannot start or join the Ray cluster at 127.0.0.1:1")
