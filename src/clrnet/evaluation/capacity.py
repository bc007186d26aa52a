"""The payload's capacity table: message bytes by working level and kept area, and how often it
decodes after JPEG (``clrnet eval capacity``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from clrnet.attacks import real
from clrnet.attacks.real import _via_format
from clrnet.core.geometry import FULL_FRAME
from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.evaluation.protocol import sample_box_in_bin
from clrnet.evaluation.tables import markdown_table
from clrnet.files.datasets import list_images
from clrnet.models.designed import Protector

CAPACITY_LEVELS = (256, 512, 768, 1024, 2048)


CAPACITY_AREAS = (0.25, 0.5, 1.0)


CAPACITY_PATHS = (("JPEG 90", 90, 1.0), ("JPEG 80", 80, 1.0), ("JPEG 70", 70, 1.0),
                  ("¾ size, JPEG 80", 80, 0.75), ("½ size, JPEG 80", 80, 0.5))


def capacity_table(model: Protector, folder: str | Path, limit: int = 8, seed: int = 0,
                   progress: bool = True) -> list[dict[str, object]]:
    """How much the payload carries and how often it arrives intact: for photos whose
    long side is each of ``CAPACITY_LEVELS`` (3:2, resized from ``folder``), a crop
    keeping each of ``CAPACITY_AREAS`` (anywhere, seeded), through each of
    ``CAPACITY_PATHS``, the share of crops whose payload decodes (CRC-checked) at
    the true box. One row per level and area: message bytes, bits, and the shares."""
    from tqdm import tqdm

    from clrnet.sync.frame import working_size

    paths = list_images(folder)[:limit]
    rows: list[dict[str, object]] = []
    bar = tqdm(total=len(CAPACITY_LEVELS) * len(paths), desc="capacity", disable=not progress)
    hits = {(lv, a, p[0]): 0 for lv in CAPACITY_LEVELS for a in CAPACITY_AREAS for p in CAPACITY_PATHS}
    for lv in CAPACITY_LEVELS:
        w, h = (lv, lv) if lv == 256 else (lv, round(lv * 2 / 3))
        for pi, path in enumerate(paths):
            rng = np.random.default_rng([seed, lv, pi])
            im = Image.open(path).convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
            prot = tensor_to_pil(model.protect(pil_to_tensor(im)))
            for area in CAPACITY_AREAS:
                box = FULL_FRAME if area == 1.0 else sample_box_in_bin(rng, max(w, h), area, area + 0.02)
                for name, q, scale in CAPACITY_PATHS:
                    part = real.crop(prot, box)
                    if scale != 1.0:
                        part = part.resize((max(8, round(part.width * scale)), max(8, round(part.height * scale))),
                                           Image.Resampling.BICUBIC)
                    d = model.decode(pil_to_tensor(_via_format(part, "JPEG", quality=q)), box)
                    hits[(lv, area, name)] += d is not None and d.message is not None
            bar.update(1)
        layout = model.layout(*working_size(w, h))
        for area in CAPACITY_AREAS:
            row: dict[str, object] = {"long side": lv, "kept area": area,
                                      "message bytes": model.plan(layout).message,
                                      "coded bits / tile": layout.n_bits, "blocks per bit": layout.reps}
            for name, _, _ in CAPACITY_PATHS:
                row[name] = hits[(lv, area, name)] / max(len(paths), 1)
            rows.append(row)
    bar.close()
    return rows


def format_capacity(rows: list[dict[str, object]], photos: int, source: str) -> str:
    """The capacity table as Markdown."""
    return markdown_table(rows, f"### payload capacity: {photos} photos from {source}, share decoded at the true box")
