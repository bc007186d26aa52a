"""A resumable single-process trainer's start (seed, threads, run folder, its photos) and what it
shows and keeps while it trains: ``RUN_DIR/log.csv`` (appended across resumes, its header
written once) and a progress bar. Shared by the QF predictor's, FG-JPEG's and the passive
detector's trainers."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any


def ema(running: float, value: float) -> float:
    """The loss shown on the bar: a running mean that starts at the first value."""
    return 0.98 * running + 0.02 * value if running else value


class RunLog:
    def __init__(self, run_dir: Path, columns: list[str], total: int, step: int, desc: str,
                 progress: bool = True, elapsed: float = 0.0) -> None:
        path = run_dir / "log.csv"
        new = not path.is_file()
        self._fh = open(path, "a", newline="")
        self._writer = csv.writer(self._fh)
        if new:
            self._writer.writerow(columns)
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=step, desc=desc, unit="step")
        self._elapsed, self._t0 = elapsed, time.time()

    def seconds(self) -> float:
        """Seconds spent in this run's steps, over every session."""
        return self._elapsed + time.time() - self._t0

    def tick(self, **postfix: str) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(**postfix)

    def write(self, row: list[Any]) -> None:
        self._writer.writerow(row)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


TRAIN_FOLDERS = ("bsds500", "imagenet-samples")


def start_run(seed: int, threads: int, run_dir: Path, data: Path | None, val_photos: int
              ) -> tuple[list[Path], list[Path]]:
    """Seed torch, set its threads, make ``run_dir``; the training photos (``train/``'s folders)
    and the first ``val_photos`` of ``val/bsds500`` under ``data`` (default: $CLRNET_DATA or
    ../shared/datasets)."""
    import torch

    from clrnet.files.datasets import default_data_root, list_images

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    root = Path(data) if data else default_data_root()
    run_dir.mkdir(parents=True, exist_ok=True)
    train = [p for f in TRAIN_FOLDERS for p in list_images(root / "train" / f)]
    return train, list_images(root / "val" / "bsds500")[:val_photos]
