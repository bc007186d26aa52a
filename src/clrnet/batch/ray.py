"""Batch protect / inspect on Ray Data (``--engine ray``): the same jobs as the plain loop.

The driver plans the batch exactly as :func:`clrnet.batch.local.plan_protect` /
:func:`clrnet.batch.local.plan_inspect` do (names, formats, skips, refusals), so a rerun
skips finished outputs on either engine. The jobs become a Ray dataset of rows;
``map_batches`` hands them to a callable class that loads the model once per
worker and runs :func:`run_protect_job` / :func:`run_inspect_job`, the very
functions of the plain path. Workers read the photo files themselves with
:func:`clrnet.read_photo` (Ray's own image reader drops EXIF, XMP, IPTC and ICC)
and write outputs atomically, so both engines write the same bytes. Without an
address Ray starts on this machine; with one it joins that cluster (the output
folder must then be one every node sees, e.g. a shared file system).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from clrnet.batch.local import (
    BatchResult,
    InspectJob,
    ProtectJob,
    plan_inspect,
    plan_protect,
    run_inspect_job,
    run_protect_job,
    write_results,
)
from clrnet.files.formats import OutputFormat


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (Ray itself retries for minutes)."""
    import socket

    if address == "auto" or ":" not in address:
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise ConnectionError(f"cannot start or join the Ray cluster at {address}: {e}") from None


