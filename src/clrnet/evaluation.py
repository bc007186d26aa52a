"""Evaluation protocol: real attacks on protected photos, metrics per image.

Each photo is brought to the model's native size, protected, saved as 8-bit
PNG and read back; cropped (or not) with a seeded random box; post-processed
with a *real* operation and saved in that operation's real format; inspected.
Baselines are computed on the same crops: zero-fill and classical
(biharmonic) inpainting of the cut-away region given the true box, and the
trivial "whole frame" answer for the mask F1.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from .attacks import real
from .data import list_images, load_square, pil_to_tensor, tensor_to_pil
from .geometry import FULL_FRAME, Box, box_iou, box_mask, sample_crop_box
from .metrics import mask_f1, mean_ci, psnr, ssim
from .model import CLRNet
from .pipeline import inspect_native

AttackFn = Callable[[Image.Image, int], Image.Image]


def _via_format(image: Image.Image, fmt: str, **params) -> Image.Image:
    """Save in a real file format and read back, as a recipient would receive it."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out.convert("RGB")


def _jpeg(q: int) -> AttackFn:
    return lambda im, seed: _via_format(im, "JPEG", quality=q)


def _png(fn: Callable[[Image.Image, int], Image.Image]) -> AttackFn:
    return lambda im, seed: _via_format(fn(im, seed), "PNG")


# The real post-processing operations of the evaluation, by name.
REAL_ATTACKS: dict[str, AttackFn] = {
    "none": _png(lambda im, s: im),
    "jpeg90": _jpeg(90),
    "jpeg80": _jpeg(80),
    "jpeg70": _jpeg(70),
    "jpeg50": _jpeg(50),
    "jpeg10": _jpeg(10),
    "scale150": _png(lambda im, s: real.rescale(im, 1.5)),
    "scale125": _png(lambda im, s: real.rescale(im, 1.25)),
    "scale75": _png(lambda im, s: real.rescale(im, 0.75)),
    "median": _png(lambda im, s: real.median_blur(im, 3)),
    "gaussian": _png(lambda im, s: real.gaussian_blur(im, 1.0)),
    "noise": _png(lambda im, s: real.awgn(im, 0.02, seed=s)),
    "dropout": _png(lambda im, s: real.pixel_dropout(im, 0.05, seed=s)),
    "contrast": _png(lambda im, s: real.contrast(im, 1.3)),
    "brightness": _png(lambda im, s: real.brightness(im, 20)),
    "jpeg80+resize": lambda im, s: _via_format(real.rescale(im, 0.8), "JPEG", quality=80),
}


@dataclass
class Row:
    """One inspected sample."""

    image: str
    attack: str
    cropped: bool
    kept_area: float
    predicted_cropped: bool
    score: float
    f1: float
    f1_whole_frame: float
    iou: float
    psnr_recovered: float
    ssim_recovered: float
    psnr_cut: float
    psnr_cut_zero: float
    psnr_cut_inpaint: float


