"""Every shipped set of weights has its card beside it: the command that trained it, the
config, the data, and what it measured."""

from __future__ import annotations

import json
from importlib import resources

import pytest

WEIGHTS = resources.files("clrnet") / "weights"
NAMES = sorted(p.name for p in WEIGHTS.iterdir() if p.is_dir() and not p.name.startswith("_"))


@pytest.mark.parametrize("name", NAMES)
def test_weights_have_a_card(name: str) -> None:
    folder = WEIGHTS / name
    assert any(p.name.endswith(".safetensors") for p in folder.iterdir()), name
    card = json.loads((folder / f"{name}.json").read_text())
    assert card["name"] == name
    for field in ("command", "config", "data"):
        assert card.get(field), (name, field)
    assert any(card.get(k) for k in ("measured", "numbers", "evaluation")), name
