"""Determinism and concurrency (issue 8): the same input gives the same protected bytes
whatever the run or the number of torch threads, and processes sharing one output
folder never leave a partial or overwritten file."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clrnet.files.imageio import OutputExistsError, save_atomic

CLI = [sys.executable, "-m", "clrnet.cli.main"]


def _photos(folder: Path, n: int, size: tuple[int, int] = (200, 150)) -> list[Path]:
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    base = Image.fromarray(data.astronaut())
    out = []
    for i in range(n):
        p = folder / f"p{i}.png"
        base.rotate(7 * i).resize(size).save(p)
        out.append(p)
    return out


def _run(args: list[str], threads: int = 1) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=600)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("model", ["clrnet-small-128", "clrnet-v2"])
def test_protect_is_byte_identical_across_runs_and_thread_counts(tmp_path, model):
    (src,) = _photos(tmp_path / "in", 1, (300, 200))
    digests = set()
    for k, threads in enumerate((1, 2, 1)):
        out = tmp_path / f"out{k}.png"
        r = _run(["protect", str(src), "-o", str(out), "--model", model], threads)
        assert r.returncode == 0, r.stderr
        digests.add(_digest(out))
    assert len(digests) == 1


def test_four_processes_into_one_folder_leave_whole_files_written_once(tmp_path):
    photos = _photos(tmp_path / "in", 6)
    ref = tmp_path / "ref"
    r = _run(["protect", str(tmp_path / "in"), "-o", str(ref)])
    assert r.returncode == 0, r.stderr
    shared = tmp_path / "shared"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(CLI + ["protect", str(tmp_path / "in"), "-o", str(shared)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    done = [int(re.search(r"protected (\d+), skipped (\d+)", o[0]).group(1)) for o in outs]
    assert sum(done) == len(photos)  # each photo written by exactly one process
    assert sorted(p.name for p in shared.iterdir()) == sorted(p.name for p in photos)  # no temporary file left
    for p in photos:
        assert _digest(shared / p.name) == _digest(ref / p.name)
        with Image.open(shared / p.name) as im:
            im.load()  # whole, decodable


def test_exclusive_save_never_overwrites_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "a.png"
    first = Image.fromarray(np.zeros((4, 4, 3), np.uint8))
    save_atomic(first, target, replace=False)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError):
        save_atomic(Image.fromarray(np.full((4, 4, 3), 255, np.uint8)), target, replace=False)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    save_atomic(Image.fromarray(np.full((4, 4, 3), 255, np.uint8)), target)  # replace=True (--force) does
    assert target.read_bytes() != before
