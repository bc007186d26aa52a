"""FG-JPEG's tables in our numbers (``clrnet eval paper-jpeg``). So far the predictor's: how
often it names the quality factor of real Pillow JPEGs of Kodak and Set14 (each photo at its
own size, 4:2:0, at each of ``QFS``), beside the tamper module's reading of the quantiser step
(``tamper.jpeg_trace``; no trace is read as 100, the nearest class otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from clrnet.files.datasets import list_images
from clrnet.paper.fgjpeg.data import QFConfig, encode
from clrnet.paper.fgjpeg.predictor import QFS, QFPredictor, predict_qf
from clrnet.tamper.jpeg_trace import jpeg_quality

FOLDERS = ("kodak24", "set14")


def shipped_predictor(name: str = "qf-predictor") -> Path:
    """The shipped predictor's weights (``weights/<name>/<name>.safetensors``)."""
    from importlib import resources

    res = resources.files("clrnet") / "weights" / name / f"{name}.safetensors"
    if not res.is_file():
        raise FileNotFoundError(f"{name}: no such shipped predictor (train it: clrnet train --config qf-predictor)")
    return Path(str(res))


def load_predictor(path: str | Path) -> QFPredictor:
    """The predictor of the weights at ``path`` (its config in their metadata)."""
    with safe_open(str(path), "pt") as fh:
        cfg = QFConfig.model_validate_json((fh.metadata() or {})["qf_config"])
    net = QFPredictor(cfg.blocks)
    net.load_state_dict(load_file(str(path)))
    return net.eval()


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
