"""Tables, plots and figures of an evaluation, in the papers' layout.

``PAPER_TABLE_I`` holds the CLR-Net journal paper's Table I (its own datasets:
CelebA, MS-COCO and Flickr for the three bins, 256x256, its own attacks'
parameters), so our numbers can stand beside it; they are not the same
photos, so read the comparison as orientation, not as a paired test.
"""

from __future__ import annotations

import math
from pathlib import Path

from clrnet.core.geometry import box_mask
from clrnet.core.metrics import mean_ci
from clrnet.evaluation.protocol import SURVIVAL_BINS, detection_accuracy
from clrnet.evaluation.tables import ATTACK_LABELS, _save_fig
from clrnet.paper.evaluation import Evaluation, Row

_T1_ATTACKS = ["jpeg90", "jpeg70", "jpeg50", "jpeg10", "scale150", "scale125", "scale75", "median",
               "contrast", "dropout", "none"]
_T1 = {  # bin -> metric -> values in _T1_ATTACKS order (journal Table I)
    "[0.50,0.65]": {"F1": [0.955, 0.940, 0.921, 0.557, 0.956, 0.933, 0.947, 0.935, 0.827, 0.864, 0.980],
                    "PSNR": [26.50, 24.55, 23.40, 12.42, 25.74, 25.46, 26.13, 26.61, 22.47, 23.39, 27.77],
                    "SSIM": [0.790, 0.753, 0.719, 0.273, 0.797, 0.770, 0.814, 0.816, 0.701, 0.710, 0.829]},
    "[0.65,0.80]": {"F1": [0.968, 0.970, 0.951, 0.588, 0.963, 0.970, 0.956, 0.941, 0.912, 0.920, 0.986],
                    "PSNR": [27.46, 27.30, 22.20, 13.41, 26.34, 24.94, 25.75, 26.34, 23.04, 25.46, 30.77],
                    "SSIM": [0.866, 0.854, 0.707, 0.324, 0.801, 0.767, 0.769, 0.755, 0.731, 0.789, 0.905]},
    "[0.80,1.00]": {"F1": [0.982, 0.979, 0.965, 0.662, 0.970, 0.958, 0.969, 0.947, 0.901, 0.885, 0.990],
                    "PSNR": [29.70, 27.55, 25.92, 11.87, 27.69, 27.62, 29.29, 26.80, 26.62, 22.09, 32.45],
                    "SSIM": [0.844, 0.819, 0.774, 0.265, 0.853, 0.846, 0.849, 0.811, 0.772, 0.740, 0.850]},
}
PAPER_TABLE_I: dict[str, dict[str, dict[str, float]]] = {
    b: {m: dict(zip(_T1_ATTACKS, v)) for m, v in ms.items()} for b, ms in _T1.items()}
# Journal Table IV, row "w/o anti-cropping protection" (JPEG 70, r_c = 0.7): F1, PSNR, SSIM.
PAPER_TABLE_IV_NO_PROTECTION = {"MS-COCO": (0.435, 18.13, 0.585), "Flicker": (0.393, 15.46, 0.374)}
PAPER_PROTECTED_PSNR_256 = "32.24-33.23 dB (journal Table II, 256x256, JPEG format)"
PAPER_DETECTION_ACCURACY = 0.9541  # journal Sec. V, including false alarms on uncropped photos


def _cell(rows: list[Row], attack: str, bin_name: str, protected: bool = True) -> list[Row]:
    return [r for r in rows if r.attack == attack and r.bin == bin_name and r.protected == protected]


