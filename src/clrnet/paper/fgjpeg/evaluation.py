"""FG-JPEG's tables in our numbers (``clrnet eval paper-jpeg``). So far the predictor's: how
often it names the quality factor of real Pillow JPEGs of Kodak and Set14 (each photo at its
own size, 4:2:0, at each of ``QFS``), beside the tamper module's reading of the quantiser step
(``tamper.jpeg_trace``; no trace is read as 100, the nearest class otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clrnet.files.datasets import list_images
from clrnet.paper.fgjpeg.data import encode
from clrnet.paper.fgjpeg.predictor import QFS, QFPredictor, predict_qf
from clrnet.tamper.jpeg_trace import jpeg_quality

FOLDERS = ("kodak24", "set14")


def nearest_class(quality: int | None) -> int:
    """The class of ``QFS`` nearest a read quality (no trace: 100, as a photo never compressed
    or compressed almost losslessly looks)."""
    return 100 if quality is None else min(QFS, key=lambda c: abs(c - quality))


def predictor_rows(root: Path, net: QFPredictor, limit: int | None = None, progress: bool = True
                   ) -> list[dict[str, object]]:
    """One row per folder and quality factor, and one per folder over all: accuracy of the
    predictor and of the quantiser-step reading."""
    from tqdm import tqdm

    rows: list[dict[str, object]] = []
    for folder in FOLDERS:
        paths = list_images(root / "test" / folder)[:limit]
        right = {q: [0, 0] for q in QFS}
        for path in tqdm(paths, desc=folder, disable=not progress):
            with Image.open(path) as im:
                photo = np.asarray(im.convert("RGB"))
            for q in QFS:
                x = torch.from_numpy(encode(photo, q).copy()).permute(2, 0, 1).float() / 255
                right[q][0] += predict_qf(net, x)[0] == q
                right[q][1] += nearest_class(jpeg_quality(x)) == q
        n = len(paths)
        for q in QFS:
            rows.append({"folder": folder, "QF": q, "photos": n, "predictor accuracy": right[q][0] / n,
                         "quantiser-step reading accuracy": right[q][1] / n})
        rows.append({"folder": folder, "QF": "all", "photos": n,
                     "predictor accuracy": sum(r[0] for r in right.values()) / (n * len(QFS)),
                     "quantiser-step reading accuracy": sum(r[1] for r in right.values()) / (n * len(QFS))})
    return rows


FIDELITY_QS = (10, 30, 50, 70, 80, 90)  # Fig. 13's table in our numbers
SIMULATORS = ("codec", "diff", "mask", "mixup")  # beside FG-JPEG's generators
NOISY_QF, NOISE_SIGMA = 50, 0.01
LABELS = {"fg": "FG-JPEG (shipped: codec + U-Net)", "fg-plain": "FG-JPEG, the paper's plain U-Net",
          "codec": "our libjpeg-like codec alone", "diff": "Diff-JPEG (kornia)", "mask": "JPEG-Mask (HiDDeN)",
          "mixup": "JPEG-Mixup (RWN, our reading)"}


@torch.no_grad()
def fidelity_rows(root: Path, generators: dict[str, torch.nn.Module], net: QFPredictor, limit: int | None = None,
                  progress: bool = True, seed: int = 0) -> list[dict[str, object]]:
    """One row per folder and simulator (each of ``generators``, then ``SIMULATORS``): mean PSNR
    (dB) of its 8-bit output against Pillow's real JPEG (4:2:0) at each of ``FIDELITY_QS``, and how
    often the predictor names the quality of its outputs at each of ``QFS``; the real JPEG's own
    accuracy as a reference row."""
    from tqdm import tqdm

    from clrnet.core.metrics import psnr
    from clrnet.paper.attacks.functional import round_8bit
    from clrnet.paper.attacks.jpeg import simulate

    names = [*generators, *SIMULATORS]
    rows: list[dict[str, object]] = []
    for folder in FOLDERS:
        paths = list_images(root / "test" / folder)[:limit]
        db = {s: {q: [] for q in FIDELITY_QS} for s in names}
        noisy = {s: [] for s in names}  # the AWGN trick: the clean photo's JPEG from a noisy input
        right = {s: 0 for s in ("real", *names)}
        for i, path in enumerate(tqdm(paths, desc=f"{folder} simulators", disable=not progress)):
            with Image.open(path) as im:
                x = torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 255
            for q in sorted(set(FIDELITY_QS) | set(QFS)):
                real = simulate("real", x, q)
                right["real"] += q in QFS and predict_qf(net, real[0])[0] == q
                for s in names:
                    g = torch.Generator().manual_seed(seed * 100_003 + i * 101 + q)
                    kind, fg = ("fg", generators[s]) if s in generators else (s, None)
                    out = round_8bit(simulate(kind, x, q, fg=fg, generator=g))
                    if q in FIDELITY_QS:
                        db[s][q].append(psnr(out[0], real[0]))
                    if q in QFS:
                        right[s] += predict_qf(net, out[0])[0] == q
                    if q == NOISY_QF:
                        xn = (x + NOISE_SIGMA * torch.randn(x.shape, generator=g)).clamp(0, 1)
                        on = round_8bit(simulate(kind, xn, q, fg=fg, generator=g))
                        noisy[s].append(psnr(on[0], real[0]))
        n = len(paths)
        for s in names:
            row: dict[str, object] = {"folder": folder, "simulator": LABELS.get(s, s)}
            row.update({f"PSNR at QF {q}": float(np.mean(v)) for q, v in db[s].items()})
            row["QF accuracy"] = right[s] / (n * len(QFS))
            row[f"PSNR at QF {NOISY_QF}, input + AWGN {NOISE_SIGMA}"] = float(np.mean(noisy[s]))
            rows.append(row)
        rows.append({"folder": folder, "simulator": "real (reference)",
                     **{f"PSNR at QF {q}": float("inf") for q in FIDELITY_QS},
                     "QF accuracy": right["real"] / (n * len(QFS)),
                     f"PSNR at QF {NOISY_QF}, input + AWGN {NOISE_SIGMA}": float("nan")})
    return rows


def ablation_rows(root: Path, limit: int | None = None, progress: bool = True,
                  attacks: tuple[str, ...] = ("jpeg50", "jpeg70", "jpeg90")) -> list[dict[str, object]]:
    """Table IV's simulator rows: each shipped ablation model through the evaluation protocol
    (its native size, crops in the three survival bins) with real JPEG at ``attacks``."""
    from clrnet.paper.evaluation import evaluate
    from clrnet.paper.fgjpeg.ablation import SETS, load_compact, shipped_ablation

    rows: list[dict[str, object]] = []
    for folder in FOLDERS:
        for (label, (prefix, sims)), sim in ((st, sim) for st in SETS.items() for sim in st[1][1]):
            model = load_compact(shipped_ablation(prefix + sim))
            ev = evaluate(model, root / "test" / folder, attacks=list(attacks), baselines=False, limit=limit,
                          progress=progress, figure_photos=0)
            for attack in attacks:
                crops = [r for r in ev.rows if r.protected and r.cropped and r.attack == attack]
                rows.append({"folder": folder, "model": label, "simulator": sim, "attack": attack, "crops": len(crops),
                             "F1": float(np.mean([r.f1 for r in crops])),
                             "IoU": float(np.mean([r.iou for r in crops])),
                             "PSNR": float(np.mean([r.psnr_recovered for r in crops])),
                             "SSIM": float(np.mean([r.ssim_recovered for r in crops])),
                             "cut-away PSNR": float(np.nanmean([r.psnr_cut for r in crops])),
                             "protected PSNR": ev.per_dataset["protected_psnr"]})
    return rows


@torch.no_grad()
def fidelity_figure(root: Path, generator: torch.nn.Module, path: Path, side: int = 96) -> None:
    """Fig. 13 in our numbers: a ``side`` px detail of the first Kodak photo at QF 10 and 80, the
    real JPEG beside each simulator's (PSNR against the real JPEG in the titles), enlarged 3x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clrnet.core.metrics import psnr
    from clrnet.evaluation.tables import _save_fig
    from clrnet.paper.attacks.functional import round_8bit
    from clrnet.paper.attacks.jpeg import simulate

    photo = list_images(root / "test" / FOLDERS[0])[0]
    with Image.open(photo) as im:
        x = torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    y0, x0 = (h // 2 - side // 2) // 8 * 8, (w // 2 - side // 2) // 8 * 8
    cols = ("original", "real", "fg", "diff", "mask", "mixup")
    fig, axes = plt.subplots(2, len(cols), figsize=(2.2 * len(cols), 5.6))
    for r, q in enumerate((10, 80)):
        real = simulate("real", x, q)
        outs = {"original": x, "real": real}
        for s in cols[2:]:
            outs[s] = round_8bit(simulate(s, x, q, fg=generator, generator=torch.Generator().manual_seed(0)))
        for c, name in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(outs[name][0, :, y0:y0 + side, x0:x0 + side].permute(1, 2, 0).numpy(), interpolation="nearest")
            label = {"fg": "FG-JPEG", "diff": "Diff-JPEG", "mask": "JPEG-Mask", "mixup": "JPEG-Mixup"}.get(name, name)
            extra = f"\n{psnr(outs[name][0], real[0]):.1f} dB" if name not in ("real",) else "\n(target)"
            ax.set_title(f"{label}, QF {q}{extra}" if name != "original" else f"original\n{photo.name}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    _save_fig(fig, path)
    plt.close(fig)
