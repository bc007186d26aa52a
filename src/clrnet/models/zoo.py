"""The model zoo: shipped models by name (designed ones built from their config, learned
ones from ``weights/<name>/<name>.safetensors``), each with its card ``weights/<name>/<name>.json``,
or any model file."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from clrnet.models.base import Model
from clrnet.models.designed import Protector
from clrnet.models.paper import PaperModel
from clrnet.paper.model import CLRNet

DEFAULT_MODEL = "clrnet-v2"  # the designed protection (issue 7); the paper's CLR-Net: "clrnet-small-128"


# Designed protections (no learned weights): name -> configuration.
DESIGNED_MODELS = {"clrnet-v2": "protection v2: working frame, JND-shaped ruler and coded thumbnail payload"}


def available_models() -> list[str]:
    """Names of the protection models shipped in the package (not the passive detector's
    weights, whose card says ``"kind": "passive"``)."""
    folder = resources.files("clrnet") / "weights"
    return sorted([*DESIGNED_MODELS, *(p.name for p in folder.iterdir()
                                       if (p / f"{p.name}.safetensors").is_file()
                                       and model_card(p.name).get("kind") != "passive")])


def model_card(name: str) -> dict:
    """The JSON card beside a shipped model: command, config, data and measured numbers."""
    card = resources.files("clrnet") / "weights" / name / f"{name}.json"
    return json.loads(card.read_text()) if card.is_file() else {}


def as_model(obj: "Model | CLRNet") -> Model:
    """A model object as a :class:`~clrnet.models.base.Model` (the paper's networks wrapped)."""
    return PaperModel(obj) if isinstance(obj, CLRNet) else obj


def load_model(name_or_path: str | Path = DEFAULT_MODEL) -> Model:
    """Load a shipped model by name (see :func:`available_models`) or any model file."""
    if str(name_or_path) in DESIGNED_MODELS:
        return Protector(name=str(name_or_path))
    path = Path(name_or_path)
    if not path.is_file():
        res = resources.files("clrnet") / "weights" / str(name_or_path) / f"{name_or_path}.safetensors"
        if not res.is_file():
            raise FileNotFoundError(
                f"{name_or_path}: no such model file or shipped model "
                f"(shipped: {', '.join(available_models()) or 'none'})")
        path = Path(str(res))
    return PaperModel(CLRNet.load(path), str(name_or_path) if isinstance(name_or_path, str) else None)