def _pm(mean: float, ci: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if math.isnan(ci) else f"{mean:.{digits}f} ± {ci:.{digits}f}"


def _fmt(values: list[float], digits: int, ci: bool = False) -> str:
    """Mean of ``values`` (NaNs dropped), with its 95 % CI if ``ci``."""
    m, c = mean_ci(values)
    return _pm(m, c if ci else float("nan"), digits)


def paper_table(ev: Evaluation, attacks: list[str]) -> str:
    """Journal Table I's layout: rows = survival bin x (F1, PSNR, SSIM of the whole
    recovered photo), columns = attacks; each cell 'ours (paper)'."""
    head = "| kept side | metric | " + " | ".join(ATTACK_LABELS.get(a, a) for a in attacks) + " |"
    lines = [head, "|" + "---|" * (len(attacks) + 2)]
    for bin_name in SURVIVAL_BINS:
        for metric, field, digits in (("F1", "f1", 3), ("PSNR", "psnr_recovered", 2), ("SSIM", "ssim_recovered", 3)):
            cells = []
            for a in attacks:
                ours = _fmt([getattr(r, field) for r in _cell(ev.rows, a, bin_name)], digits)
                paper = PAPER_TABLE_I.get(bin_name, {}).get(metric, {}).get(a)
                cells.append(ours if paper is None else f"{ours} ({paper:.{digits}f})")
            label = bin_name if metric == "F1" else ""
            lines.append(f"| {label} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detail_table(ev: Evaluation, attacks: list[str]) -> str:
    """Per attack (all bins): detection, localisation and cut-away recovery against the
    baselines, with 95 % confidence intervals."""
    lines = ["| attack | detection (even mix) | false alarms | F1 (whole-frame F1) | IoU "
             "| cut-away PSNR | inpainting | w/o protection: F1, cut-away PSNR |",
             "|---|---|---|---|---|---|---|---|"]
    for a in attacks:
        prot = [r for r in ev.rows if r.attack == a and r.protected]
        crops = [r for r in prot if r.cropped]
        base = [r for r in ev.rows if r.attack == a and not r.protected and r.cropped]
        fa = _fmt([float(r.predicted_cropped) for r in prot if not r.cropped], 3)
        lines.append(
            f"| {ATTACK_LABELS.get(a, a)} | {_pm(*detection_accuracy(prot), 3)} "
            f"| {fa} | {_fmt([r.f1 for r in crops], 3, ci=True)} ({_fmt([r.f1_whole_frame for r in crops], 3)}) "
            f"| {_fmt([r.iou for r in crops], 3, ci=True)} | {_fmt([r.psnr_cut for r in crops], 2, ci=True)} "
            f"| {_fmt([r.psnr_cut_inpaint for r in crops], 2, ci=True)} "
            f"| {_fmt([r.f1 for r in base], 3)}, {_fmt([r.psnr_cut for r in base], 2)} |")
    return "\n".join(lines)


def report_markdown(ev: Evaluation, attacks: list[str], title: str) -> str:
    """The whole evaluation as Markdown: dataset facts, Table I layout, per-attack details."""
    pd = ev.per_dataset
    never = [float(r.predicted_cropped) for r in ev.rows if not r.protected and not r.cropped]
    jpeg70_base = [r for r in ev.rows if r.attack == "jpeg70" and not r.protected and r.bin == "[0.65,0.80]"]
    parts = [
        f"## {title}", "",
        f"- photos: {int(pd['photos'])}; protected PSNR {pd['protected_psnr']:.2f} dB, SSIM "
        f"{pd['protected_ssim']:.3f} (paper: {PAPER_PROTECTED_PSNR_256})",
        f"- false alarms on photos never protected: {pd['never_protected_false_alarm']:.3f} as they are, "
        f"{mean_ci(never)[0]:.3f} after each attack",
        f"- detection accuracy (even mix, all attacks): "
        f"{detection_accuracy([r for r in ev.rows if r.protected])[0]:.3f} (paper: {PAPER_DETECTION_ACCURACY})",
    ]
    if jpeg70_base:
        parts.append(
            f"- w/o protection, JPEG 70, kept side [0.65, 0.80]: F1 {_fmt([r.f1 for r in jpeg70_base], 3)}, "
            f"PSNR {_fmt([r.psnr_recovered for r in jpeg70_base], 2)}, SSIM "
            f"{_fmt([r.ssim_recovered for r in jpeg70_base], 3)} (paper Table IV, r_c = 0.7: "
            + ", ".join(f"{k} {v[0]}/{v[1]}/{v[2]}" for k, v in PAPER_TABLE_IV_NO_PROTECTION.items()) + ")")
    parts += ["", "### Table I layout: ours (paper); PSNR and SSIM of the whole recovered photo", "",
              paper_table(ev, attacks), "",
              "### Per attack, all bins (mean ± 95 % CI); cut-away PSNR in dB, baselines given the true box",
              "", detail_table(ev, attacks), ""]
    return "\n".join(parts)


def plot_curves(ev: Evaluation, attacks: list[str], path: Path) -> None:
    """Mask F1 and cut-away PSNR against the kept side ratio, one line per attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centers = {b: (math.sqrt(lo) + math.sqrt(hi)) / 2 for b, (lo, hi) in SURVIVAL_BINS.items()}
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    for a in attacks:
        xs = list(centers.values())
        for ax, field in zip(axes, ("f1", "psnr_cut", "psnr_recovered")):
            ys = [mean_ci([getattr(r, field) for r in _cell(ev.rows, a, b)])[0] for b in centers]
            ax.plot(xs, ys, marker="o", label=ATTACK_LABELS.get(a, a))
    inp = [mean_ci([r.psnr_cut_inpaint for r in ev.rows if r.bin == b and r.protected])[0] for b in centers]
    axes[1].plot(list(centers.values()), inp, "k--", linewidth=2, label="inpainting (true box)")
    for ax, title in zip(axes, ("crop-mask F1", "cut-away PSNR (dB)", "whole recovered PSNR (dB)")):
        ax.set_xlabel("kept side ratio sqrt(r_c), bin centre")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save_fig(fig, path)
    plt.close(fig)


def figure_grid(ev: Evaluation, path: Path) -> None:
    """Like journal Fig. 7: original, protected, residual x10, attacked, predicted mask, recovered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = ev.figure_samples
    if not samples:
        return
    cols = ["original", "protected", "residual x10", "received", "predicted mask", "recovered"]
    fig, axes = plt.subplots(len(samples), 6, figsize=(15, 2.7 * len(samples)), squeeze=False)
    for row, s in zip(axes, samples):
        n = s["original"].shape[-1]
        resid = ((s["protected"] - s["original"]) * 10 + 0.5).clamp(0, 1)
        pred = box_mask(s["pred_box"], n, n)
        imgs = [s["original"], s["protected"], resid, s["received"], pred, s["recovered"]]
        for ax, im, title in zip(row, imgs, cols):
            arr = im.numpy() if im.dim() == 2 else im.permute(1, 2, 0).clamp(0, 1).numpy()
            ax.imshow(arr, cmap="gray" if im.dim() == 2 else None, vmin=0, vmax=1)
            ax.set_title(f"{title}" + (f" ({s['image']})" if title == "original" else ""), fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    _save_fig(fig, path)
    plt.close(fig)


CELL_METRICS = ["predicted_cropped", "f1", "f1_whole_frame", "iou", "psnr_recovered", "ssim_recovered",
                "psnr_cut", "ssim_cut", "psnr_cut_zero", "psnr_cut_inpaint", "ssim_cut_inpaint"]


def cells_csv(ev: Evaluation, attacks: list[str]) -> str:
    """Every (attack, bin, with/without protection) cell: sample count, then mean and 95 % CI
    half-width of each metric."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["attack", "bin", "protected", "n"] + [f"{m}{s}" for m in CELL_METRICS for s in ("", "_ci")])
    bins = [*SURVIVAL_BINS, "uncropped"]
    for a in attacks:
        for b in bins:
            for prot in (True, False):
                rows = _cell(ev.rows, a, b, prot)
                if not rows:
                    continue
                vals: list[object] = [a, b, prot, len(rows)]
                for m in CELL_METRICS:
                    mean, ci = mean_ci([float(getattr(r, m)) for r in rows])
                    vals += [round(mean, 5), round(ci, 5)]
                w.writerow(vals)
    return buf.getvalue()


def write_report(ev: Evaluation, attacks: list[str], out: Path, title: str) -> str:
    """Write report.md, results.csv, cells.csv, curves.png and figure.png into ``out``;
    return the Markdown."""
    from clrnet.evaluation.protocol import write_rows
    from clrnet.files.imageio import write_text_atomic

    text = report_markdown(ev, attacks, title)
    write_text_atomic(text + "\n", out / "report.md")
    write_rows(ev.rows, out / "results.csv")
    write_text_atomic(cells_csv(ev, attacks), out / "cells.csv")
    plot_curves(ev, attacks, out / "curves.png")
    figure_grid(ev, out / "figure.png")
    return text

