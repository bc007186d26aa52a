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

from PIL import Image

from clrnet.api import AlreadyProtectedError, Inspection, Model, get_model, inspect, protect
from clrnet.files.formats import INPUT_SUFFIXES, OutputFormat, choose_format, save_photo
from clrnet.files.imageio import OutputExistsError, Photo, read_photo, save_atomic, write_text_atomic
from clrnet.files.inputs import InputPhoto, expand_inputs

REPORT_FILE = "report.json"
RESULTS_JSONL, RESULTS_CSV = "results.jsonl", "results.csv"
CSV_COLUMNS = ["file", "status", "cropped", "score", "protected", "protection", "kept_area", "x0", "y0", "x1", "y1",
               "original_width", "original_height", "payload_decoded", "tampered", "tamper_score", "report", "error"]


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


def _message(source: Path, e: BaseException) -> str:
    """A one-line failure naming the file."""
    text = str(e)
    if str(source) in text:
        return text
    kind = "" if isinstance(e, (OSError, ValueError)) else f"{type(e).__name__}: "
    return f"{source}: {kind}{text}"


@dataclass(frozen=True)
class ProtectJob:
    """One photo to protect: where from, where to, in which format."""

    source: Path
    target: Path
    format: OutputFormat
    replace: bool = False  # --force: an existing output is redone (else never overwritten), a protected photo protected again


@dataclass(frozen=True)
class InspectJob:
    """One photo to inspect, and its report folder (None: write nothing)."""

    source: Path
    folder: Path | None


Job = TypeVar("Job", ProtectJob, InspectJob)


