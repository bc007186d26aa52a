"""Tables and figures shared by the studies: Markdown tables, CSV rows, attack labels."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any


def markdown_table(rows: list[dict[str, object]], title: str, digits: int = 2) -> str:
    """Rows of one shape (dicts with the same keys) as a Markdown table under ``title``."""
    keys = list(rows[0]) if rows else []
    lines = [title, "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.{digits}f}" if isinstance(v, float) else str(v)
                                       for v in r.values()) + " |")
    return "\n".join(lines)


ATTACK_LABELS = {
    "jpeg90": "JPEG 90", "jpeg80": "JPEG 80", "jpeg70": "JPEG 70", "jpeg50": "JPEG 50", "jpeg10": "JPEG 10",
    "scale150": "scale 150 %", "scale125": "scale 125 %", "scale75": "scale 75 %", "median": "median 3",
    "gaussian": "Gauss σ1", "noise": "noise σ.02", "dropout": "dropout 5 %", "contrast": "contrast 1.3",
    "brightness": "bright +20", "jpeg80+resize": "JPEG 80 + 80 %", "none": "none",
}


def _save_fig(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(path)


def rows_csv(rows: list[Any]) -> str:
    """Rows (dataclasses or dicts) as CSV, floats to 5 decimals; the columns are the union of the
    rows' keys in first-seen order (a study of several tables leaves the others' cells empty)."""
    dicts = [asdict(r) if is_dataclass(r) else dict(r) for r in rows]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for d in dicts for k in d)), restval="")
    w.writeheader()
    for d in dicts:
        w.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in d.items()})
    return buf.getvalue()
