"""Typed configuration (clrnet.paper.config): built-in YAML configs, paper defaults,
strict validation."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from clrnet.paper.config import (
    AttackConfig,
    GeneratorConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
    builtin_config_names,
    dump_config,
    load_config,
)


def test_builtin_configs_are_listed_and_load():
    names = builtin_config_names()
    assert {"small", "paper"} <= set(names)
    small, paper = load_config("small"), load_config("paper")
    assert isinstance(small, ModelConfig) and isinstance(paper, ModelConfig)
    # Values come from the YAML files, not the defaults.
    assert small.size == 128 and small.name == "clrnet-small-128"
    assert small.generator.spectral_norm is False and small.preprocessor.enabled is False
    assert paper.size == 256 and paper.name == "clrnet-paper-256"
    assert paper.generator.spectral_norm is True and paper.preprocessor.enabled is True
    from clrnet.cli.train import _fg_config, _passive_config, _qf_config, _refine_config, _tamper_config

    for name in names:
        # refine*: the reconstruction network's configs; tamper, passive, qf-predictor: the tamper network's,
        # the passive detector's, FG-JPEG's QF predictor's; fg-jpeg*: FG-JPEG's generator's
        kinds = (_refine_config, _tamper_config, _passive_config, _qf_config, _fg_config)
        if all(f(name) is None for f in kinds):
            assert isinstance(load_config(name), ModelConfig)
    assert _refine_config("refine-ddp").sampling == "per_sample"


def test_tamper_config_is_recognised_by_the_train_command():
    from clrnet.cli.train import _refine_config, _tamper_config
    from clrnet.training.tamper import TamperConfig

    cfg = _tamper_config("tamper")
    assert isinstance(cfg, TamperConfig) and cfg.samples == 6000 and cfg.max_false_alarms == 0.02
    assert _tamper_config("refine") is None and _refine_config("tamper") is None and _tamper_config("small") is None


def test_refine_config_is_recognised_by_the_train_command():
    from clrnet.cli.train import _refine_config
    from clrnet.training.refine import RefineConfig

    cfg = _refine_config("refine")
    assert isinstance(cfg, RefineConfig) and cfg.size == 192
    assert _refine_config("small") is None


@pytest.mark.parametrize("name", ["small", "paper"])
def test_builtin_configs_build_a_model(name):
    from clrnet.paper.model import CLRNet

    cfg = load_config(name)
    m = CLRNet(cfg)  # sizes are consistent (G's and C's divisibility checks pass)
    assert m.size == cfg.size
    assert cfg.size % 2 ** cfg.generator.levels == 0


def test_defaults_follow_the_paper():
    loss = LossConfig()
    assert (loss.alpha, loss.beta, loss.gamma, loss.eta) == (1.5, 0.1, 0.05, 0.01)
    train = TrainConfig()
    assert train.lr == 1e-4 and train.batch_size == 4
    cfg = ModelConfig()
    assert cfg.loss == loss and cfg.size == 256
    assert cfg.attack.detach_attack is True
    assert cfg.attack.min_area == 0.25 and cfg.attack.max_area == 1.0


def test_paper_config_keeps_paper_loss_weights():
    loss = load_config("paper").loss
    assert (loss.alpha, loss.beta, loss.gamma, loss.eta) == (1.5, 0.1, 0.05, 0.01)


def test_unknown_keys_are_rejected():
    with pytest.raises(ValidationError):
        ModelConfig.model_validate({"sise": 128})
    with pytest.raises(ValidationError):
        ModelConfig.model_validate({"generator": {"levels": 2, "hiden": [8, 8]}})
    with pytest.raises(ValidationError):
        LossConfig(alfa=1.0)
    with pytest.raises(ValidationError):
        GeneratorConfig(levels="three")
    with pytest.raises(ValidationError):
        AttackConfig(attacks=["identity", "rotate"])


def test_unknown_key_in_a_yaml_file_is_rejected(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("size: 64\nloss:\n  alpha: 2.0\n  delta: 1.0\n")
    with pytest.raises(ValidationError):
        load_config(p)


def test_load_config_missing_name_raises():
    with pytest.raises(FileNotFoundError, match="small"):  # the message lists built-ins
        load_config("no-such-config-xyz")
    with pytest.raises(FileNotFoundError):
        load_config("/nonexistent/folder/cfg.yaml")


def test_load_config_from_file_overrides_defaults(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("name: mine\nsize: 64\nloss:\n  alpha: 2.0\ntrain:\n  lr_decay_steps: [10, 20]\n")
    cfg = load_config(p)
    assert cfg.name == "mine" and cfg.size == 64
    assert cfg.loss.alpha == 2.0 and cfg.loss.beta == 0.1  # unspecified keys keep defaults
    assert cfg.train.lr_decay_steps == [10, 20]
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == ModelConfig()
    assert load_config(str(p)) == cfg  # str paths too


def test_dump_config_round_trips(tmp_path):
    cfg = load_config("small")
    text = dump_config(cfg)
    assert yaml.safe_load(text)["size"] == 128
    p = tmp_path / "dumped.yaml"
    p.write_text(text)
    assert load_config(p) == cfg
