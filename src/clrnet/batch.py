"""Many photos at once: ``protect_many`` and ``inspect_many``.

The model loads once. Photos are read and written by ``workers`` threads
(decoding and encoding release the GIL) while the model works on one photo at a
time in the calling thread; results come back in input order. Outputs are
written atomically, so a run stopped at any point leaves only whole files, and
the next run skips the photos whose outputs exist (``force`` redoes them). A
photo that fails is reported and does not stop the others.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from .files.formats import INPUT_SUFFIXES, OutputFormat, choose_format, save_photo
from .files.imageio import Photo, read_photo, save_atomic, write_text_atomic
from .files.inputs import InputPhoto, expand_inputs
from .pipeline import Inspection, Model, get_model, inspect, protect

REPORT_FILE = "report.json"
RESULTS_JSONL, RESULTS_CSV = "results.jsonl", "results.csv"
CSV_COLUMNS = ["file", "status", "cropped", "score", "protected", "protection", "kept_area", "x0", "y0", "x1", "y1",
               "original_width", "original_height", "payload_decoded", "report", "error"]


@dataclass
class BatchResult:
    """One photo of a batch: ``status`` is done, skipped (its output existed) or failed."""

    source: Path
    output: Path | None
    status: str
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    report: dict | None = None  # inspect: what report.json holds
    inspection: Inspection | None = None  # inspect, done: the full result (images included)
    seconds: float = 0.0


T = TypeVar("T")
L = TypeVar("L")


def _message(item: InputPhoto, e: BaseException) -> str:
    text = str(e)
    if str(item.path) in text:
        return text
    return f"{item.path}: {type(e).__name__}: {text}" if not isinstance(e, (OSError, ValueError)) else f"{item.path}: {text}"


def _run(items: list[InputPhoto], todo: Callable[[InputPhoto], BatchResult | None], load: Callable[[InputPhoto], L],
         compute: Callable[[InputPhoto, L], T], save: Callable[[InputPhoto, T], BatchResult],
         workers: int) -> Iterator[BatchResult]:
    """load (threads) -> compute (this thread) -> save (threads), in input order.

    ``todo`` returns a result for a photo to skip (or refuse) without loading it.
    """
    def guarded(item: InputPhoto, fn: Callable[[], BatchResult], spent: float = 0.0) -> BatchResult:
        t0 = time.perf_counter()
        try:
            res = fn()
        except Exception as e:  # one photo's failure must not stop the batch
            res = BatchResult(item.path, None, "failed", _message(item, e))
        res.seconds += spent + time.perf_counter() - t0
        return res

    if workers <= 1:
        for item in items:
            res = todo(item)
            yield res if res is not None else guarded(item, lambda: save(item, compute(item, load(item))))
        return
    with ThreadPoolExecutor(workers) as pool:
        loads: deque[tuple[InputPhoto, Future | BatchResult]] = deque()
        saves: deque[Future | BatchResult] = deque()
        queue = iter(items)

        def feed() -> None:
            item = next(queue, None)
            if item is not None:
                res = todo(item)
                loads.append((item, res if res is not None else pool.submit(load, item)))

        for _ in range(2 * workers):
            feed()
        while loads:
            item, pending = loads.popleft()
            feed()
            if isinstance(pending, BatchResult):
                saves.append(pending)
            else:
                t0 = time.perf_counter()
                try:
                    value = compute(item, pending.result())
                except Exception as e:
                    saves.append(BatchResult(item.path, None, "failed", _message(item, e)))
                else:
                    saves.append(pool.submit(guarded, item, lambda i=item, v=value: save(i, v),
                                             time.perf_counter() - t0))
            while saves and (isinstance(saves[0], BatchResult) or saves[0].done() or len(saves) > workers):
                head = saves.popleft()
                yield head if isinstance(head, BatchResult) else head.result()
        while saves:
            head = saves.popleft()
            yield head if isinstance(head, BatchResult) else head.result()


def _progress(results: Iterator[BatchResult], total: int, desc: str, show: bool) -> Iterator[BatchResult]:
    if not show:
        yield from results
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="photo") as bar:
        for res in results:
            bar.update(1)
            yield res


def _check_names(items: list[InputPhoto], name: Callable[[InputPhoto], Path]) -> dict[Path, str]:
    """Photos whose output name another photo already takes, with the reason."""
    owner: dict[Path, InputPhoto] = {}
    clashes = {}
    for it in items:
        key = name(it)
        if key in owner:
            clashes[it.path] = (f"{it.path}: its output {key} is already {owner[key].path}'s; "
                                "give them separate runs or output folders")
        else:
            owner[key] = it
    return clashes


def protected_name(item: InputPhoto, fmt: OutputFormat) -> Path:
    """The output name: the input's, with a suffix of the output format (its own kept when it fits)."""
    if INPUT_SUFFIXES.get(item.path.suffix.lower()) == fmt.name:
        return item.relative
    return item.relative.with_suffix(fmt.suffix)


def protect_file(source: str | Path, target: str | Path, model: Model | str | None = None,
                 fmt: OutputFormat | None = None) -> list[str]:
    """Protect one photo file into ``target`` (format from ``fmt`` or the input), keeping
    its metadata; returns warnings (a weak format, metadata the format cannot carry)."""
    photo = read_photo(source)
    fmt = fmt or choose_format(source)
    return save_photo(protect(photo.image, model), target, fmt, photo.metadata)


