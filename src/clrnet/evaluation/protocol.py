"""The papers' protocol: the survival bins, the attacks in Table I's order, crop boxes drawn in
a bin, the detection accuracy on an even mix, and per-sample rows written as CSV."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clrnet.core.geometry import FULL_FRAME, Box, box_area, sample_crop_box
from clrnet.core.metrics import mean_ci


@dataclass
class Sample:
    """What every study's row starts with: the photo, the attack, the crop bin, whether the
    copy was protected (False: the "w/o protection" baseline) and cropped, the kept area,
    and the verdict."""

    image: str
    attack: str
    bin: str
    protected: bool
    cropped: bool
    kept_area: float
    predicted_cropped: bool


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


def sample_box_in_bin(rng: np.random.Generator, n: int, lo: float, hi: float) -> Box:
    """A seeded crop whose kept area lies in [lo, hi] (never the whole frame)."""
    while True:
        box = sample_crop_box(rng, n, n, lo, hi)
        if box != FULL_FRAME and lo - 1e-9 <= box_area(box) <= hi + 1e-9:
            return box


def detection_accuracy(rows: list[Any]) -> tuple[float, float]:
    """Accuracy of the crop decision on an even mix of cropped and uncropped samples
    (the mean of the two rates, so it does not depend on how many of each were drawn)."""
    hit, hit_ci = mean_ci([float(r.predicted_cropped) for r in rows if r.cropped])
    ok, ok_ci = mean_ci([float(not r.predicted_cropped) for r in rows if not r.cropped])
    if math.isnan(hit) or math.isnan(ok):
        return float("nan"), float("nan")
    return (hit + ok) / 2, 0.5 * math.hypot(hit_ci if not math.isnan(hit_ci) else 0.0,
                                            ok_ci if not math.isnan(ok_ci) else 0.0)


def write_rows(rows: "list[Any]", path: str | Path) -> None:
    """Per-sample results (rows of one kind) as CSV, written atomically."""
    from clrnet.evaluation.tables import rows_csv
    from clrnet.files.imageio import write_text_atomic

    write_text_atomic(rows_csv(rows), Path(path))
