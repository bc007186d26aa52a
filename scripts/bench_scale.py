"""Photos/s and peak memory of the plain loop and of the Ray Data engine (issue 10's table).

    python scripts/bench_scale.py --data ../shared/datasets [--model clrnet-small-128] [--work runs/bench-scale]

Two photo sets are made in WORK from the datasets (never in the repository): 500 photos
brought to 256 x 256 (PNG) from train/, and 50 photos of 4.5 MP (2592 x 1728, JPEG 92)
upscaled from val/. Each engine protects a set into a fresh folder, then inspects the
protected photos; Ray is started before the clock runs (its start-up is printed apart).
Peak memory is the largest sum of RSS over this process and all its children (Ray's
processes included), sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import psutil
from PIL import Image
from tqdm import tqdm

from clrnet.batch.local import inspect_many, protect_many
from clrnet.files.datasets import list_images


class PeakRSS:
    """Largest RSS of this process tree while the block runs."""

    def __enter__(self) -> "PeakRSS":
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def make_sets(data: Path, work: Path) -> dict[str, Path]:
    small, large = work / "256px", work / "4.5mp"
    if not small.is_dir():
        small.mkdir(parents=True)
        for i, p in enumerate(tqdm(list_images(data / "train")[:500], desc="making 256px set")):
            Image.open(p).convert("RGB").resize((256, 256), Image.Resampling.LANCZOS).save(small / f"{i:04d}.png")
    if not large.is_dir():
        large.mkdir(parents=True)
        for i, p in enumerate(tqdm(list_images(data / "val")[:50], desc="making 4.5 MP set")):
            im = Image.open(p).convert("RGB")
            size = (2592, 1728) if im.width >= im.height else (1728, 2592)
            im.resize(size, Image.Resampling.BICUBIC).save(large / f"{i:04d}.jpg", quality=92)
    return {"500 photos, 256²": small, "50 photos, 4.5 MP": large}


def run(engine: str, op: str, src: Path, out: Path, model: str) -> float:
    if engine == "ray":
        from clrnet.batch.ray import inspect_ray, protect_ray

        res = protect_ray([src], out, model) if op == "protect" else inspect_ray([src], out, model, images=False)
    else:
        workers = 2 if engine.endswith("2") else 1
        res = list(protect_many([src], out, model, workers=workers) if op == "protect"
                   else inspect_many([src], out, model, workers=workers, images=False))
    bad = [r for r in res if r.status != "done"]
    if bad:
        raise SystemExit(f"{len(bad)} photos not done: {bad[0].error or bad[0].status}")
    return len(res)


def time_split(src: Path, model: str, n: int = 5) -> dict[str, float]:
    """Seconds per photo of each stage of the plain path (median of ``n`` photos)."""
    import numpy as np

    from clrnet.api import get_model, inspect, protect
    from clrnet.batch.local import write_report_folder
    from clrnet.files.formats import choose_format, save_photo
    from clrnet.files.imageio import read_photo

    m = get_model(model)
    stages: dict[str, list[float]] = {k: [] for k in ("read + decode", "protect (model)", "encode + write",
                                                      "inspect (model)", "report (PNGs + JSON)")}
    out = src.parent / "split-tmp"
    for p in sorted(src.iterdir())[:n]:
        t = [time.perf_counter()]
        photo = read_photo(p)
        t.append(time.perf_counter())
        prot = protect(photo.image, m)
        t.append(time.perf_counter())
        save_photo(prot, out / p.name, choose_format(p), photo.metadata)
        t.append(time.perf_counter())
        found = inspect(prot, m)
        t.append(time.perf_counter())
        write_report_folder(found, out / f"{p.name}.report")
        t.append(time.perf_counter())
        for k, a, b in zip(stages, t, t[1:]):
            stages[k].append(b - a)
    shutil.rmtree(out, ignore_errors=True)
    return {k: float(np.median(v)) for k, v in stages.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("CLRNET_DATA", "../shared/datasets")))
    ap.add_argument("--model", default="clrnet-small-128")
    ap.add_argument("--work", type=Path, default=Path("runs/bench-scale"))
    ap.add_argument("--engines", default="plain,plain-workers-2,ray")
    ap.add_argument("--split", action="store_true", help="Only the time per stage of the plain path.")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    sets = make_sets(args.data, args.work)
    if args.split:
        splits = {name: time_split(src, args.model) for name, src in sets.items()}
        stages = list(next(iter(splits.values())))
        print("| photos | " + " | ".join(stages) + " |\n|---|" + "---|" * len(stages))
        for name, v in splits.items():
            print(f"| {name.split(', ')[1]} | " + " | ".join(f"{v[k]:.3f}" for k in stages) + " |")
        return
    engines = args.engines.split(",")
    if "ray" in engines:
        from clrnet.batch.ray import start_ray

        t0 = time.perf_counter()
        start_ray()
        print(f"Ray start-up (local, {os.cpu_count()} CPUs): {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    from clrnet.api import get_model

    get_model(args.model)  # loaded once for the plain engines, before the clock
    rows = []
    for set_name, src in sets.items():
        for engine in engines:
            for op in ("protect", "inspect"):
                out = args.work / "out" / f"{engine}-{op}-{src.name}"
                shutil.rmtree(out, ignore_errors=True)
                source = src if op == "protect" else args.work / "out" / f"{engine}-protect-{src.name}"
                with PeakRSS() as mem:
                    t0 = time.perf_counter()
                    n = run(engine, op, source, out, args.model)
                    dt = time.perf_counter() - t0
                rows.append((set_name, engine, op, n / dt, dt, mem.peak / 2 ** 30))
                print(f"{set_name} {engine} {op}: {n / dt:.2f} photos/s", file=sys.stderr)
    print("| photos | engine | job | photos/s | wall s | peak memory GB |\n|---|---|---|---|---|---|")
    for s, e, o, rate, dt, gb in rows:
        print(f"| {s} | {e} | {o} | {rate:.2f} | {dt:.1f} | {gb:.2f} |")


if __name__ == "__main__":
    main()
