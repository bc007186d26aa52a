"""``clrnet eval <study>`` (one subcommand per study of ``evaluation.studies``) and
``clrnet bench``. The flags of the single ``eval`` command (``--tamper``, ``--layers``, ...)
stay for one release as deprecated aliases of the subcommands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from clrnet.cli.common import _fail, _keyed_model
from clrnet.models.zoo import DEFAULT_MODEL

app = typer.Typer()
eval_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                       help="Measure the protection: one subcommand per study, each printing its tables and, "
                            "with --out, writing report.md, results.csv and figure.png (--model default: "
                            f"{DEFAULT_MODEL}; the paper study's: clrnet-small-128).")

DATA = typer.Option(..., "--data", help="Folder of photos (e.g. ../shared/datasets/test/kodak24); false-alarms: "
                                        "the datasets root.")
MODEL = typer.Option(None, "--model", "-m", help="Shipped model name or .safetensors file (default: the study's: "
                                                 f"{DEFAULT_MODEL}, or clrnet-small-128 for paper).")
OUT = typer.Option(None, "--out", help="Folder for report.md, results.csv and figure.png.")
ATTACK = typer.Option(None, "--attack", "-a", help="Only these real attacks (repeatable).")
CROPS = typer.Option(1, "--crops-per-bin", help="Crops per survival bin, photo and attack (real-path: per photo).")
SIZE = typer.Option("native", "--size", help="The photos' own size ('native'), a square side (256) or long x short "
                                             "(768x512, orientation kept).")
LIMIT = typer.Option(None, "--limit", help="Only the first N photos of --data.")
QUICK = typer.Option(False, "--quick", help="A smoke test: 2 photos (and JPEG 70 and none where attacks apply).")
SUMMARY = typer.Option(False, "--summary", help="paper: also print the headline summary per attack.")
PER_FAMILY = typer.Option(40, "--per-family", help="false-alarms: synthetic images per family.")
KEY = typer.Option(None, "--key", help="false-alarms: read with this key file's patterns (every variant of them).")
WORKERS = typer.Option(1, "--workers", "-j", help="false-alarms: processes of one torch thread each.")
POOL = typer.Option(None, "--pool", help="security: the attacker's photos for averaging (default: train/ beside "
                                         "--data's split).")
PROTECTED_ONLY = typer.Option(False, "--protected-only", help="crops / attacks: leave out the never-protected copies.")


def run_study(name: str, data: Path, model: Optional[str], out: Optional[Path] = None,
              attack: Optional[list[str]] = None, crops: int = 1, seed: int = 0, size: str = "native",
              limit: Optional[int] = None, quick: bool = False, summary: bool = False, per_family: int = 40,
              key: Optional[Path] = None, workers: int = 1, pool: Optional[Path] = None,
              protected_only: bool = False) -> None:
    """Run one study and print (and with ``out`` write) what it found; one-line errors."""
    import torch

    from clrnet.evaluation.studies import STUDIES, Options, write_study
    from clrnet.files.datasets import parse_size

    study = STUDIES[name]
    model = model or ("clrnet-small-128" if study.kinds == ("paper",) else DEFAULT_MODEL)
    if crops < 1:
        _fail(f"--crops-per-bin {crops}: must be at least 1")
    try:
        parse_size(size)
    except ValueError as e:
        _fail(str(e))
    if key is not None and name != "false-alarms":
        _fail("--key applies to `eval false-alarms` (was --false-alarms; security makes its own keys)")
    torch.set_num_threads(2)
    m = _keyed_model(model, key)
    if m.kind not in study.kinds:
        _fail(f"eval {name} measures the {' or '.join(study.kinds)} model"
              + (f": use --model {DEFAULT_MODEL} (not {model})" if "designed" in study.kinds
                 else f" (clrnet-small-128), not {model}"))
    options = Options(data, out, list(attack) if attack else None, size, crops, seed, limit, quick, summary,
                      per_family, workers, pool, protected_only, m.name if key else Path(model).name)
    try:
        result = study.run(m, options)
        typer.echo(result.text)
        if out:
            typer.echo(f"written: {out}/" + ", ".join(write_study(result, out)))
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))


def _study_command(name: str):
    def command(data: Path = DATA, model: Optional[str] = MODEL, out: Optional[Path] = OUT,
                attack: Optional[list[str]] = ATTACK, crops: int = CROPS, seed: int = typer.Option(0, "--seed"),
                size: str = SIZE, limit: Optional[int] = LIMIT, quick: bool = QUICK, summary: bool = SUMMARY,
                per_family: int = PER_FAMILY, key: Optional[Path] = KEY, workers: int = WORKERS,
                pool: Optional[Path] = POOL, protected_only: bool = PROTECTED_ONLY) -> None:
        run_study(name, data, model, out, attack, crops, seed, size, limit, quick, summary, per_family, key,
                  workers, pool, protected_only)

    return command


def _register() -> None:
    from clrnet.evaluation.studies import STUDIES

    for name, study in STUDIES.items():
        eval_app.command(name, help=study.help)(_study_command(name))


_register()

# the single eval command's flags, each now a subcommand
_DEPRECATED = {"tamper": "tamper", "false_alarms": "false-alarms", "formats": "formats", "layers": "layers",
               "security": "security", "capacity": "capacity", "real_path": "real-path"}


@eval_app.callback()
def eval_(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Deprecated: give it after the study's name."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", hidden=True),
    out: Optional[Path] = typer.Option(None, "--out", hidden=True),
    attack: Optional[list[str]] = typer.Option(None, "--attack", "-a", hidden=True),
    crops: int = typer.Option(1, "--crops-per-bin", hidden=True),
    seed: int = typer.Option(0, "--seed", hidden=True),
    quick: bool = typer.Option(False, "--quick", hidden=True),
    summary: bool = typer.Option(False, "--summary", hidden=True),
    size: str = typer.Option("native", "--size", hidden=True),
    capacity: bool = typer.Option(False, "--capacity", hidden=True),
    real_path: bool = typer.Option(False, "--real-path", hidden=True),
    formats: bool = typer.Option(False, "--formats", hidden=True),
    false_alarms: bool = typer.Option(False, "--false-alarms", hidden=True),
    per_family: int = typer.Option(40, "--per-family", hidden=True),
    key: Optional[Path] = typer.Option(None, "--key", hidden=True),
    eval_workers: int = typer.Option(1, "--workers", "-j", hidden=True),
    layers: bool = typer.Option(False, "--layers", hidden=True),
    security: bool = typer.Option(False, "--security", hidden=True),
    tamper: bool = typer.Option(False, "--tamper", hidden=True),
    pool: Optional[Path] = typer.Option(None, "--pool", hidden=True),
    limit: Optional[int] = typer.Option(None, "--limit", hidden=True),
    protected_only: bool = typer.Option(False, "--protected-only", hidden=True),
) -> None:
    """Measure the protection: `clrnet eval <study> --data FOLDER` (studies below)."""
    if ctx.invoked_subcommand is not None:
        return
    if data is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    flags = {k: v for k, v in dict(tamper=tamper, false_alarms=false_alarms, formats=formats, layers=layers,
                                   security=security, capacity=capacity, real_path=real_path).items() if v}
    from clrnet.api import get_model

    try:
        kind = get_model(model).kind
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    name = _DEPRECATED[next(iter(flags))] if flags else ("paper" if kind == "paper" else "attacks")
    old = f"--{next(iter(flags)).replace('_', '-')} " if flags else ""
    typer.echo(f"warning: `clrnet eval {old}--data ...` is deprecated (for one release): use "
               f"`clrnet eval {name} --data ...`", err=True)
    run_study(name, data, model, out, attack, crops, seed, size, limit, quick, summary, per_family, key,
              eval_workers, pool, protected_only)


@app.command()
def bench(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Shipped model name or .safetensors file."),
    sizes: str = typer.Option("128,256,512", "--sizes", help="Square photo sizes to time, comma-separated."),
    repeats: int = typer.Option(5, "--repeats", help="Timed calls per size (median), after one warm-up."),
    threads: int = typer.Option(2, "--threads", help="torch.set_num_threads for the run."),
    large: bool = typer.Option(True, "--large/--no-large", help="Also time one 12-megapixel (4000x3000) photo."),
    processes: int = typer.Option(0, "--processes", help="Also the photos/s of protect + inspect at each size "
                                  "with this many single-thread processes side by side (as --engine ray "
                                  "runs a batch); 0: not measured."),
    routes: bool = typer.Option(False, "--routes/--no-routes", help="Also time inspect on the copies people "
                                "send of a 2048x1365 and a 12 MP photo: whole at its own size, downscaled to "
                                "1280 and 960 px, a 50 % crop at 1080 px, a laundered crop, never protected "
                                "(JPEG 85; slow: minutes)."),
    passive: bool = typer.Option(False, "--passive/--no-passive", help="Also time the passive detector alone "
                                 "at 1024x1024 and 4000x3000."),
) -> None:
    """Speed of protect and inspect, one call at a time (and, with --processes, a batch's throughput);
    prints a table."""
    import torch

    from clrnet.api import get_model
    from clrnet.evaluation.bench import bench as run_bench
    from clrnet.evaluation.bench import format_bench

    try:
        size_list = tuple(int(v) for v in sizes.split(","))
        if any(v < 32 for v in size_list) or repeats < 1 or threads < 1 or processes < 0:
            raise ValueError
    except ValueError:
        _fail(f"--sizes {sizes!r} / --repeats {repeats} / --threads {threads} / --processes {processes}: "
              "expected sizes >= 32 like 128,256, positive counts and processes >= 0")
    torch.set_num_threads(threads)
    try:
        m = get_model(model)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    rows = run_bench(m, size_list, repeats, (4000, 3000) if large else None)
    if processes:
        from clrnet.evaluation.bench import throughput

        rows += [throughput(model, s, processes) for s in size_list]
    if routes:
        from clrnet.evaluation.bench import bench_routes

        rows += bench_routes(m, repeats=1 if repeats < 3 else 3)
    if passive:
        from clrnet.evaluation.bench import bench_passive

        rows += bench_passive(repeats=repeats)
    typer.echo(format_bench(rows, model))
