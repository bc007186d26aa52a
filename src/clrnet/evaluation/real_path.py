"""The 8-MP path: photos of 8 MP and more protected at full size, cropped to 40 %, sent at 2048 px,
JPEG 85, inspected (``clrnet eval real-path``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clrnet.attacks import real
from clrnet.attacks.real import _via_format
from clrnet.core.geometry import box_iou, box_mask, resize
from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.core.metrics import psnr
from clrnet.evaluation.baselines import inpaint_biharmonic_small, inpaint_telea
from clrnet.evaluation.protocol import sample_box_in_bin
from clrnet.files.datasets import list_images
from clrnet.models.designed import Protector

MIN_PIXELS = 8_000_000


def real_path(model: Protector, folder: str | Path, seed: int = 0, area: float = 0.40, long_side: int = 2048,
              min_pixels: int = MIN_PIXELS, quality: int = 85, progress: bool = True,
              crops: int = 1) -> list[dict[str, object]]:
    """The path a large photo really takes (issue 7): protect at full resolution, crop
    to ``area`` of it (seeded), downscale to a ``long_side`` px long side, JPEG
    ``quality``; inspect. Measured at the working frame (2048 px long for these
    sizes): box IoU, cut-away PSNR, and the baselines given the true box: Telea at
    full size and biharmonic at a 256 px long side, upscaled. Photos under 8 MP are
    skipped. ``crops``: seeded crops per photo (the first is the one a single crop
    gets; a "crop" column numbers them when there are more)."""
    from tqdm import tqdm

    rows: list[dict[str, object]] = []
    paths = [p for p in list_images(folder) if math.prod(Image.open(p).size) >= min_pixels]
    for pi, path in enumerate(tqdm(paths, desc="real path", disable=not progress)):
        im = Image.open(path).convert("RGB")
        original = pil_to_tensor(im)
        prot = tensor_to_pil(model.protect(original))
        for k in range(crops):
            rng = np.random.default_rng([seed, pi] if k == 0 else [seed, pi, k])
            row = _real_path_row(model, original, prot, rng, area, long_side, quality)
            rows.append({"photo": path.name, **({"crop": k} if crops > 1 else {}), **row})
    return rows


def _real_path_row(model: Protector, original: torch.Tensor, prot: Image.Image, rng: np.random.Generator,
                   area: float, long_side: int, quality: int) -> dict[str, object]:
    """One seeded crop of :func:`real_path`: a protected photo's crop through the path, inspected."""
    from clrnet.sync.frame import working_size

    w, h = prot.size
    box = sample_box_in_bin(rng, max(w, h), area - 0.005, area + 0.005)
    part = real.crop(prot, box)
    s = min(1.0, long_side / max(part.size))
    part = part.resize((max(8, round(part.width * s)), max(8, round(part.height * s))), Image.Resampling.LANCZOS)
    received = _via_format(part, "JPEG", quality=quality)
    r = model.inspect(pil_to_tensor(received))
    fw, fh = working_size(w, h)
    ref = resize(original[None], fh, fw)[0]
    cut = 1 - box_mask(box, fh, fw)
    rec = resize(r.recovered[None], fh, fw)[0]
    keep_full = box_mask(box, h, w)
    telea = resize(inpaint_telea(original * keep_full, keep_full)[None], fh, fw)[0]
    keep = 1 - cut
    bih = inpaint_biharmonic_small(ref * keep, keep)
    row = {"size": f"{w}x{h}", "box IoU": box_iou(r.box, box) if r.protected else 0.0,
           "payload": r.decoded is not None and r.decoded.message is not None,
           "cut-away (dB)": psnr(rec, ref, cut), "Telea full size (dB)": psnr(telea, ref, cut),
           "biharmonic 256 (dB)": psnr(bih, ref, cut)}
    row["gain over best (dB)"] = row["cut-away (dB)"] - max(row["Telea full size (dB)"], row["biharmonic 256 (dB)"])
    return row


def real_path_summary(rows: list[dict[str, object]]) -> str:
    """One line over :func:`real_path`'s rows: how many crops meet each of its floors."""
    n = len(rows)
    iou = sum(float(r["box IoU"]) >= 0.95 for r in rows)  # type: ignore[arg-type]
    payload = sum(bool(r["payload"]) for r in rows)
    gain = sum(float(r["gain over best (dB)"]) >= 8.0 for r in rows)  # type: ignore[arg-type]
    return f"{n} crops: box IoU >= 0.95 on {iou}, payload decoded on {payload}, + 8 dB on {gain}"
