"""Sharing routes (``clrnet eval sharing``): a photo protected at full size, sent the way people
share it — whole or cropped (25-90 % of the area), downscaled to a messenger's long side, and
recompressed (JPEG 70-90 with 4:2:0 chroma, or WebP 80) — and inspected through the public API
without its original size, as a recipient would.

Per copy: the verdict (protected, and cropped or not, as sent), the box's IoU, whether the
payload decoded, the cut-away part against the best inpainting given the true box (crops), and
the time ``inspect`` took.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from clrnet.attacks.real import _via_format
from clrnet.core.geometry import FULL_FRAME, box_iou, box_mask, box_to_pixels, resize
from clrnet.core.image import pil_to_tensor
from clrnet.core.metrics import psnr
from clrnet.evaluation.baselines import inpaint_biharmonic_small, inpaint_telea
from clrnet.evaluation.protocol import sample_box_in_bin
from clrnet.files.datasets import bring_to, list_images
from clrnet.models.base import Model
from clrnet.sync.frame import working_size

LONG_SIDES = (2048, 1600, 1280, 1080, 960, 720)  # what messengers and feeds send
FRAME_SCALES = (0.75, 0.5, 0.4, 0.3, 0.25)  # and these shares of the working frame's long side
CROP_AREAS = (0.25, 0.9)  # a crop keeps a share of the area drawn in this range


def long_sides(width: int, height: int) -> list[int]:
    """The long sides a photo is sent at: the messengers' sizes below its own, and the shares
    of its working frame (a small photo has no messenger size below its own), nearest first
    merged where within 3 % of each other."""
    own = max(width, height)
    frame = max(working_size(width, height))
    sides = sorted({*(s for s in LONG_SIDES if s < own), *(round(f * frame) for f in FRAME_SCALES)}, reverse=True)
    out: list[int] = []
    for s in sides:
        if all(abs(s / o - 1) > 0.03 for o in out):
            out.append(s)
    return out


def send(image: Image.Image, long_side: int, codec: str, quality: int) -> Image.Image:
    """``image`` downscaled (Lanczos, as most apps) to ``long_side`` at most, then encoded as
    JPEG with 4:2:0 chroma or WebP at ``quality``, and decoded again."""
    s = min(1.0, long_side / max(image.size))
    if s < 1.0:
        image = image.resize((max(8, round(image.width * s)), max(8, round(image.height * s))),
                             Image.Resampling.LANCZOS)
    if codec == "jpeg":
        return _via_format(image, "JPEG", quality=quality, subsampling="4:2:0")
    return _via_format(image, "WEBP", quality=quality)


def sharing_rows(model: Model, folder: str | Path, limit: int | None = None, seed: int = 0,
                 progress: bool = True, sides: list[int] | None = None, size: str = "native"
                 ) -> list[dict[str, object]]:
    """Every photo of ``folder`` protected at full size, then sent whole and as one seeded crop
    at each of its long sides (``long_sides``, or ``sides``), each copy through a seeded
    codec: JPEG at a quality in 70-90 (four in five) or WebP 80. ``size``: the photos brought to
    this size first (``files.datasets.bring_to``; 'native': as they are)."""
    from tqdm import tqdm

    from clrnet.api import inspect, protect

    paths = list_images(folder)[:limit]
    rows: list[dict[str, object]] = []
    bar = tqdm(total=len(paths), desc="sharing routes", disable=not progress)
    for pi, path in enumerate(paths):
        with Image.open(path) as im:
            photo = bring_to(im.convert("RGB"), size)
        protected = protect(photo, model)
        w, h = photo.size
        frame = max(working_size(w, h))
        rng = np.random.default_rng([seed, pi])
        crop_box = sample_box_in_bin(rng, max(w, h), *CROP_AREAS)
        refs = _references(photo, crop_box)
        for side in sides or long_sides(w, h):
            for kind, box in (("whole", FULL_FRAME), ("crop", crop_box)):
                codec, quality = ("webp", 80) if rng.random() < 0.2 else ("jpeg", int(rng.integers(70, 91)))
                left, top, right, bottom = box_to_pixels(box, w, h)
                received = send(protected.crop((left, top, right, bottom)), side, codec, quality)
                t0 = time.perf_counter()
                found = inspect(received, model)
                seconds = time.perf_counter() - t0
                # the received pixels' scale against the working frame's pixel grid
                scale = received.width / (right - left) * max(w, h) / frame
                rows.append(_row(path.name, kind, side, scale, codec, quality, received, box, found, seconds,
                                 refs if kind == "crop" else None))
        bar.update(1)
    bar.close()
    return rows


def _references(photo: Image.Image, box: tuple[float, float, float, float]) -> dict[str, object]:
    """The original at its working frame, the crop's cut-away mask there, and the best
    inpainting of it given the true box (Telea at full size, biharmonic at 256 px)."""
    w, h = photo.size
    fw, fh = working_size(w, h)
    original = pil_to_tensor(photo)
    ref = resize(original[None], fh, fw)[0]
    cut = 1 - box_mask(box, fh, fw)
    keep_full = box_mask(box, h, w)
    telea = resize(inpaint_telea(original * keep_full, keep_full)[None], fh, fw)[0]
    bih = inpaint_biharmonic_small(ref * (1 - cut), 1 - cut)
    return {"ref": ref, "cut": cut, "best": max(psnr(telea, ref, cut), psnr(bih, ref, cut))}


def _row(name: str, kind: str, side: int, scale: float, codec: str, quality: int, received: Image.Image,
         box: tuple[float, float, float, float], found, seconds: float,
         refs: dict[str, object] | None) -> dict[str, object]:
    cropped = kind == "crop"
    row: dict[str, object] = {
        "photo": name, "route": kind, "long side": side, "of frame": round(scale, 3),
        "codec": f"{codec} {quality}", "received": f"{received.width}x{received.height}",
        "protected": bool(found.protected), "right verdict": bool(found.protected) and found.cropped == cropped,
        "box IoU": box_iou(found.box, box) if found.protected else 0.0,
        "payload": bool(found.payload), "inspect (s)": seconds,
    }
    row.update({"cut-away (dB)": None, "best inpainting (dB)": None, "gain (dB)": None})
    if refs is not None:
        ref, cut = refs["ref"], refs["cut"]
        rec = resize(pil_to_tensor(found.recovered_native)[None], ref.shape[-2], ref.shape[-1])[0]
        row["cut-away (dB)"] = psnr(rec, ref, cut)
        row["best inpainting (dB)"] = refs["best"]
        row["gain (dB)"] = row["cut-away (dB)"] - refs["best"]
    return row


def sharing_table(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """One line per route and long side: the share of right verdicts, mean box IoU, payload
    decoded, mean gain over the best inpainting and the share of crops within 0.5 dB of it,
    median inspect time."""
    out = []
    for kind in ("whole", "crop"):
        for side in sorted({int(r["long side"]) for r in rows if r["route"] == kind}, reverse=True):
            sel = [r for r in rows if r["route"] == kind and r["long side"] == side]
            line: dict[str, object] = {
                "route": kind, "long side": side, "of frame": float(np.mean([float(r["of frame"]) for r in sel])),
                "copies": len(sel), "right verdict": float(np.mean([r["right verdict"] for r in sel])),
                "box IoU": float(np.mean([float(r["box IoU"]) for r in sel])),
                "payload": float(np.mean([r["payload"] for r in sel])),
            }
            gains = [float(r["gain (dB)"]) for r in sel if r["gain (dB)"] is not None]
            line["gain (dB)"] = float(np.mean(gains)) if gains else "—"
            line["within 0.5 dB"] = float(np.mean([g >= -0.5 for g in gains])) if gains else "—"
            line["inspect (s)"] = float(np.median([float(r["inspect (s)"]) for r in sel]))
            out.append(line)
    return out


def sharing_figure(rows: list[dict[str, object]], path: Path) -> None:
    """Right verdicts and payloads decoded against the long side's share of the working frame,
    whole photos and crops."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clrnet.evaluation.tables import _save_fig

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, kind in zip(axes, ("whole", "crop")):
        sel = [r for r in rows if r["route"] == kind]
        # crops each have their own scale: binned to 0.05 of the frame
        bin_of = {id(r): round(float(r["of frame"]) / 0.05) * 0.05 for r in sel}
        scales = sorted(set(bin_of.values()))
        for key, colour in (("right verdict", "#4878a8"), ("payload", "#d08030")):
            ys = [np.mean([float(r[key]) for r in sel if bin_of[id(r)] == s]) for s in scales]
            ax.plot(scales, ys, "o-", color=colour, label=key)
        ax.axvline(0.3, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{kind} photo", fontsize=9)
        ax.set_xlabel("received long side / working frame", fontsize=8)
        ax.set_ylim(-0.05, 1.05)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    _save_fig(fig, path)
