"""Helpers shared by the tests: a tiny model config, a folder of real photo crops, a JPEG round trip."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def tiny_config():
    from clrnet.paper.config import ModelConfig

    return ModelConfig.model_validate({
        "name": "tiny-test", "size": 32,
        "generator": {"levels": 2, "blocks_per_level": 1, "hidden": [8, 8], "coord_freqs": 1,
                      "bottom_dilations": [1], "spectral_norm": False},
        "localizer": {"channels": [4, 4, 4], "stem_stride": 1, "map_stride": 2, "mlp_hidden": [16, 8, 4]},
        "preprocessor": {"enabled": True, "channels": 4, "siamese": True},
        "discriminator": {"enabled": True, "channels": 4, "layers": 2},
        "train": {"batch_size": 2, "steps": 2, "stage1_steps": 1, "val_every": 2, "val_images": 2,
                  "checkpoint_every": 1, "threads": 1},
    })


def tiny_matched_config():
    """The tiny model with the ruler code and its matched-filter readout (the shipped design)."""
    cfg = tiny_config().model_dump()
    cfg["name"] = "tiny-matched-test"
    cfg["size"] = 64
    cfg["generator"].update(coord_freqs=0, position_code="ruler", position_code_amplitude=0.03,
                            position_code_band=(8, 20), hint_cells=4, hint_amplitude=0.02,
                            hint_band=(6, 16))
    cfg["localizer"].update(kind="matched")
    cfg["preprocessor"]["enabled"] = False
    cfg["discriminator"]["enabled"] = False
    from clrnet.paper.config import ModelConfig

    return ModelConfig.model_validate(cfg)


def make_photo_folder(folder: Path, n: int, size: tuple[int, int] = (80, 60), seed: int = 0) -> Path:
    """Write ``n`` small real-photo crops as JPEGs into ``folder``."""
    from skimage import data

    src = Image.fromarray(data.astronaut())
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        x, y = int(rng.integers(0, 300)), int(rng.integers(0, 300))
        src.crop((x, y, x + 200, y + 150)).resize(size).save(folder / f"p{i}.jpg", quality=95)
    return folder


def jpeg(im: Image.Image, q: int) -> Image.Image:
    """``im`` saved as JPEG at quality ``q`` by Pillow and read back (RGB)."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")
