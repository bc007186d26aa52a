"""Shared fixtures: a tiny random model (fast, for plumbing tests), real photos
from scikit-image, and the shared datasets folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(int(os.environ.get("CLRNET_TEST_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))))

from helpers import tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A randomly initialised (untrained) tiny model saved as safetensors."""
    from clrnet.model import CLRNet

    torch.manual_seed(0)
    model = CLRNet(tiny_config())
    for p in model.generator.parameters():  # non-identity generator
        torch.nn.init.normal_(p, std=0.02)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A real photo (scikit-image's chelsea, 451x300)."""
    from skimage import data

    return Image.fromarray(data.chelsea())


@pytest.fixture(scope="session")
def datasets() -> Path:
    root = Path(os.environ.get("CLRNET_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    if not (root / "test" / "kodak24").is_dir():
        pytest.skip(f"shared datasets not found at {root} (set CLRNET_DATA)")
    return root