def _run(plan: list[Job | BatchResult], load: Callable[[Job], L], compute: Callable[[Job, L], T],
         save: Callable[[Job, T], BatchResult], workers: int) -> Iterator[BatchResult]:
    """load (threads) -> compute (this thread) -> save (threads), in input order.

    A plan entry that is already a result (skipped, refused) passes straight through.
    """
    def guarded(job: Job, fn: Callable[[], BatchResult], spent: float = 0.0) -> BatchResult:
        t0 = time.perf_counter()
        try:
            res = fn()
        except Exception as e:  # one photo's failure must not stop the batch
            res = BatchResult(job.source, None, "failed", _message(job.source, e))
        res.seconds += spent + time.perf_counter() - t0
        return res

    if workers <= 1:
        for job in plan:
            yield job if isinstance(job, BatchResult) else \
                guarded(job, lambda j=job: save(j, compute(j, load(j))))
        return
    with ThreadPoolExecutor(workers) as pool:
        loads: deque[tuple[Job | BatchResult, Future | None]] = deque()
        saves: deque[Future | BatchResult] = deque()
        queue = iter(plan)

        def feed() -> None:
            job = next(queue, None)
            if job is not None:
                loads.append((job, None if isinstance(job, BatchResult) else pool.submit(load, job)))

        for _ in range(2 * workers):
            feed()
        while loads:
            job, pending = loads.popleft()
            feed()
            if isinstance(job, BatchResult) or pending is None:
                saves.append(job)  # type: ignore[arg-type]
            else:
                t0 = time.perf_counter()
                try:
                    value = compute(job, pending.result())
                except Exception as e:
                    saves.append(BatchResult(job.source, None, "failed", _message(job.source, e)))
                else:
                    saves.append(pool.submit(guarded, job, lambda j=job, v=value: save(j, v),
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
                 fmt: OutputFormat | None = None, replace: bool = True, refuse_protected: bool = False) -> list[str]:
    """Protect one photo file into ``target`` (format from ``fmt`` or the input), keeping
    its metadata; returns warnings (a weak format, metadata the format cannot carry).
    With ``replace=False`` an existing ``target`` is never overwritten; with
    ``refuse_protected`` a photo already protected raises AlreadyProtectedError."""
    photo = read_photo(source)
    fmt = fmt or choose_format(source)
    try:
        image = protect(photo.image, model, refuse_protected)
    except AlreadyProtectedError as e:
        raise AlreadyProtectedError(f"{source}: {e}") from None
    return save_photo(image, target, fmt, photo.metadata, replace=replace)


def plan_protect(inputs: Iterable[str | Path], out_dir: str | Path, *, format: str | None = None,
                 quality: int | None = None, recursive: bool = False,
                 force: bool = False) -> list[ProtectJob | BatchResult]:
    """What a protect batch will do, in input order: a job per photo to protect, a
    result for each photo skipped (output there) or refused (name clash, own input)."""
    out = Path(out_dir)
    items = expand_inputs(inputs, recursive)
    formats = {it.path: choose_format(it.path, format, quality) for it in items}
    clashes = _check_names(items, lambda it: protected_name(it, formats[it.path]))
    plan: list[ProtectJob | BatchResult] = []
    for it in items:
        dst = out / protected_name(it, formats[it.path])
        if it.path in clashes:
            plan.append(BatchResult(it.path, None, "failed", clashes[it.path]))
        elif dst.exists() and dst.resolve() == it.path.resolve():
            plan.append(BatchResult(it.path, None, "failed", f"{dst}: refusing to overwrite the input"))
        elif dst.exists() and not force:
            plan.append(BatchResult(it.path, dst, "skipped"))
        else:
            plan.append(ProtectJob(it.path, dst, formats[it.path], replace=force))
    return plan


def _protect_save(job: ProtectJob, value: tuple[Photo, Image.Image]) -> BatchResult:
    photo, image = value
    try:
        warnings = save_photo(image, job.target, job.format, photo.metadata, replace=job.replace)
    except OutputExistsError:  # another process wrote it since the plan was made
        return BatchResult(job.source, job.target, "skipped")
    return BatchResult(job.source, job.target, "done", warnings=warnings)


def run_protect_job(job: ProtectJob, model: Model) -> BatchResult:
    """Read, protect and write one photo (the unit a Ray worker runs)."""
    try:
        photo = read_photo(job.source)
        return _protect_save(job, (photo, protect(photo.image, model, refuse_protected=not job.replace)))
    except Exception as e:
        return BatchResult(job.source, None, "failed", _message(job.source, e))


def protect_many(inputs: Iterable[str | Path], out_dir: str | Path, model: Model | str | None = None, *,
                 format: str | None = None, quality: int | None = None, recursive: bool = False,
                 force: bool = False, workers: int = 1, progress: bool = False) -> Iterator[BatchResult]:
    """Protect every photo of ``inputs`` (files, folders, globs) into ``out_dir``.

    Output names follow the inputs (folder structure kept); the format follows
    each input unless ``format`` / ``quality`` say otherwise; metadata is kept.
    """
    plan = plan_protect(inputs, out_dir, format=format, quality=quality, recursive=recursive, force=force)
    m = get_model(model)
    yield from _progress(_run(plan, lambda j: read_photo(j.source), lambda j, p: (p, protect(p.image, m, not force)),
                              _protect_save, workers), len(plan), "protecting", progress)


def write_report_folder(found: Inspection, folder: str | Path, images: bool = True) -> Path:
    """recovered.png, mask.png, overlay.png (presence.png and tamper_mask.png with v2;
    passive_map.png and passive_mask.png where the passive detector ran) and report.json; the JSON last, so its presence means the folder is complete."""
    folder = Path(folder)
    if images:
        save_atomic(found.recovered, folder / "recovered.png")
        save_atomic(found.mask, folder / "mask.png")
        save_atomic(found.overlay(), folder / "overlay.png")
        if found.presence is not None:
            save_atomic(found.presence, folder / "presence.png")
        if found.tamper_mask is not None:
            save_atomic(found.tamper_mask, folder / "tamper_mask.png")
        if found.passive_map is not None and found.passive_mask is not None:
            save_atomic(found.passive_map, folder / "passive_map.png")
            save_atomic(found.passive_mask, folder / "passive_mask.png")
    return write_text_atomic(found.to_json() + "\n", folder / REPORT_FILE)


def plan_inspect(inputs: Iterable[str | Path], out_dir: str | Path | None = None, *, recursive: bool = False,
                 force: bool = False) -> list[InspectJob | BatchResult]:
    """What an inspect batch will do, in input order (finished reports are read back)."""
    out = Path(out_dir) if out_dir is not None else None
    items = expand_inputs(inputs, recursive)
    clashes = _check_names(items, lambda it: it.relative)
    plan: list[InspectJob | BatchResult] = []
    for it in items:
        folder = out / it.relative if out is not None else None
        if it.path in clashes:
            plan.append(BatchResult(it.path, None, "failed", clashes[it.path]))
            continue
        if folder is not None and not force and (folder / REPORT_FILE).is_file():
            try:
                plan.append(BatchResult(it.path, folder, "skipped",
                                        report=json.loads((folder / REPORT_FILE).read_text())))
                continue
            except (OSError, ValueError):
                pass  # an unreadable report is redone
        plan.append(InspectJob(it.path, folder))
    return plan


def _inspect_save(job: InspectJob, found: Inspection, images: bool = True) -> BatchResult:
    if job.folder is not None:
        write_report_folder(found, job.folder, images)
    return BatchResult(job.source, job.folder, "done", report=found.to_dict(), inspection=found)


def run_inspect_job(job: InspectJob, model: Model, original_size: tuple[int, int] | None = None,
                    images: bool = True, passive: bool | None = None) -> BatchResult:
    """Read, inspect and write one photo's report (the unit a Ray worker runs)."""
    try:
        found = inspect(read_photo(job.source).image, model, original_size=original_size, passive=passive)
        return _inspect_save(job, found, images)
    except Exception as e:
        return BatchResult(job.source, None, "failed", _message(job.source, e))


def inspect_many(inputs: Iterable[str | Path], out_dir: str | Path | None = None, model: Model | str | None = None,
                 *, original_size: tuple[int, int] | None = None, recursive: bool = False, force: bool = False,
                 images: bool = True, workers: int = 1, progress: bool = False,
                 passive: bool | None = None) -> Iterator[BatchResult]:
    """Inspect every photo of ``inputs`` (``passive`` as ``api.inspect``'s); with ``out_dir``, a report folder per photo
    (``out_dir / <relative name>/``) and, when the generator is exhausted or closed,
    ``results.jsonl`` and ``results.csv`` for the photos it went through."""
    plan = plan_inspect(inputs, out_dir, recursive=recursive, force=force)
    m = get_model(model)
    done: list[BatchResult] = []
    try:
        for res in _progress(_run(plan, lambda j: read_photo(j.source),
                                  lambda j, p: inspect(p.image, m, original_size=original_size, passive=passive),
                                  lambda j, f: _inspect_save(j, f, images), workers),
                             len(plan), "inspecting", progress):
            done.append(res)
            yield res
    finally:
        if out_dir is not None and done:
            write_results(done, Path(out_dir))


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
