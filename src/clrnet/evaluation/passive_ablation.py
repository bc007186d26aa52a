"""``clrnet eval passive-ablation``: the passive detector's ablation (the PSCC-Net paper's Table 4)
from training runs at a matched step.

``--data`` is the folder holding the run directories (``runs/``): ``passive`` (the shipped
configuration) and the variants ``passive-mask4``, ``passive-no-attention`` and
``passive-scratch``, each trained with its config (``src/clrnet/configs/passive-*.yaml``).
Every run uses the same seeded samples in the same order and the same first learning-rate cycle,
so the validation rows at one step (``--limit``, default 400) compare the designs at the same
budget. Validation: 400 seeded ``val/`` cases at 256² (splice, copy-move, removal, pristine);
pixel AUC of the finest mask read at 64², image AUC of the detection score.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from clrnet.passive.network import NetSpec, PSCCNet

STEP = 400
VARIANTS = {  # run directory -> the variant's name in the paper's Table 4 (or ours)
    "passive": "PSCC-Net (all four masks, SCCM, ImageNet start)",
    "passive-mask4": "Mask 4 (coarsest mask only)",
    "passive-no-attention": "w/o SA+CA (SCCM without its attention)",
    "passive-scratch": "from scratch (no ImageNet start)",
}
# the paper's Table 4, CASIA column (pixel AUC, F1), its relative run time
PAPER_TABLE4 = {"passive": (0.8293, 0.3627, 1.00), "passive-mask4": (0.8149, 0.3169, 0.63),
                "passive-no-attention": (0.7926, 0.3106, 0.84)}


def _config(name: str) -> dict[str, object]:
    from importlib import resources

    import yaml

    data = yaml.safe_load((resources.files("clrnet") / "configs" / f"{name}.yaml").read_text())
    return {k: v for k, v in data.items() if k != "kind"}


def read_log(run: Path) -> list[dict[str, float]]:
    """The validation rows of a run's ``log.csv``."""
    with open(run / "log.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def forward_time(spec: NetSpec, side: int = 512, repeats: int = 7) -> float:
    """The network's best forward time (s) at ``side``² over ``repeats`` (the paper's Time column
    is its ratio; random weights cost the same as trained ones)."""
    import torch

    net = PSCCNet(spec).eval()
    x = torch.rand(1, 3, side, side)
    times = []
    with torch.no_grad():
        net(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    return min(times)


def ablation_rows(runs: Path, step: int = STEP, side: int = 512) -> list[dict[str, object]]:
    """One row per run found under ``runs``: validation at ``step`` and the relative run time."""
    if not (runs / "passive" / "log.csv").is_file():
        raise FileNotFoundError(f"{runs}: no passive/log.csv (--data is the folder of the training runs)")
    rows: list[dict[str, object]] = []
    base = forward_time(NetSpec(), side)
    for name, variant in VARIANTS.items():
        if not (runs / name / "log.csv").is_file():
            continue
        at = [r for r in read_log(runs / name) if int(r["step"]) == step]
        if not at:
            raise ValueError(f"{runs / name}: no validation at step {step}")
        r = at[-1]
        paper = PAPER_TABLE4.get(name)
        spec = NetSpec.from_config(_config(name))
        rows.append({"variant": variant, "run": name, "step": step, "val pixel AUC": r["pixel_auc"],
                     "val image AUC": r["image_auc"], "time": 1.0 if spec == NetSpec() else forward_time(spec, side) / base,
                     "paper CASIA pixel AUC": paper[0] if paper else None,
                     "paper CASIA pixel F1": paper[1] if paper else None,
                     "paper time": paper[2] if paper else None})
    return rows


def ablation_figure(runs: Path, path: Path) -> None:
    """Validation pixel and image AUC against the step, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clrnet.evaluation.tables import _save_fig

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, variant in VARIANTS.items():
        if not (runs / name / "log.csv").is_file():
            continue
        log = read_log(runs / name)
        for ax, key in zip(axes, ("pixel_auc", "image_auc")):
            ax.plot([r["step"] for r in log], [r[key] for r in log], marker="o", label=variant)
    for ax, title in zip(axes, ("val pixel AUC", "val image AUC")):
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    _save_fig(fig, path)
    plt.close(fig)