def start_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start Ray on this machine."""
    import logging

    import ray

    if ray.is_initialized():
        return
    common = dict(runtime_env={"env_vars": {"TQDM_DISABLE": "1"}}, log_to_driver=False, logging_level=logging.WARNING)
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **common)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConnectionError(f"cannot start or join {where}: {first}") from None


def _result_columns(index: np.ndarray, results: list[BatchResult]) -> dict[str, np.ndarray]:
    return {"index": np.asarray(index),
            "has_output": np.array([r.output is not None for r in results]),
            "status": np.array([r.status for r in results], dtype=object),
            "error": np.array([r.error or "" for r in results], dtype=object),
            "warnings": np.array([json.dumps(r.warnings) for r in results], dtype=object),
            "report": np.array([json.dumps(r.report) for r in results], dtype=object),
            "seconds": np.array([r.seconds for r in results])}


class ProtectWorker:
    """A Ray Data worker: the model loads once, then batch after batch of protect jobs."""

    def __init__(self, model: str, key: str | None = None, threads: int = 1) -> None:
        import torch

        from clrnet.api import get_model, with_key
        from clrnet.core.memory import keep_freed_memory

        keep_freed_memory()
        torch.set_num_threads(threads)
        self.model = with_key(get_model(model), key)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        jobs = [ProtectJob(Path(s), Path(t), OutputFormat(f, None if q < 0 else int(q)), bool(r))
                for s, t, f, q, r in zip(batch["source"], batch["target"], batch["format"], batch["quality"],
                                         batch["replace"])]
        return _result_columns(batch["index"], [run_protect_job(j, self.model) for j in jobs])


class InspectWorker:
    """A Ray Data worker: the model loads once, then batch after batch of inspect jobs."""

    def __init__(self, model: str, original_size: tuple[int, int] | None, images: bool, key: str | None = None,
                 threads: int = 1, thorough: bool | None = None, passive: bool | None = None) -> None:
        import torch

        from clrnet.api import get_model, with_key
        from clrnet.api import thorough as look_beneath
        from clrnet.core.memory import keep_freed_memory

        keep_freed_memory()
        torch.set_num_threads(threads)
        self.model = look_beneath(with_key(get_model(model), key), thorough)
        self.original_size, self.images, self.passive = original_size, images, passive

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [run_inspect_job(InspectJob(Path(s), Path(f) if f else None), self.model, self.original_size,
                                   self.images, self.passive) for s, f in zip(batch["source"], batch["folder"])]
        return _result_columns(batch["index"], results)


def _collect(plan: list, jobs: list, rows: list[dict]) -> list[BatchResult]:
    """Results in input order: the plan's own results, and the workers' rows (which
    name their job by index: workers see absolute paths, results keep the user's)."""
    done = {}
    for r in rows:
        job = jobs[int(r["index"])]
        out = (job.target if isinstance(job, ProtectJob) else job.folder) if r["has_output"] else None
        error = r["error"].replace(str(job.source.resolve()), str(job.source)) or None
        done[id(job)] = BatchResult(job.source, out, r["status"], error, json.loads(r["warnings"]),
                                    json.loads(r["report"]), None, float(r["seconds"]))
    return [p if isinstance(p, BatchResult) else done[id(p)] for p in plan]


def _absolute(model: str) -> str:
    """A model file's absolute path (workers may run elsewhere); a shipped name as it is."""
    return str(Path(model).resolve()) if Path(model).is_file() else model


def _run(jobs: list, columns: dict[str, list], worker: type, kwargs: dict, concurrency: int | None,
         batch_size: int) -> list[dict]:
    import ray

    if not jobs:
        return []
    n = concurrency or max(1, int(ray.available_resources().get("CPU", 1)))
    # the rows are built on the driver, in blocks of about one batch: no task needs a CPU the
    # workers (one per CPU) hold
    ds = ray.data.from_items([dict(zip(columns, vals)) for vals in zip(*columns.values())],
                             override_num_blocks=min(len(jobs), max(n, -(-len(jobs) // batch_size))))
    out = ds.map_batches(worker, fn_constructor_kwargs=kwargs, batch_size=batch_size, batch_format="numpy",
                         concurrency=n, num_cpus=1)
    return out.take_all()


def _absolute_key(key: str | Path | None) -> str | None:
    """A key file's absolute path for the workers (None: no key)."""
    return None if key is None else str(Path(key).resolve())


def protect_ray(inputs: Iterable[str | Path], out_dir: str | Path, model: str, *, format: str | None = None,
                quality: int | None = None, recursive: bool = False, force: bool = False,
                address: str | None = None, concurrency: int | None = None,
                batch_size: int = 4, key: str | Path | None = None) -> list[BatchResult]:
    """``protect_many`` on Ray Data: same plan, same outputs, one model per worker
    (``key``: a key file every worker reads)."""
    plan = plan_protect(inputs, out_dir, format=format, quality=quality, recursive=recursive, force=force)
    jobs = [p for p in plan if isinstance(p, ProtectJob)]
    start_ray(address)
    cols = {"index": list(range(len(jobs))), "source": [str(j.source.resolve()) for j in jobs],
            "target": [str(j.target.resolve()) for j in jobs], "format": [j.format.name for j in jobs],
            "quality": [-1 if j.format.quality is None else j.format.quality for j in jobs],
            "replace": [j.replace for j in jobs]}
    kwargs = {"model": _absolute(model), "key": _absolute_key(key)}
    return _collect(plan, jobs, _run(jobs, cols, ProtectWorker, kwargs, concurrency, batch_size))


def inspect_ray(inputs: Iterable[str | Path], out_dir: str | Path | None, model: str, *,
                original_size: tuple[int, int] | None = None, recursive: bool = False, force: bool = False,
                images: bool = True, address: str | None = None, concurrency: int | None = None,
                batch_size: int = 4, key: str | Path | None = None, thorough: bool | None = None,
                passive: bool | None = None) -> list[BatchResult]:
    """``inspect_many`` on Ray Data; writes results.jsonl / results.csv like the plain path
    (``thorough``: as ``pipeline.thorough``; None: the model's default)."""
    plan = plan_inspect(inputs, out_dir, recursive=recursive, force=force)
    jobs = [p for p in plan if isinstance(p, InspectJob)]
    start_ray(address)
    cols = {"index": list(range(len(jobs))), "source": [str(j.source.resolve()) for j in jobs],
            "folder": ["" if j.folder is None else str(j.folder.resolve()) for j in jobs]}
    kwargs = {"model": _absolute(model), "original_size": original_size, "images": images,
              "key": _absolute_key(key), "thorough": thorough, "passive": passive}
    results = _collect(plan, jobs, _run(jobs, cols, InspectWorker, kwargs, concurrency, batch_size))
    if out_dir is not None and results:
        write_results(results, Path(out_dir))
    return results
