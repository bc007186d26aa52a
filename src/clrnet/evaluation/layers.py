"""Crops of protected photos protected again (laundering), and photos protected twice
(``clrnet eval layers``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from clrnet.api import Inspection, Model, get_model, inspect, protect
from clrnet.attacks.real import jpeg
from clrnet.files.datasets import list_images

LAYER_PATHS = (("crop protected at its own size", False),
               ("crop upscaled (aspect kept) to the original's long side, protected", True))


def layers_table(model: Model | str | None, folder: str | Path, limit: int | None = None, seed: int = 0,
                 progress: bool = True) -> list[dict[str, object]]:
    """Laundering a crop by protecting it again (issue 8): each photo protected, cropped
    (25-80 % of the area, seeded), the crop protected again (at its own size, or
    upscaled first, aspect kept, to the original's long side), sent on as JPEG 90
    and 80, inspected (as by default, and with ``--fast``). A case counts as found
    when ``inspect`` calls it cropped with the earlier box (IoU >= 0.9 with the
    truth). And a photo protected twice without a crop: found when two protections and no crop are reported; and
    protected once: one protection, no crop (nothing invented beneath)."""
    from tqdm import tqdm

    m = get_model(model)
    fast = m.looking_beneath(False)  # inspect --fast
    paths = list_images(folder)[:limit]
    hits: dict[str, list[int]] = {}
    fast_hits: dict[str, list[int]] = {}  # the same with inspect --fast
    rng = np.random.default_rng(seed)
    bar = tqdm(total=len(paths), desc="protected twice", disable=not progress)
    for path in paths:
        with Image.open(path) as im:
            original = im.convert("RGB")
        w, h = original.size
        first = protect(original, m)
        area = rng.uniform(0.25, 0.80)
        aspect = math.exp(rng.uniform(-math.log(1.5), math.log(1.5)))
        cw = min(w, max(8, round(w * math.sqrt(area * aspect))))
        ch = min(h, max(8, round(area * h * w / cw)))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        truth = (x0 / w, y0 / h, (x0 + cw) / w, (y0 + ch) / h)
        crop = first.crop((x0, y0, x0 + cw, y0 + ch))
        for name, upscale in LAYER_PATHS:
            k = max(w, h) / max(cw, ch)  # upscaled, aspect kept, to the original's long side
            part = crop.resize((round(cw * k), round(ch * k)), Image.Resampling.BICUBIC) if upscale else crop
            second = protect(part, m)
            for q in (90, 80):
                received = jpeg(second, q)
                ok = crop_found(inspect(received, m), truth)
                hits.setdefault(f"{name}, JPEG {q}", []).append(int(ok))
                # --fast reads beneath only where the default also does, the same way: a
                # crop the default missed, it misses too
                ok = ok and fast is not None and crop_found(inspect(received, fast), truth)
                fast_hits.setdefault(f"{name}, JPEG {q}", []).append(int(ok))
        twice = protect(first, m)
        for q in (90, 80):
            for mm, table in ((m, hits), (fast, fast_hits)):
                if mm is None:
                    continue
                found = inspect(jpeg(twice, q), mm)
                ok = not found.cropped and len(found.layers or []) == 2
                table.setdefault(f"protected twice, no crop, JPEG {q}", []).append(int(ok))
                found = inspect(jpeg(first, q), mm)
                ok = not found.cropped and len(found.layers or []) == 1
                table.setdefault(f"protected once, no crop, JPEG {q}", []).append(int(ok))
        bar.update(1)
    bar.close()
    for table in (hits, fast_hits):
        table["all re-protected crops"] = [x for k, v in table.items() if not k.startswith("protected ") for x in v]
    return [{"case": k, "n": len(v), "reported as it happened": float(np.mean(v)),
             **({"with --fast": float(np.mean(fast_hits[k]))} if fast is not None else {})}
            for k, v in hits.items()]


def crop_found(found: Inspection, truth: tuple[float, float, float, float]) -> bool:
    """Called cropped, with a box within IoU 0.9 of the truth."""
    from clrnet.core.geometry import box_iou

    return bool(found.cropped) and box_iou(found.box, truth) >= 0.9
