"""Training: runs on a small folder, logs, checkpoints, resumes, is deterministic."""

from __future__ import annotations

import csv

import pytest
from helpers import make_photo_folder, tiny_config

from clrnet.paper.model import CLRNet
from clrnet.paper.training import Trainer


@pytest.fixture()
def data_root(tmp_path):
    make_photo_folder(tmp_path / "data" / "train" / "a", 6)
    make_photo_folder(tmp_path / "data" / "val" / "b", 2, seed=1)
    return tmp_path / "data"


def test_train_logs_checkpoints_and_resumes(tmp_path, data_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config()
    run = tmp_path / "run"
    t = Trainer(cfg, run, data_root, progress=False)
    t.fit(2)
    assert (run / "last.pt").is_file() and (run / "best.safetensors").is_file()
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert rows and "val_iou" in rows[-1] and rows[-1]["val_psnr"] != ""
    assert t.state.stage == 2  # stage1_steps = 1: task decomposition ended
    t2 = Trainer(cfg, run, data_root, progress=False)
    assert t2.state.step == 2  # resumed
    t2.fit(3)
    assert t2.state.step == 3
    CLRNet.load(run / "best.safetensors")


def test_same_seed_same_losses(tmp_path, data_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config()
    a = Trainer(cfg, tmp_path / "a", data_root, progress=False).train_step().losses
    b = Trainer(cfg, tmp_path / "b", data_root, progress=False).train_step().losses
    assert a == b


@pytest.mark.parametrize("switch", ["siamese", "preprocessor", "discriminator", "detach", "tamper"])
def test_mechanisms_can_be_switched_off(tmp_path, data_root, monkeypatch, switch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config()
    if switch == "siamese":
        cfg.preprocessor.siamese = False
    elif switch == "preprocessor":
        cfg.preprocessor.enabled = False
    elif switch == "discriminator":
        cfg.discriminator.enabled = False
    elif switch == "detach":
        cfg.attack.detach_attack = False
    else:
        cfg.train.tamper_rate = 0.0
    losses = Trainer(cfg, tmp_path / switch, data_root, progress=False).train_step().losses
    assert all(v == v for v in losses.values())  # finite, no NaN
    if switch in ("siamese", "preprocessor"):
        assert losses["cons"] == 0.0
    if switch == "discriminator":
        assert losses["d"] == 0.0


def test_training_with_the_matched_readout(tmp_path, data_root, monkeypatch):
    """The shipped design: the readout has no weights, G still learns from L_rec and L_prt."""
    import torch
    from helpers import tiny_matched_config

    monkeypatch.chdir(tmp_path)
    t = Trainer(tiny_matched_config(), tmp_path / "m", data_root, progress=False)
    before = [p.detach().clone() for p in t.model.generator.parameters()]
    t.fit(2)
    assert t.state.stage == 2  # stage 2 recovers from the readout's boxes
    rows = list(csv.DictReader((tmp_path / "m" / "log.csv").open()))
    assert float(rows[-1]["loc"]) == 0.0 and rows[-1]["val_iou"] != ""
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.generator.parameters()))
