"""Evaluation protocol: real attacks on protected photos, metrics per image.

Each photo is brought to the model's native size, protected, saved as 8-bit
PNG and read back; cropped with seeded random boxes in survival-rate bins (the
kept side ratio sqrt(r_c) in [0.50, 0.65], [0.65, 0.80], [0.80, 1.00], the
papers' Table I rows) and also left uncropped; post-processed with a *real*
operation, saved in that operation's real format and read back; inspected.
The same boxes serve every attack (paired comparisons). In the same run:
the photos *without* protection through the same inspection ("w/o
protection", journal Table IV), zero-fill and classical (biharmonic)
inpainting of the cut-away region given the true box, and the trivial "whole
frame" answer for the mask F1.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from .attacks import real
from .data import list_images, load_square, pil_to_tensor, tensor_to_pil
from .geometry import FULL_FRAME, Box, box_area, box_iou, box_mask, sample_crop_box
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
    "scale70": _png(lambda im, s: real.rescale(im, 0.70)),
    "scale50": _png(lambda im, s: real.rescale(im, 0.50)),
    "median": _png(lambda im, s: real.median_blur(im, 3)),
    "gaussian": _png(lambda im, s: real.gaussian_blur(im, 1.0)),
    "noise": _png(lambda im, s: real.awgn(im, 0.02, seed=s)),
    "dropout": _png(lambda im, s: real.pixel_dropout(im, 0.05, seed=s)),
    "contrast": _png(lambda im, s: real.contrast(im, 1.3)),
    "brightness": _png(lambda im, s: real.brightness(im, 20)),
    "jpeg80+resize": lambda im, s: _via_format(real.rescale(im, 0.8), "JPEG", quality=80),
}


# The papers' crop bins: kept side ratio sqrt(r_c) ranges, as ranges of the kept area r_c.
SURVIVAL_BINS: dict[str, tuple[float, float]] = {
    "[0.50,0.65]": (0.50 ** 2, 0.65 ** 2),
    "[0.65,0.80]": (0.65 ** 2, 0.80 ** 2),
    "[0.80,1.00]": (0.80 ** 2, 1.0),
}
UNCROPPED = "uncropped"
# Journal Table I's attacks first, in its column order, then the others of the protocol.
PROTOCOL_ATTACKS = ["jpeg90", "jpeg70", "jpeg50", "jpeg10", "scale150", "scale125", "scale75", "median",
                    "contrast", "dropout", "none", "jpeg80", "gaussian", "noise", "brightness",
                    "jpeg80+resize"]
QUICK_ATTACKS = ["jpeg70", "none"]


@dataclass
class Row:
    """One inspected sample. ``protected`` is False for the "w/o protection" baseline."""

    image: str
    attack: str
    bin: str
    protected: bool
    cropped: bool
    kept_area: float
    predicted_cropped: bool
    score: float
    found_protection: bool | None
    f1: float
    f1_whole_frame: float
    iou: float
    psnr_recovered: float
    ssim_recovered: float
    psnr_cut: float
    ssim_cut: float
    psnr_cut_zero: float
    psnr_cut_inpaint: float
    ssim_cut_inpaint: float


@dataclass
class Evaluation:
    rows: list[Row]
    per_dataset: dict[str, float]
    figure_samples: list[dict] = field(default_factory=list)  # images for the Fig. 7-style grid


def inpaint_biharmonic(image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Classical inpainting of the cut-away region (keep == 0), scikit-image biharmonic."""
    from skimage.restoration import inpaint_biharmonic as _ib

    arr = image.permute(1, 2, 0).double().numpy()
    out = _ib(arr, (keep.numpy() < 0.5), channel_axis=-1)
    return torch.from_numpy(out).permute(2, 0, 1).float().clamp(0, 1)


def sample_box_in_bin(rng: np.random.Generator, n: int, lo: float, hi: float) -> Box:
    """A seeded crop whose kept area lies in [lo, hi] (never the whole frame)."""
    while True:
        box = sample_crop_box(rng, n, n, lo, hi)
        if box != FULL_FRAME and lo - 1e-9 <= box_area(box) <= hi + 1e-9:
            return box


