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

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from clrnet.attacks import real
from clrnet.attacks.real import REAL_ATTACKS, _via_format
from clrnet.core.geometry import FULL_FRAME, Box, box_area, box_iou, box_mask
from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.core.metrics import mask_f1, mean_ci, psnr, ssim
from clrnet.evaluation.baselines import inpaint_biharmonic
from clrnet.evaluation.protocol import (
    PROTOCOL_ATTACKS,
    SURVIVAL_BINS,
    UNCROPPED,
    Sample,
    detection_accuracy,
    sample_box_in_bin,
)
from clrnet.files.datasets import list_images, load_square
from clrnet.paper.inference import inspect_native
from clrnet.paper.model import CLRNet


@dataclass
class Row(Sample):
    """One inspected sample of the paper's model."""

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


