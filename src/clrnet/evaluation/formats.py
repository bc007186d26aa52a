"""How well the protection survives its own output formats (``clrnet eval --formats``).

Each photo is protected, written in each output format exactly as ``clrnet
protect`` writes it, and read back. Then: its PSNR against the original, the
file's bits per pixel, whether ``inspect`` finds the protection and calls the
whole photo "not cropped", and, for one crop per survival bin (25-45, 45-65,
65-85 % of the area) sent on through JPEG 80 as an attacker's copy would be,
whether it is called cropped, the box's IoU and (protection v2) whether the
payload decodes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from clrnet.api import Model, get_model, inspect, protect
from clrnet.attacks import real
from clrnet.core.geometry import box_iou
from clrnet.core.image import pil_to_tensor
from clrnet.core.metrics import psnr
from clrnet.evaluation.protocol import SURVIVAL_BINS, sample_box_in_bin
from clrnet.files.datasets import list_images
from clrnet.files.formats import OutputFormat, save_photo
from clrnet.files.imageio import open_image

TABLE_FORMATS = (OutputFormat("png"), OutputFormat("tiff"), OutputFormat("webp"), OutputFormat("jpeg", 95),
                 OutputFormat("webp", 95), OutputFormat("jpeg", 90), OutputFormat("webp", 90),
                 OutputFormat("jpeg", 85), OutputFormat("jpeg", 75))


def format_table(model: Model | str | None, folder: str | Path, limit: int | None = None, seed: int = 0,
                 formats: tuple[OutputFormat, ...] = TABLE_FORMATS, progress: bool = True) -> list[dict[str, object]]:
    """One row per format: means over the photos of ``folder`` (and their crops)."""
    from tqdm import tqdm

    m = get_model(model)
    paths = list_images(folder)[:limit]
    if not paths:
        raise FileNotFoundError(f"{folder}: no photos")
    acc: dict[str, dict[str, list[float]]] = {f.label: {k: [] for k in ("bpp", "psnr", "found", "whole", "det", "iou", "payload")}
                                              for f in formats}
    bar = tqdm(total=len(paths) * len(formats), desc="formats", disable=not progress)
    with tempfile.TemporaryDirectory() as tmp:
        for pi, path in enumerate(paths):
            original = open_image(path)
            prot = protect(original, m)
            rng = np.random.default_rng([seed, pi])
            boxes = [sample_box_in_bin(rng, max(original.size), lo, hi) for lo, hi in SURVIVAL_BINS.values()]
            for fmt in formats:
                f = Path(tmp) / f"p{fmt.suffix}"
                save_photo(prot, f, fmt)
                received = open_image(f)
                a = acc[fmt.label]
                a["bpp"].append(8 * f.stat().st_size / (original.size[0] * original.size[1]))
                a["psnr"].append(psnr(pil_to_tensor(received), pil_to_tensor(original)))
                whole = inspect(received, m)
                a["found"].append(float(whole.protected is not False))
                a["whole"].append(float(not whole.cropped))
                for box in boxes:
                    got = inspect(real.jpeg(real.crop(received, box), 80), m)
                    a["det"].append(float(got.cropped))
                    a["iou"].append(box_iou(got.box, box))
                    if got.payload is not None:
                        a["payload"].append(float(got.payload))
                bar.update(1)
    bar.close()
    return [{"format": label, "bits/pixel": float(np.mean(v["bpp"])), "PSNR dB": float(np.mean(v["psnr"])),
             "protection found": float(np.mean(v["found"])), "whole photo: not cropped": float(np.mean(v["whole"])),
             "crop + JPEG 80: detected": float(np.mean(v["det"])), "IoU": float(np.mean(v["iou"])),
             "payload decoded": float(np.mean(v["payload"])) if v["payload"] else "—"}
            for label, v in acc.items()]
