"""Shared fixtures: a tiny random model (fast, for plumbing tests), real photos
from scikit-image, and the shared datasets folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import tiny_config, tiny_matched_config
from PIL import Image


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A randomly initialised (untrained) tiny model saved as safetensors."""
    from clrnet.paper.model import CLRNet

    torch.manual_seed(0)
    model = CLRNet(tiny_config())
    for p in model.generator.parameters():  # non-identity generator
        torch.nn.init.normal_(p, std=0.02)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_matched_model_path(tmp_path_factory) -> Path:
    """A tiny model with the ruler code and matched readout; G slightly off identity."""
    from clrnet.paper.model import CLRNet

    torch.manual_seed(0)
    model = CLRNet(tiny_matched_config())
    for p in model.generator.parameters():
        torch.nn.init.normal_(p, std=0.01)
    path = tmp_path_factory.mktemp("model") / "tiny-matched.safetensors"
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


@pytest.fixture(autouse=True, scope="module")
def _few_threads_for_unit_tests(request):
    """Unit tests use tiny tensors: one thread avoids OpenMP stalls when the CPU is
    shared (e.g. with a training run). Set CLRNET_TEST_THREADS to override."""
    n = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("CLRNET_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(n)