def inpaint_biharmonic(image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Classical inpainting of the cut-away region (keep == 0), scikit-image biharmonic."""
    from skimage.restoration import inpaint_biharmonic as _ib

    arr = image.permute(1, 2, 0).double().numpy()
    out = _ib(arr, (keep.numpy() < 0.5), channel_axis=-1)
    return torch.from_numpy(out).permute(2, 0, 1).float().clamp(0, 1)


def evaluate(model: CLRNet, folder: str | Path, attacks: list[str] = ("jpeg80",),
             crops_per_image: int = 2, min_area: float = 0.25, max_area: float = 1.0,
             seed: int = 0, baselines: bool = True, progress: bool = True,
             limit: int | None = None) -> tuple[list[Row], dict[str, float]]:
    """Run the protocol; returns per-sample rows and per-photo protection quality.

    For every photo and attack: ``crops_per_image`` cropped samples and as many
    uncropped ones (an even mix), plus the unprotected photo itself for the
    false-alarm rate on photos that were never protected.
    """
    from tqdm import tqdm

    paths = list_images(folder)[:limit]
    if not paths:
        raise FileNotFoundError(f"{folder}: no photos")
    n = model.size
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    prot_psnr, prot_ssim, never_protected_alarm = [], [], []
    todo = [(p, a) for p in paths for a in attacks]
    bar = tqdm(total=len(todo), desc="evaluating", disable=not progress)
    protected_cache: dict[Path, tuple[torch.Tensor, Image.Image]] = {}
    for path in paths:
        original = load_square(path, n)
        with torch.no_grad():
            prot = tensor_to_pil(model.protect(original[None])[0])
        prot = _via_format(prot, "PNG")
        protected_cache[path] = (original, prot)
        prot_t = pil_to_tensor(prot)
        prot_psnr.append(psnr(prot_t, original))
        prot_ssim.append(ssim(prot_t, original))
        never = inspect_native(model, original)
        never_protected_alarm.append(float(never.cropped))
    for path, attack in todo:
        original, prot = protected_cache[path]
        for k in range(2 * crops_per_image):
            is_crop = k < crops_per_image
            box: Box = FULL_FRAME
            while is_crop and box == FULL_FRAME:  # a "crop" that keeps every pixel is no crop
                box = sample_crop_box(rng, n, n, min_area, max_area)
            sample_seed = int(rng.integers(2**31))
            received = REAL_ATTACKS[attack](real.crop(prot, box), sample_seed)
            res = inspect_native(model, pil_to_tensor(received))
            true_mask = box_mask(box, n, n)
            pred_mask = box_mask(res.box, n, n)
            cut = 1 - true_mask
            has_cut = bool(cut.sum() > 0)
            z = i = float("nan")
            if has_cut and baselines:
                zero = original * true_mask
                z = psnr(zero, original, cut)
                i = psnr(inpaint_biharmonic(original * true_mask, true_mask), original, cut)
            rows.append(Row(
                image=path.name, attack=attack, cropped=is_crop,
                kept_area=(box[2] - box[0]) * (box[3] - box[1]),
                predicted_cropped=res.cropped, score=res.score,
                f1=mask_f1(pred_mask, true_mask), f1_whole_frame=mask_f1(torch.ones(n, n), true_mask),
                iou=box_iou(res.box, box),
                psnr_recovered=psnr(res.recovered, original), ssim_recovered=ssim(res.recovered, original),
                psnr_cut=psnr(res.recovered, original, cut) if has_cut else float("nan"),
                psnr_cut_zero=z, psnr_cut_inpaint=i))
        bar.update(1)
    bar.close()
    per_dataset = dict(protected_psnr=float(np.mean(prot_psnr)), protected_ssim=float(np.mean(prot_ssim)),
                       never_protected_false_alarm=float(np.mean(never_protected_alarm)),
                       photos=float(len(paths)))
    return rows, per_dataset


def summarize(rows: list[Row], per_dataset: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Means with 95 % CI of the headline numbers."""
    crops = [r for r in rows if r.cropped]
    uncropped = [r for r in rows if not r.cropped]
    best_baseline = [max(r.psnr_cut_zero, r.psnr_cut_inpaint) for r in crops if not math.isnan(r.psnr_cut)]
    out = {
        "protected PSNR (dB)": (per_dataset["protected_psnr"], float("nan")),
        "protected SSIM": (per_dataset["protected_ssim"], float("nan")),
        "detection accuracy": mean_ci([float(r.predicted_cropped == r.cropped) for r in rows]),
        "false alarms, uncropped protected": mean_ci([float(r.predicted_cropped) for r in uncropped]),
        "false alarms, never protected": (per_dataset["never_protected_false_alarm"], float("nan")),
        "mask F1": mean_ci([r.f1 for r in crops]),
        "mask F1, trivial 'whole frame'": mean_ci([r.f1_whole_frame for r in crops]),
        "box IoU": mean_ci([r.iou for r in crops]),
        "recovered PSNR, whole (dB)": mean_ci([r.psnr_recovered for r in crops]),
        "recovered SSIM, whole": mean_ci([r.ssim_recovered for r in crops]),
        "recovered PSNR, cut-away (dB)": mean_ci([r.psnr_cut for r in crops]),
        "zero-fill PSNR, cut-away (dB)": mean_ci([r.psnr_cut_zero for r in crops]),
        "inpainting PSNR, cut-away (dB)": mean_ci([r.psnr_cut_inpaint for r in crops]),
        "best baseline PSNR, cut-away (dB)": mean_ci(best_baseline),
        "recovered - best baseline, cut-away (dB, paired)": mean_ci(
            [r.psnr_cut - max(r.psnr_cut_zero, r.psnr_cut_inpaint) for r in crops
             if not math.isnan(r.psnr_cut)]),
    }
    return out


def format_summary(summary: dict[str, tuple[float, float]], title: str) -> str:
    lines = [f"### {title}", "", "| metric | value | 95 % CI |", "|---|---|---|"]
    for k, (m, ci) in summary.items():
        ci_s = "" if math.isnan(ci) else f"± {ci:.3f}"
        lines.append(f"| {k} | {m:.3f} | {ci_s} |")
    return "\n".join(lines)


def write_rows(rows: list[Row], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(r).items()})