def protect_many(inputs: Iterable[str | Path], out_dir: str | Path, model: Model | str | None = None, *,
                 format: str | None = None, quality: int | None = None, recursive: bool = False,
                 force: bool = False, workers: int = 1, progress: bool = False) -> Iterator[BatchResult]:
    """Protect every photo of ``inputs`` (files, folders, globs) into ``out_dir``.

    Output names follow the inputs (folder structure kept); the format follows
    each input unless ``format`` / ``quality`` say otherwise; metadata is kept.
    """
    out = Path(out_dir)
    items = expand_inputs(inputs, recursive)
    m = get_model(model)
    formats = {it.path: choose_format(it.path, format, quality) for it in items}
    clashes = _check_names(items, lambda it: protected_name(it, formats[it.path]))

    def target(it: InputPhoto) -> Path:
        return out / protected_name(it, formats[it.path])

    def todo(it: InputPhoto) -> BatchResult | None:
        if it.path in clashes:
            return BatchResult(it.path, None, "failed", clashes[it.path])
        dst = target(it)
        if dst.exists() and dst.resolve() == it.path.resolve():
            return BatchResult(it.path, None, "failed", f"{dst}: refusing to overwrite the input")
        if dst.exists() and not force:
            return BatchResult(it.path, dst, "skipped")
        return None

    def compute(it: InputPhoto, photo: Photo) -> tuple[Photo, object]:
        return photo, protect(photo.image, m)

    def save(it: InputPhoto, value: tuple[Photo, object]) -> BatchResult:
        photo, image = value
        dst = target(it)
        warnings = save_photo(image, dst, formats[it.path], photo.metadata)  # type: ignore[arg-type]
        return BatchResult(it.path, dst, "done", warnings=warnings)

    yield from _progress(_run(items, todo, lambda it: read_photo(it.path), compute, save, workers),
                         len(items), "protecting", progress)


def write_report_folder(found: Inspection, folder: str | Path, images: bool = True) -> Path:
    """recovered.png, mask.png, overlay.png (presence.png with v2) and report.json; the
    JSON last, so its presence means the folder is complete."""
    folder = Path(folder)
    if images:
        save_atomic(found.recovered, folder / "recovered.png")
        save_atomic(found.mask, folder / "mask.png")
        save_atomic(found.overlay(), folder / "overlay.png")
        if found.presence is not None:
            save_atomic(found.presence, folder / "presence.png")
    return write_text_atomic(found.to_json() + "\n", folder / REPORT_FILE)


def inspect_many(inputs: Iterable[str | Path], out_dir: str | Path | None = None, model: Model | str | None = None,
                 *, original_size: tuple[int, int] | None = None, recursive: bool = False, force: bool = False,
                 images: bool = True, workers: int = 1, progress: bool = False) -> Iterator[BatchResult]:
    """Inspect every photo of ``inputs``; with ``out_dir``, a report folder per photo
    (``out_dir / <relative name>/``) and, when the generator is exhausted or closed,
    ``results.jsonl`` and ``results.csv`` for every photo of ``inputs``."""
    out = Path(out_dir) if out_dir is not None else None
    items = expand_inputs(inputs, recursive)
    m = get_model(model)
    clashes = _check_names(items, lambda it: it.relative)
    done: list[BatchResult] = []

    def todo(it: InputPhoto) -> BatchResult | None:
        if it.path in clashes:
            return BatchResult(it.path, None, "failed", clashes[it.path])
        if out is not None and not force and (out / it.relative / REPORT_FILE).is_file():
            folder = out / it.relative
            try:
                report = json.loads((folder / REPORT_FILE).read_text())
            except (OSError, ValueError):
                return None
            return BatchResult(it.path, folder, "skipped", report=report)
        return None

    def compute(it: InputPhoto, photo: Photo) -> Inspection:
        return inspect(photo.image, m, original_size=original_size)

    def save(it: InputPhoto, found: Inspection) -> BatchResult:
        folder = None
        if out is not None:
            folder = out / it.relative
            write_report_folder(found, folder, images)
        return BatchResult(it.path, folder, "done", report=found.to_dict(), inspection=found)

    try:
        for res in _progress(_run(items, todo, lambda it: read_photo(it.path), compute, save, workers),
                             len(items), "inspecting", progress):
            done.append(res)
            yield res
    finally:
        if out is not None and done:
            write_results(done, out)


def result_row(res: BatchResult, out: Path | None = None) -> dict[str, object]:
    """One photo's line of results.jsonl: its file, status, report facts and error."""
    row: dict[str, object] = {"file": str(res.source), "status": res.status}
    if res.report is not None:
        row.update(res.report)
    if res.output is not None:
        row["report"] = str(res.output.relative_to(out)) if out is not None else str(res.output)
    row["error"] = res.error
    return row


def write_results(results: list[BatchResult], out: Path) -> tuple[Path, Path]:
    """results.jsonl and results.csv (atomically) for a batch of inspections."""
    rows = [result_row(r, out) for r in results]
    jsonl = write_text_atomic("".join(json.dumps(r) + "\n" for r in rows), out / RESULTS_JSONL)
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        flat = dict(r)
        box = r.get("box") or [None] * 4
        size = r.get("original_size") or [None, None]
        flat.update(zip(("x0", "y0", "x1", "y1"), box))
        flat.update(original_width=size[0], original_height=size[1])
        w.writerow(flat)
    return jsonl, write_text_atomic(buf.getvalue(), out / RESULTS_CSV)
