"""What the commands share: one-line errors, batch summaries, model loading, common options."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _parse_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    from clrnet.core.geometry import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        _fail(f"--original-size {e}")
    return None


def _echo_warnings(warnings: list[str]) -> None:
    for w in dict.fromkeys(warnings):
        typer.echo(f"warning: {w}", err=True)


def _finish_batch(results: list, verb: str, out: Path) -> None:
    """Summary line, the failures one per line, exit code 1 if any failed."""
    counts = {k: sum(r.status == k for r in results) for k in ("done", "skipped", "failed")}
    _echo_warnings([w for r in results for w in r.warnings])
    typer.echo(f"{verb} {counts['done']}, skipped {counts['skipped']} (output already there), "
               f"failed {counts['failed']}; outputs in {out}/")
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        typer.echo(f"failed: {r.error}", err=True)
    if failed:
        raise typer.Exit(1)


def _batch_guard(run):
    """Run a batch; input errors become one-line failures, Ctrl-C exits 130 after a note."""
    from clrnet.files.inputs import InputPatternError

    try:
        return run()
    except (InputPatternError, ValueError, FileNotFoundError, ConnectionError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        typer.echo("interrupted: finished photos are kept; run the same command again to resume", err=True)
        raise typer.Exit(130)


def _keyed_model(model: str, key: Optional[Path], thorough: Optional[bool] = None):
    """The model by name, with the key file's patterns if given (``thorough``: look
    beneath every protection, False: only above chance, None: the model's default);
    one-line errors."""
    from clrnet.api import get_model, with_key
    from clrnet.api import thorough as look_beneath

    try:
        return look_beneath(with_key(get_model(model), key), thorough)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))


def _check_batch_options(workers: int, engine: str, address: Optional[str]) -> None:
    if workers < 1:
        _fail(f"--workers {workers}: must be at least 1")
    if engine not in ("plain", "ray"):
        _fail(f"--engine {engine!r}: choose plain or ray")
    if address and engine != "ray":
        _fail("--address joins a Ray cluster: use it with --engine ray")
    if engine == "ray":
        try:
            import ray.data  # noqa: F401
        except ImportError:
            _fail("--engine ray needs Ray Data: pip install 'clrnet[scale]'")


WORKERS_OPTION = typer.Option(1, "--workers", "-j", help="Threads that read and write photos in parallel.")
RECURSIVE_OPTION = typer.Option(False, "--recursive", "-r", help="Include subfolders of folder inputs.")
ENGINE_OPTION = typer.Option("plain", "--engine", help="plain (this process) or ray (Ray Data; extra: scale).")
ADDRESS_OPTION = typer.Option(None, "--address", help="--engine ray: the Ray cluster to join "
                              "(default: start Ray on this machine).")
KEY_OPTION = typer.Option(None, "--key", help="Secret key file (clrnet keygen; protection v2 only): the patterns "
                          "only this key's holders can read.")
INPUTS_HELP = "Photos: files, folders (--recursive: with subfolders) or quoted globs like 'shoot/*.jpg'."