def evaluate(model: CLRNet, folder: str | Path, attacks: list[str] | tuple[str, ...] = tuple(PROTOCOL_ATTACKS),
             crops_per_bin: int = 1, seed: int = 0, baselines: bool = True, progress: bool = True,
             limit: int | None = None, bins: dict[str, tuple[float, float]] | None = None,
             figure_photos: int = 4, figure_attack: str = "jpeg70") -> Evaluation:
    """Run the protocol on every photo of ``folder`` (the first ``limit``).

    Per photo and attack: ``crops_per_bin`` crops in each survival bin and one
    uncropped sample, each for the protected photo and (``baselines``) for the
    photo without protection; plus the inpainting baseline once per box.
    """
    from tqdm import tqdm

    bins = bins or SURVIVAL_BINS
    unknown = [a for a in attacks if a not in REAL_ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack {unknown[0]!r}; choose from: {', '.join(REAL_ATTACKS)}")
    paths = list_images(folder)[:limit]
    if not paths:
        raise FileNotFoundError(f"{folder}: no photos")
    n = model.size
    rows: list[Row] = []
    prot_psnr, prot_ssim, never_alarm = [], [], []
    figure: list[dict] = []
    bar = tqdm(total=len(paths) * len(attacks), desc="evaluating", disable=not progress)
    for pi, path in enumerate(paths):
        rng = np.random.default_rng([seed, pi])
        original = load_square(path, n)
        with torch.no_grad():
            prot = _via_format(tensor_to_pil(model.protect(original[None])[0]), "PNG")
        prot_t = pil_to_tensor(prot)
        prot_psnr.append(psnr(prot_t, original))
        prot_ssim.append(ssim(prot_t, original))
        never_alarm.append(float(inspect_native(model, original).cropped))
        sources = {True: prot, False: tensor_to_pil(original)} if baselines else {True: prot}
        boxes = [(name, sample_box_in_bin(rng, n, lo, hi)) for name, (lo, hi) in bins.items()
                 for _ in range(crops_per_bin)]
        inpainted: dict[Box, tuple[float, float, float]] = {}
        for attack in attacks:
            for bin_name, box in [*boxes, (UNCROPPED, FULL_FRAME)]:
                true_mask = box_mask(box, n, n)
                cut = 1 - true_mask
                has_cut = bool(cut.sum() > 0)
                if has_cut and baselines and box not in inpainted:
                    filled = inpaint_biharmonic(original * true_mask, true_mask)
                    inpainted[box] = (psnr(original * true_mask, original, cut), psnr(filled, original, cut),
                                      ssim(filled, original, cut))
                z, ip, iss = inpainted.get(box, (float("nan"),) * 3)
                sample_seed = int(rng.integers(2**31))
                for is_protected, src in sources.items():
                    received = REAL_ATTACKS[attack](real.crop(src, box), sample_seed)
                    res = inspect_native(model, pil_to_tensor(received))
                    rows.append(Row(
                        image=path.name, attack=attack, bin=bin_name, protected=is_protected,
                        cropped=has_cut, kept_area=box_area(box), predicted_cropped=res.cropped,
                        score=res.score, found_protection=res.protected,
                        f1=mask_f1(box_mask(res.box, n, n), true_mask),
                        f1_whole_frame=mask_f1(torch.ones(n, n), true_mask), iou=box_iou(res.box, box),
                        psnr_recovered=psnr(res.recovered, original),
                        ssim_recovered=ssim(res.recovered, original),
                        psnr_cut=psnr(res.recovered, original, cut),  # NaN when nothing was cut
                        ssim_cut=ssim(res.recovered, original, cut),
                        psnr_cut_zero=z, psnr_cut_inpaint=ip, ssim_cut_inpaint=iss))
                    if (is_protected and attack == figure_attack and bin_name == list(bins)[0]
                            and len(figure) < figure_photos and not any(f["image"] == path.name for f in figure)):
                        figure.append(dict(image=path.name, original=original, protected=prot_t,
                                           received=pil_to_tensor(received), box=box, pred_box=res.box,
                                           recovered=res.recovered, attack=attack))
            bar.update(1)
    bar.close()
    per_dataset = dict(protected_psnr=float(np.mean(prot_psnr)), protected_ssim=float(np.mean(prot_ssim)),
                       never_protected_false_alarm=float(np.mean(never_alarm)), photos=float(len(paths)))
    return Evaluation(rows, per_dataset, figure)


def detection_accuracy(rows: list[Row]) -> tuple[float, float]:
    """Accuracy of the crop decision on an even mix of cropped and uncropped samples
    (the mean of the two rates, so it does not depend on how many of each were drawn)."""
    hit, hit_ci = mean_ci([float(r.predicted_cropped) for r in rows if r.cropped])
    ok, ok_ci = mean_ci([float(not r.predicted_cropped) for r in rows if not r.cropped])
    if math.isnan(hit) or math.isnan(ok):
        return float("nan"), float("nan")
    return (hit + ok) / 2, 0.5 * math.hypot(hit_ci if not math.isnan(hit_ci) else 0.0,
                                            ok_ci if not math.isnan(ok_ci) else 0.0)


def summarize(rows: list[Row], per_dataset: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Means with 95 % CI of the headline numbers over the protected samples of ``rows``."""
    prot = [r for r in rows if r.protected]
    crops = [r for r in prot if r.cropped]
    uncropped = [r for r in prot if not r.cropped]
    never = [r for r in rows if not r.protected and not r.cropped]
    best_baseline = [max(r.psnr_cut_zero, r.psnr_cut_inpaint) for r in crops]
    out = {
        "protected PSNR (dB)": (per_dataset["protected_psnr"], float("nan")),
        "protected SSIM": (per_dataset["protected_ssim"], float("nan")),
        "detection accuracy (even mix)": detection_accuracy(prot),
        "false alarms, uncropped protected": mean_ci([float(r.predicted_cropped) for r in uncropped]),
        "false alarms, never protected (attacked)": mean_ci([float(r.predicted_cropped) for r in never]),
        "false alarms, never protected (as is)": (per_dataset["never_protected_false_alarm"], float("nan")),
        "mask F1": mean_ci([r.f1 for r in crops]),
        "mask F1, trivial 'whole frame'": mean_ci([r.f1_whole_frame for r in crops]),
        "box IoU": mean_ci([r.iou for r in crops]),
        "recovered PSNR, whole (dB)": mean_ci([r.psnr_recovered for r in crops]),
        "recovered SSIM, whole": mean_ci([r.ssim_recovered for r in crops]),
        "recovered PSNR, cut-away (dB)": mean_ci([r.psnr_cut for r in crops]),
        "recovered SSIM, cut-away": mean_ci([r.ssim_cut for r in crops]),
        "zero-fill PSNR, cut-away (dB)": mean_ci([r.psnr_cut_zero for r in crops]),
        "inpainting PSNR, cut-away (dB)": mean_ci([r.psnr_cut_inpaint for r in crops]),
        "best baseline PSNR, cut-away (dB)": mean_ci(best_baseline),
        "recovered - best baseline, cut-away (dB, paired)": mean_ci(
            [r.psnr_cut - b for r, b in zip(crops, best_baseline)]),
    }
    return out


def format_summary(summary: dict[str, tuple[float, float]], title: str) -> str:
    lines = [f"### {title}", "", "| metric | value | 95 % CI |", "|---|---|---|"]
    for k, (m, ci) in summary.items():
        ci_s = "" if math.isnan(ci) else f"± {ci:.3f}"
        lines.append(f"| {k} | {m:.3f} | {ci_s} |")
    return "\n".join(lines)


def write_rows(rows: "list[Row] | list[Any]", path: str | Path) -> None:
    """Per-sample results (dataclass rows of one kind: this module's, v2's, the tamper
    evaluation's) as CSV, written atomically."""
    from .files.imageio import write_text_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(asdict(rows[0])))
    w.writeheader()
    for r in rows:
        w.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(r).items()})
    write_text_atomic(buf.getvalue(), Path(path))
