"""FG-JPEG's shipped networks by name (``weights/<name>/<name>.safetensors``) or by path, each
rebuilt from the config kept in its weights' metadata."""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file

from clrnet.paper.fgjpeg.data import QFConfig
from clrnet.paper.fgjpeg.generator import Generator
from clrnet.paper.fgjpeg.predictor import QFPredictor


def shipped(name: str) -> Path:
    """The shipped weights ``name`` (a path ending in .safetensors is taken as it is)."""
    if name.endswith(".safetensors"):
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no such weights file")
        return path
    from importlib import resources

    res = resources.files("clrnet") / "weights" / name / f"{name}.safetensors"
    if not res.is_file():
        raise FileNotFoundError(f"{name}: no such shipped FG-JPEG network (train it: clrnet train --config {name})")
    return Path(str(res))


def shipped_predictor(name: str = "qf-predictor") -> Path:
    return shipped(name)


def _metadata(path: str | Path, key: str) -> str:
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    if key not in meta:
        raise ValueError(f"{path}: not FG-JPEG weights ({key} missing from the metadata)")
    return meta[key]


def load_predictor(path: str | Path) -> QFPredictor:
    """The QF predictor of the weights at ``path``."""
    cfg = QFConfig.model_validate_json(_metadata(path, "qf_config"))
    net = QFPredictor(cfg.blocks)
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def load_generator(path: str | Path, frozen: bool = True) -> Generator:
    """FG-JPEG's generator and controller of the weights at ``path`` (``frozen``: no parameter
    gradients, evaluation mode; gradients still flow to its input)."""
    import json

    cfg = json.loads(_metadata(path, "fg_config"))
    net = Generator(tuple(cfg["widths"]), cfg["base"])
    net.load_state_dict(load_file(str(path)))
    if frozen:
        for p in net.parameters():
            p.requires_grad_(False)
    return net.eval()
