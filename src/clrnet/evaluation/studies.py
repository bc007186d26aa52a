"""``clrnet eval <study>``: every study by name, each one function returning its rows, its
Markdown and a figure; :func:`write_study` writes them as results.csv, report.md and figure.png."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clrnet.evaluation.tables import markdown_table, rows_csv
from clrnet.models.base import Model


@dataclass
class Options:
    """What a study is run on and how (the command's options)."""

    data: Path
    out: Path | None = None
    attacks: list[str] | None = None  # None: the study's own default
    size: str = "native"
    crops: int = 1
    seed: int = 0
    limit: int | None = None
    quick: bool = False
    summary: bool = False
    per_family: int = 40
    workers: int = 1
    pool: Path | None = None
    protected_only: bool = False
    label: str = ""  # how the model is named in titles


@dataclass
class Result:
    """A study's rows (dataclasses or dicts of one kind), its Markdown, and a function that
    draws its figure to a path (None: no figure)."""

    rows: list[Any]
    text: str
    figure: Callable[[Path], None] | None = None
    files: list[str] = field(default_factory=list)  # written by the study itself (besides the three)


@dataclass(frozen=True)
class Study:
    name: str
    help: str
    kinds: tuple[str, ...]  # the kinds of model it measures ("designed", "paper")
    run: Callable[[Model, Options], Result]


def _rows_figure(rows: list[dict[str, Any]], title: str) -> Callable[[Path], None]:
    """A figure of a table: each numeric column as bars over the rows (one panel per column)."""

    def draw(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from clrnet.evaluation.tables import _save_fig

        label_key = next(iter(rows[0]))
        cols = [k for k in rows[0] if k != label_key and all(isinstance(r.get(k), (int, float)) for r in rows)][:6]
        labels = [str(r[label_key])[:40] for r in rows]
        fig, axes = plt.subplots(1, max(1, len(cols)), figsize=(4 * max(1, len(cols)), 0.35 * len(rows) + 1.5),
                                 squeeze=False)
        for ax, col in zip(axes[0], cols):
            ax.barh(range(len(rows)), [float(r[col]) for r in rows], color="#4878a8")
            ax.set_yticks(range(len(rows)), labels if ax is axes[0][0] else [""] * len(rows), fontsize=7)
            ax.invert_yaxis()
            ax.set_title(str(col), fontsize=8)
        fig.suptitle(title, fontsize=9)
        _save_fig(fig, path)

    return draw


def _dict_result(rows: list[dict[str, Any]], title: str, digits: int) -> Result:
    return Result(rows, markdown_table(rows, title, digits) if rows else f"{title}\n\n(no rows)\n",
                  _rows_figure(rows, title.lstrip("# ")) if rows else None)


def _attacks(o: Options, default: list[str]) -> list[str]:
    from clrnet.attacks.real import REAL_ATTACKS
    from clrnet.evaluation.protocol import QUICK_ATTACKS

    attacks = list(o.attacks) if o.attacks else (QUICK_ATTACKS if o.quick else default)
    bad = [a for a in attacks if a not in REAL_ATTACKS]
    if bad:
        raise ValueError(f"unknown attack {bad[0]!r}; choose from: {', '.join(REAL_ATTACKS)}")
    return attacks


def _limit(o: Options, quick: int = 2) -> int | None:
    return quick if o.quick else o.limit


def crops_study(m: Model, o: Options, default: list[str] | None = None) -> Result:
    """The papers' protocol on the designed model: protect, crop in survival bins, attack for
    real, inspect; a summary per attack and, for several, one table of them all."""
    from clrnet.evaluation.crops import attack_table, evaluate_v2, figure_v2, summary_v2

    t0 = time.time()
    attacks = _attacks(o, default or ["jpeg80"])
    samples: list[dict] = []
    every, per = evaluate_v2(m, o.data, attacks, size=o.size, crops_per_bin=o.crops, seed=o.seed, limit=_limit(o),
                             figure=samples if o.out else None, never_protected=not o.protected_only)
    head = (f"{o.data.name}: {m.name}, size {o.size}, {int(per['photos'])} photos, {o.crops} crop(s) per bin, "
            f"seed {o.seed}, {time.time() - t0:.0f} s")
    text = []
    for a in attacks:
        lines = [f"### {head}, attack {a}\n", "| metric | value |\n|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in summary_v2([r for r in every if r.attack == a], per)]
        text.append("\n".join(lines) + "\n")
    if len(attacks) > 1:
        text.append(markdown_table(attack_table(every), f"### {head}: every attack", 3) + "\n")
    return Result(every, "\n".join(text), (lambda path: figure_v2(samples, path)) if samples else None)


def attacks_study(m: Model, o: Options) -> Result:
    """:func:`crops_study` over every attack of the protocol (the papers' 16)."""
    from clrnet.evaluation.protocol import PROTOCOL_ATTACKS

    return crops_study(m, o, PROTOCOL_ATTACKS)


def tamper_study(m: Model, o: Options) -> Result:
    """Edits (splicing, copy-move, inpainting) of protected photos under attacks, in Imuge+'s
    Table 4 and 5 layouts and per edit operation."""
    from clrnet.evaluation.tamper import by_edit, table4, table5, tamper_figure, tamper_rows

    t0 = time.time()
    cases: list = []
    rows = tamper_rows(m, o.data, o.size, list(o.attacks) if o.attacks else None, _limit(o), o.seed, keep=cases)
    photos = len({r.image for r in rows})
    head = (f"{o.data.name}: {m.name}, {photos} photos at {o.size}, one edit (5-40 % of the area) and one "
            f"unedited copy per photo and attack, seed {o.seed}")
    text = "\n\n".join([
        markdown_table(table4(rows), f"### {head}: per attack, ours (Imuge+, MS-COCO, Table 4)"),
        markdown_table(table5(rows), "### by tampering rate and edit class, all attacks (Imuge+ Table 5 layout)"),
        markdown_table(by_edit(rows), "### by edit operation, all attacks", 3),
    ]) + f"\n\n({time.time() - t0:.0f} s)\n"

    def figure(path: Path) -> None:
        from clrnet.files.imageio import save_atomic

        save_atomic(tamper_figure(cases), path)

    return Result(rows, text, figure if cases else None)


def false_alarms_study(m: Model, o: Options) -> Result:
    """Never-protected images (``--data`` is the datasets root, plus synthetic hard cases):
    how often each is called protected or cropped."""
    from clrnet.evaluation.false_alarms import false_alarms

    t0 = time.time()
    if o.workers < 1:
        raise ValueError(f"--workers {o.workers}: must be at least 1")
    rows = false_alarms(m, o.data, o.per_family, 4 if o.quick else o.limit, workers=o.workers)
    return _dict_result(rows, f"### never-protected images: {o.label or m.name}, {o.per_family} per synthetic "
                              f"family (as made and JPEG 80), photos of {o.data} ({time.time() - t0:.0f} s)", 4)


def formats_study(m: Model, o: Options) -> Result:
    """How the protection survives each output format of ``protect`` (whole photo, and
    crops + JPEG 80)."""
    from clrnet.evaluation.formats import format_table

    t0 = time.time()
    rows = format_table(m, o.data, _limit(o), o.seed)
    return _dict_result(rows, f"### {o.data.name}: {o.label or m.name}, each output format of `protect`, "
                              f"{time.time() - t0:.0f} s", 3)


def layers_study(m: Model, o: Options) -> Result:
    """Crops of protected photos protected again (laundering), and photos protected twice."""
    from clrnet.evaluation.layers import layers_table

    t0 = time.time()
    rows = layers_table(m, o.data, _limit(o), o.seed)
    return _dict_result(rows, f"### protected again: {m.name}, photos of {o.data} ({time.time() - t0:.0f} s)", 3)


def security_study(m: Model, o: Options) -> Result:
    """What removing the protection costs an attacker: the public pattern subtracted, and
    averaging N photos of one key."""
    from clrnet.evaluation.security import AVERAGING_N, security_table

    t0 = time.time()
    pool = o.pool or o.data.parent.parent / "train"
    ns = (10, 30) if o.quick else AVERAGING_N
    rows = security_table(m, o.data, pool, targets=2 if o.quick else (o.limit or 8), ns=ns, seed=o.seed)
    return _dict_result(rows, f"### attacks on the protection: {m.name}, targets from {o.data}, averaging pool "
                              f"{pool} ({time.time() - t0:.0f} s)", 3)


def passive_study(m: Model, o: Options) -> Result:
    """The passive detector (never-protected photos) in the PSCC-Net paper's protocol, beside
    ELA, NOI1 and the protection's own tamper map."""
    from clrnet.evaluation.passive import PAPER, passive_figure, run_passive

    columns = list(o.attacks) if o.attacks else (["none", "jpeg80"] if o.quick else None)
    rows, cases, seconds = run_passive(m, o.data, columns, o.seed, 2 if o.quick else o.limit)
    title = f"### passive detection: {o.data} ({seconds:.0f} s)"
    paper = "\n".join(f"- {k}: {v}" for k, v in PAPER.items())
    text = markdown_table(rows, title, 3) + "\nThe paper's numbers (its own data and GPU training):\n" + paper + "\n"
    return Result(rows, text, lambda path: passive_figure(cases, path))


def passive_ablation_study(m: Model, o: Options) -> Result:
    """The passive detector's ablation from its training runs at a matched step (Table 4)."""
    from clrnet.evaluation.passive_ablation import STEP, ablation_figure, ablation_rows

    step = o.limit or STEP
    rows = ablation_rows(o.data, step)
    title = f"### passive ablation: {o.data}, validation at step {step}"
    return Result(rows, markdown_table(rows, title, 4), lambda path: ablation_figure(o.data, path))


def paper_jpeg_study(m: Model, o: Options) -> Result:
    """FG-JPEG's tables: the QF predictor on real JPEGs, the simulators' fidelity to real JPEG
    (Fig. 13) and the paper's model trained with each simulator (Table IV)."""
    from clrnet.paper.fgjpeg.ablation import PAPER_TABLE_IV
    from clrnet.paper.fgjpeg.evaluation import ablation_rows, fidelity_figure, fidelity_rows, predictor_rows
    from clrnet.paper.fgjpeg.weights import load_generator, load_predictor, shipped, shipped_predictor

    limit = 2 if o.quick else o.limit
    net = load_predictor(shipped_predictor())
    generator = load_generator(shipped("fg-jpeg"))
    rows = predictor_rows(o.data, net, limit=limit)
    fid = fidelity_rows(o.data, {"fg": generator, "fg-plain": load_generator(shipped("fg-jpeg-plain"))}, net,
                        limit=limit)
    abl = ablation_rows(o.data, limit=limit)
    paper = [{"setting": name, "MS-COCO F1 / PSNR / SSIM": " / ".join("-" if v is None else str(v) for v in coco),
              "Flicker F1 / PSNR / SSIM": " / ".join("-" if v is None else str(v) for v in flickr)}
             for name, coco, flickr in PAPER_TABLE_IV.values()]
    text = "\n\n".join([
        markdown_table(rows, f"### FG-JPEG's QF predictor: real Pillow JPEGs (4:2:0) of {o.data}/test, each photo at "
                             "its own size", 3),
        markdown_table(fid, "### Simulators against real JPEG (Fig. 13): PSNR (dB) of each 8-bit output against "
                            "Pillow's JPEG at the same quality; QF accuracy: the predictor on the outputs at "
                            "10/30/50/70/90/100 (the paper: FG-JPEG 93.17 %, Diff-JPEG 72.48 %)", 3),
        markdown_table(abl, "### Table IV, simulator rows: the paper's model (small config, 400 steps) trained with "
                            "each JPEG simulator, inspected after real JPEG; crops of the three survival bins", 3),
        markdown_table(paper, "### The paper's Table IV (JPEG 70, r_c = 0.7), for comparison", 3),
    ])
    every = ([{"table": "predictor", **r} for r in rows] + [{"table": "fidelity", **r} for r in fid]
             + [{"table": "ablation", **r} for r in abl])
    return Result(every, text, lambda path: fidelity_figure(o.data, generator, path))


def capacity_study(m: Model, o: Options) -> Result:
    """The payload's capacity by working level and kept area, and how often it decodes."""
    from clrnet.evaluation.capacity import capacity_table, format_capacity

    n = o.limit or (2 if o.quick else 8)
    rows = capacity_table(m, o.data, n, o.seed)
    return Result(rows, format_capacity(rows, n, o.data.name), _rows_figure(rows, f"capacity: {o.data.name}"))


def real_path_study(m: Model, o: Options) -> Result:
    """Photos of 8 MP and more through protect, crop 40 %, downscale to 2048 px, JPEG 85."""
    from clrnet.evaluation.real_path import real_path, real_path_summary

    rows = real_path(m, o.data, o.seed, crops=o.crops)
    if not rows:
        raise ValueError(f"{o.data}: no photos of 8 megapixels or more")
    res = _dict_result(rows, f"### {o.data.name}: {m.name}, protect at full size, crop 40 %, 2048 px, JPEG 85", 3)
    res.text += "\n" + real_path_summary(rows)
    return res


def sharing_study(m: Model, o: Options) -> Result:
    """Photos sent the way people share them: whole and cropped, downscaled to a messenger's
    long side, JPEG 70-90 (4:2:0) or WebP 80; inspected without the original size."""
    from clrnet.evaluation.sharing import sharing_figure, sharing_rows, sharing_table

    t0 = time.time()
    rows = sharing_rows(m, o.data, _limit(o), o.seed, size=o.size)
    if not rows:
        raise ValueError(f"{o.data}: no photos")
    photos = len({r["photo"] for r in rows})
    text = markdown_table(sharing_table(rows), f"### {o.data.name}: {m.name}, {photos} photos protected at {o.size} "
                                               f"size, sent whole and as one crop (25-90 %) at each long side, "
                                               f"seed {o.seed} ({time.time() - t0:.0f} s)", 3)
    return Result(rows, text, lambda path: sharing_figure(rows, path))


def paper_study(m: Model, o: Options) -> Result:
    """The paper's model in the papers' protocol: Table I's layout beside the paper's numbers."""
    from clrnet.evaluation.protocol import PROTOCOL_ATTACKS
    from clrnet.paper.evaluation import evaluate, format_summary, summarize
    from clrnet.paper.report import report_markdown, write_report

    t0 = time.time()
    attacks = _attacks(o, PROTOCOL_ATTACKS)
    net = m.net  # type: ignore[attr-defined]  # the paper's kind: a PaperModel
    ev = evaluate(net, o.data, attacks, o.crops, seed=o.seed, limit=_limit(o))
    title = (f"{o.data.name}: model {o.label or m.name}, {int(ev.per_dataset['photos'])} photos at "
             f"{net.size}x{net.size}, {o.crops} crop(s) per bin, seed {o.seed}, {time.time() - t0:.0f} s")
    files = []
    if o.out:
        text = write_report(ev, attacks, o.out, title)
        files = ["report.md", "results.csv", "cells.csv", "curves.png", "figure.png"]
    else:
        text = report_markdown(ev, attacks, title)
    if o.summary:
        text += "\n" + "\n".join(format_summary(summarize([r for r in ev.rows if r.attack == a], ev.per_dataset),
                                                f"{o.data.name}: {a}, all bins") + "\n" for a in attacks)
    return Result(ev.rows, text, None, files)


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("crops", "Crops in the survival bins after JPEG 80 (or --attack): detection, box, recovery vs "
                   "inpainting, invisibility.", ("designed",), crops_study),
    Study("attacks", "The same over every attack of the papers' protocol, one table of them all.", ("designed",),
          attacks_study),
    Study("tamper", "Edits (splicing, copy-move, inpainting) of protected photos under attacks, Imuge+'s layout.",
          ("designed",), tamper_study),
    Study("false-alarms", "Never-protected images: --data is the datasets root (train/, val/, test/), plus "
                          "synthetic hard cases.", ("designed", "paper"), false_alarms_study),
    Study("layers", "Crops of protected photos protected again (laundering), and photos protected twice.",
          ("designed",), layers_study),
    Study("security", "What removing the protection costs an attacker (public pattern subtracted; averaging).",
          ("designed",), security_study),
    Study("formats", "How the protection survives each output format of `protect`.", ("designed", "paper"),
          formats_study),
    Study("passive", "The passive detector (PSCC-Net) on edited never-protected photos: synthetic Kodak + Set14 "
          "edits and the CASIA samples (--data: the datasets root; --attack: post-processing columns).", ("designed",), passive_study),
    Study("passive-ablation", "The passive detector's ablation (PSCC-Net's Table 4) from its training runs at a "
          "matched step (--data: the folder of the runs; --limit: the step, 400).", ("designed",),
          passive_ablation_study),
    Study("capacity", "The payload's capacity by working level and kept area.", ("designed",), capacity_study),
    Study("real-path", "Photos of 8 MP and more: protect, crop 40 %, 2048 px, JPEG 85.", ("designed",),
          real_path_study),
    Study("sharing", "Photos sent the way people share: whole or cropped, downscaled to 2048-720 px and to "
                     "shares of the working frame, JPEG 70-90 or WebP 80.", ("designed",), sharing_study),
    Study("paper-jpeg", "FG-JPEG (the journal paper's Section III-C): the QF predictor on real JPEGs of Kodak and "
          "Set14 beside the quantiser-step reading, the simulators against real JPEG (Fig. 13) and the paper's "
          "model trained with each (Table IV) (--data: the datasets root).", ("paper",),
          paper_jpeg_study),
    Study("paper", "The paper's CLR-Net in Table I's layout beside the paper's numbers.", ("paper",), paper_study),
)}


def write_study(result: Result, out: Path) -> list[str]:
    """results.csv, report.md and figure.png (where the study draws one) into ``out``;
    returns the names written."""
    from clrnet.files.imageio import write_text_atomic

    if result.files:
        return result.files
    write_text_atomic(result.text if result.text.endswith("\n") else result.text + "\n", out / "report.md")
    written = ["report.md"]
    if result.rows:
        write_text_atomic(rows_csv(result.rows), out / "results.csv")
        written.append("results.csv")
    if result.figure is not None:
        result.figure(out / "figure.png")
        written.append("figure.png")
    return written
