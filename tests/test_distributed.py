"""Data-parallel training: 2 processes under torchrun (gloo) train the weights that
1 process trains with the doubled batch; a run resumes with another process count."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image
from safetensors.torch import load_file

TOLERANCE = 1e-5  # max |w2 - w1| after 3 Adam steps: only float summation order differs


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """train/ and val/ folders of real photos (scikit-image's), small."""
    from skimage import data

    root = tmp_path_factory.mktemp("data")
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.immunohistochemistry(),
              data.hubble_deep_field()]
    for split, items in (("train", photos[:5]), ("val", photos[5:])):
        (root / split).mkdir()
        for i, arr in enumerate(items):
            Image.fromarray(arr).resize((120, 96)).save(root / split / f"{i}.jpg", quality=92)
    return root


def config(path: Path, batch_size: int) -> Path:
    cfg = dict(kind="refine", name="tiny", width=4, batch_size=batch_size, steps=5, lr=1e-3, size=64, val_every=3,
               val_images=1, checkpoint_every=3, seed=0, threads=1, sampling="per_sample")
    path.write_text(yaml.safe_dump(cfg))
    return path


def train(args: list[str], nproc: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] \
        if nproc > 1 else [sys.executable]
    p = subprocess.run([*launcher, "-m", "clrnet.cli.train", *args], capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]


def test_two_processes_equal_one_with_the_doubled_batch(tmp_path, tiny_data):
    one, two = tmp_path / "one", tmp_path / "two"
    train(["--config", str(config(tmp_path / "b4.yaml", 4)), "--data", str(tiny_data), "--run-dir", str(one),
           "--steps", "3"], 1)
    train(["--config", str(config(tmp_path / "b2.yaml", 2)), "--data", str(tiny_data), "--run-dir", str(two),
           "--steps", "3"], 2)
    w1, w2 = load_file(one / "last.safetensors"), load_file(two / "last.safetensors")
    assert w1.keys() == w2.keys()
    moved = max(float((w1[k] - load_file(one / "best.safetensors")[k]).abs().max()) for k in w1)
    assert moved == 0.0  # best = last at step 3 (validation every 3 steps)
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    print(f"2 processes vs 1 with the doubled batch: largest weight difference {diff:.2e}")
    assert diff < TOLERANCE, diff
    # rank 0 alone wrote the log: one row per step
    rows = list(csv.DictReader((two / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]

    # resume the 2-process run in 1 process (global batch 2 now) up to step 5
    train(["--config", str(tmp_path / "b2.yaml"), "--data", str(tiny_data), "--run-dir", str(two), "--steps", "5"], 1)
    rows = list(csv.DictReader((two / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]


def test_stream_sampling_refuses_several_processes(tmp_path, tiny_data):
    cfg = yaml.safe_load(config(tmp_path / "c.yaml", 2).read_text())
    cfg["sampling"] = "stream"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "clrnet.cli.train", "--config", str(tmp_path / "c.yaml"), "--data", str(tiny_data),
                        "--run-dir", str(tmp_path / "r"), "--steps", "1"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode != 0 and "use sampling: per_sample with torchrun" in p.stderr


def test_clrnet_trainer_runs_data_parallel_and_resumes(tmp_path, monkeypatch):
    """The CLR-Net trainer (tiny config: pre-processor, Siamese view, discriminators) under
    torchrun with 2 processes: the processes' weights agree at every checkpoint (the
    trainer raises otherwise), rank 0 logs and checkpoints, and the run resumes in 1
    process; rank 0's weights differ from a 1-process run's, so rank 1's gradients counted."""
    from helpers import make_photo_folder, tiny_config

    from clrnet.paper.config import dump_config

    root = tmp_path / "data"
    make_photo_folder(root / "train", 6)
    make_photo_folder(root / "val", 2, seed=1)
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(dump_config(tiny_config()))
    monkeypatch.chdir(tmp_path)  # the trainer's photo cache (.cache) lives in the working folder
    two, one = tmp_path / "two", tmp_path / "one"
    train(["--config", str(cfg_path), "--data", str(root), "--run-dir", str(two), "--steps", "2"], 2)
    train(["--config", str(cfg_path), "--data", str(root), "--run-dir", str(one), "--steps", "2"], 1)
    rows = list(csv.DictReader((two / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [2]  # logged every 10 steps and at validation
    w2, w1 = load_file(two / "last.safetensors"), load_file(one / "last.safetensors")
    assert max(float((w2[k] - w1[k]).abs().max()) for k in w1) > 0
    train(["--config", str(cfg_path), "--data", str(root), "--run-dir", str(two), "--steps", "3"], 1)
    assert (two / "last.pt").is_file()
