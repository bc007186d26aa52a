"""Command line: a thin layer over the Python API (``clrnet --help``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from clrnet.models.zoo import DEFAULT_MODEL
from clrnet.protection.key import DEFAULT_VARIANTS, MAX_VARIANTS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="CLR-Net: protect photos against malicious cropping; localise crops and "
                       "recover what was cut away.")


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
    from clrnet.api import get_model, thorough as look_beneath, with_key

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


@app.command()
def protect(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help=INPUTS_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Protected file (one INPUT file) or output folder."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Shipped model name or .safetensors file."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (never an input); protect photos "
                               "that already carry a protection."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="jpeg, webp, png or tiff (default: the input's own)."),
    quality: Optional[int] = typer.Option(None, "--quality", "-q", help="JPEG / WebP quality (default 95; WebP: lossless if the input is)."),
    recursive: bool = RECURSIVE_OPTION,
    workers: int = WORKERS_OPTION,
    engine: str = ENGINE_OPTION,
    address: Optional[str] = ADDRESS_OPTION,
    key: Optional[Path] = KEY_OPTION,
) -> None:
    """Write protected copies: same size, visually identical, metadata kept."""
    from PIL import Image

    from clrnet.batch.local import protect_file
    from clrnet.files.formats import OutputFormat, choose_format, format_of_output
    from clrnet.files.imageio import ImageInputError, OutputExistsError, check_writable
    from clrnet.files.inputs import is_batch

    _check_batch_options(workers, engine, address)
    if is_batch(inputs) or output.is_dir() or not output.suffix or engine == "ray":
        from clrnet.batch.local import protect_many

        def run() -> list:
            if engine == "ray":
                from clrnet.batch.ray import protect_ray

                return protect_ray(inputs, output, model, format=format, quality=quality, recursive=recursive,
                                   force=force, address=address, key=key)
            m = _keyed_model(model, key)
            return list(protect_many(inputs, output, m, format=format, quality=quality, recursive=recursive,
                                     force=force, workers=workers, progress=True))

        if engine == "ray":
            _keyed_model(model, key)  # a bad key or model fails here, in one line
        _finish_batch(_batch_guard(run), "protected", output)
        return
    image = inputs[0]
    m = _keyed_model(model, key)
    try:
        fmt: OutputFormat = choose_format(image, format, quality) if format else format_of_output(output, quality)
        if format and output.suffix.lower() not in (fmt.suffix, ".jpeg" if fmt.name == "jpeg" else fmt.suffix):
            raise ValueError(f"{output}: suffix does not match --format {fmt.name} (use {fmt.suffix})")
        check_writable(output, [image], force)
        _echo_warnings(protect_file(image, output, m, fmt, replace=force, refuse_protected=not force))
    except (ImageInputError, OutputExistsError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    with Image.open(output) as im:
        typer.echo(f"protected {image} -> {output} ({im.size[0]}x{im.size[1]}, {fmt.label})")


@app.command()
def inspect(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help=INPUTS_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Report folder (one INPUT file), or a folder of report "
                                "folders plus results.jsonl and results.csv (several)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Shipped model name or .safetensors file."),
    original_size: Optional[str] = typer.Option(None, "--original-size", help="Original WIDTHxHEIGHT if known; otherwise estimated."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty report folder; redo finished photos."),
    recursive: bool = RECURSIVE_OPTION,
    images: bool = typer.Option(True, "--images/--no-images", help="Batch: also write each photo's images, not only report.json."),
    workers: int = WORKERS_OPTION,
    engine: str = ENGINE_OPTION,
    address: Optional[str] = ADDRESS_OPTION,
    key: Optional[Path] = KEY_OPTION,
    thorough: Optional[bool] = typer.Option(None, "--thorough/--fast", help="clrnet-v2: look beneath every "
                                            "protection however weak the earlier ruler (the default), or "
                                            "--fast: only where it reads above chance (2-4x faster on an "
                                            "uncropped protected photo; misses about 1 laundered crop in 10)."),
) -> None:
    """Was each photo cropped from a protected photo? Where, and what was cut away?"""
    from clrnet.batch.local import write_report_folder
    from clrnet.files.imageio import ImageInputError, OutputExistsError, open_image
    from clrnet.files.inputs import is_batch
    from clrnet.api import inspect as inspect_image

    size = _parse_size(original_size)
    if output.exists() and not output.is_dir():
        _fail(f"{output}: exists and is not a folder")
    _check_batch_options(workers, engine, address)
    if is_batch(inputs) or engine == "ray":
        from clrnet.batch.local import RESULTS_CSV, RESULTS_JSONL, inspect_many

        def run() -> list:
            if engine == "ray":
                from clrnet.batch.ray import inspect_ray

                return inspect_ray(inputs, output, model, original_size=size, recursive=recursive, force=force,
                                   images=images, address=address, key=key, thorough=thorough)
            m = _keyed_model(model, key, thorough)
            return list(inspect_many(inputs, output, m, original_size=size, recursive=recursive, force=force,
                                     images=images, workers=workers, progress=True))

        if engine == "ray":
            _keyed_model(model, key, thorough)
        results = _batch_guard(run)
        cropped = sum(bool((r.report or {}).get("cropped")) for r in results)
        edited = sum(bool((r.report or {}).get("tampered")) for r in results)
        typer.echo(f"{cropped} of {len(results)} photos called cropped, {edited} edited; "
                   f"{output / RESULTS_JSONL}, {output / RESULTS_CSV}")
        _finish_batch(results, "inspected", output)
        return
    image = inputs[0]
    m = _keyed_model(model, key, thorough)
    try:
        if output.is_dir() and any(output.iterdir()) and not force:
            raise OutputExistsError(f"{output}: folder is not empty (use --force to write into it)")
        photo = open_image(image)
        found = inspect_image(photo, m, original_size=size)
        write_report_folder(found, output)
    except (ImageInputError, OutputExistsError, FileNotFoundError) as e:
        _fail(str(e))
    verdict = "CROPPED" if found.cropped else "not cropped"
    x0, y0, x1, y1 = found.box
    if found.protected is False:
        typer.echo(f"{image}: no protection found (strength {found.protection:.3f}): this photo was "
                   f"probably never protected, so crops cannot be localised; not cropped "
                   f"(score {found.score:.3f})")
        return
    typer.echo(f"{image}: {verdict} (score {found.score:.3f})")
    typer.echo(f"kept box in original frame: x {x0:.3f}-{x1:.3f}, y {y0:.3f}-{y1:.3f} "
               f"({(x1 - x0) * (y1 - y0):.0%} of the area)")
    if found.tampered is not None:
        typer.echo(f"EDITED: {found.tamper_score:.1%} of the kept part changed after protection "
                   f"(tamper_mask.png, outlined in overlay.png)" if found.tampered
                   else "no edits found inside the kept part")
    est = " (estimated)" if found.size_estimated else ""
    typer.echo(f"original size{est}: {found.original_size[0]}x{found.original_size[1]}; report in {output}/")


@app.command()
def train(
    config: str = typer.Option("small", "--config", "-c", help="YAML config file or built-in name (small, paper; refine: the reconstruction network; tamper: the tamper network)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset root with train/ and val/ (default: $CLRNET_DATA or ../shared/datasets)."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Checkpoints, log.csv, best.safetensors (default: runs/<name>)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Train until this step (default: the config's)."),
    nproc: int = typer.Option(1, "--nproc", help="Data-parallel processes on this machine (runs torchrun). "
                              "Global batch = batch_size x nproc."),
) -> None:
    """Train (or resume training) a model; logs to RUN_DIR/log.csv."""
    from clrnet.paper.config import load_config
    from clrnet.training.distributed import close_world, init_world
    from clrnet.paper.training import Trainer

    refine_cfg = _refine_config(config)
    tamper_cfg = _tamper_config(config)
    if nproc < 1:
        _fail(f"--nproc {nproc}: must be at least 1")
    if tamper_cfg is not None:
        from clrnet.training.tamper import train_tamper

        rd = run_dir or Path("runs") / tamper_cfg.name
        if (rd / "last.pt").is_file():
            typer.echo(f"resuming {rd}")
        try:
            best = train_tamper(tamper_cfg, rd, data, steps)
        except FileNotFoundError as e:
            _fail(f"{e} (set --data or $CLRNET_DATA)")
        typer.echo(f"done: {best} (best on validation, with its threshold), {rd}/last.pt")
        return
    if nproc > 1:
        _torchrun(nproc, config, data, run_dir, steps)
        return
    if refine_cfg is not None:
        from clrnet.training.refine import train_refine

        world = init_world()
        rd = run_dir or Path("runs") / refine_cfg.name
        if (rd / "last.pt").is_file() and world.main:
            typer.echo(f"resuming {rd}")
        try:
            best = train_refine(refine_cfg, rd, data, steps, world=world)
        except (FileNotFoundError, ValueError) as e:
            _fail(f"{e} (set --data or $CLRNET_DATA)" if isinstance(e, FileNotFoundError) else str(e))
        finally:
            close_world(world)
        if world.main:
            typer.echo(f"done: {best} (best on validation), {rd}/last.safetensors")
        return

    try:
        cfg = load_config(config)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    rd = run_dir or Path("runs") / cfg.name
    world = init_world()
    try:
        trainer = Trainer(cfg, rd, data, world=world)
    except FileNotFoundError as e:
        close_world(world)
        _fail(f"{e} (set --data or $CLRNET_DATA)")
    if trainer.state.step and world.main:
        typer.echo(f"resuming {rd} from step {trainer.state.step}")
    try:
        trainer.fit(steps)
    finally:
        close_world(world)
    if world.main:
        typer.echo(f"done: {rd}/best.safetensors (best on validation), {rd}/last.safetensors")


def _torchrun(nproc: int, config: str, data: Optional[Path], run_dir: Optional[Path], steps: Optional[int]) -> None:
    """``clrnet train --nproc N``: the same command under torchrun on this machine."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "clrnet.train", "--config", config]
    for flag, value in (("--data", data), ("--run-dir", run_dir), ("--steps", steps)):
        if value is not None:
            cmd += [flag, str(value)]
    typer.echo("running: " + " ".join(cmd[2:]))
    code = subprocess.call(cmd)
    if code:
        raise typer.Exit(code)


def _config_of_kind(config: str, kind: str) -> dict | None:
    """The YAML of ``config`` (a file or a built-in name) if it says ``kind: <kind>``, else None."""
    from importlib import resources

    import yaml

    path = Path(config)
    res = resources.files("clrnet") / "configs" / f"{config}.yaml"
    text = path.read_text() if path.is_file() else (res.read_text() if res.is_file() else "")
    data = yaml.safe_load(text) if text else None
    if not isinstance(data, dict) or data.get("kind") != kind:
        return None
    return {k: v for k, v in data.items() if k != "kind"}


def _refine_config(config: str):
    """The reconstruction network's config if ``config`` names one (``kind: refine``), else None."""
    from clrnet.training.refine import RefineConfig

    data = _config_of_kind(config, "refine")
    return None if data is None else RefineConfig.model_validate(data)


def _tamper_config(config: str):
    """The tamper network's config if ``config`` names one (``kind: tamper``), else None."""
    from clrnet.training.tamper import TamperConfig

    data = _config_of_kind(config, "tamper")
    return None if data is None else TamperConfig.model_validate(data)


@app.command()
def demo(
    output: Path = typer.Option(Path("demo-out"), "-o", "--output", help="Folder for demo.png and the images."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Shipped model name or .safetensors file."),
    size: Optional[int] = typer.Option(None, "--size", min=64, max=4096,
                                       help="Side of the sample photo (default: 512 as shipped; 2048 for "
                                            "clrnet-v2, the working frame of a phone photo)."),
) -> None:
    """Protect a sample photo, crop it to 60 % + JPEG 80, inspect it; write a figure."""
    from clrnet.evaluation.demo import run_demo

    try:
        nums = run_demo(output, model, size=size)
    except FileNotFoundError as e:
        _fail(str(e))
    typer.echo(f"sample photo: scikit-image's astronaut at {nums['size']} x {nums['size']}")
    typer.echo(f"protected photo PSNR: {nums['protected_psnr_db']:.2f} dB")
    typer.echo(f"verdict: {'CROPPED' if nums['cropped'] else 'not cropped'} (score {nums['score']:.3f})")
    typer.echo("true box:      " + ", ".join(f"{v:.3f}" for v in nums["true_box"]))
    typer.echo("predicted box: " + ", ".join(f"{v:.3f}" for v in nums["predicted_box"])
               + f"  (IoU {nums['box_iou']:.3f})")
    typer.echo(f"cut-away region PSNR: recovered {nums['recovered_psnr_cut_db']:.2f} dB "
               f"(native {nums['recovered_native_psnr_cut_db']:.2f} dB), zero-fill {nums['zero_fill_psnr_cut_db']:.2f} dB, "
               f"Telea inpainting given the true box {nums['inpainting_psnr_cut_db']:.2f} dB"
               + (f", biharmonic (native) {nums['inpainting_native_psnr_cut_db']:.2f} dB"
                  if "inpainting_native_psnr_cut_db" in nums else ""))
    typer.echo(f"figure: {output / 'demo.png'}")


@app.command("eval")
def eval_(
    data: Path = typer.Option(..., "--data", help="Folder of photos (e.g. ../shared/datasets/test/kodak24)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Shipped model name or .safetensors file."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.md, results.csv, cells.csv, curves.png, figure.png."),
    attack: Optional[list[str]] = typer.Option(None, "--attack", "-a", help="Only these real attacks (repeatable); default: all."),
    crops: int = typer.Option(1, "--crops-per-bin", help="Crops per survival bin, photo and attack "
                              "(--real-path: seeded crops per photo)."),
    seed: int = typer.Option(0, "--seed"),
    quick: bool = typer.Option(False, "--quick", help="2 photos, JPEG 70 and none: a smoke test."),
    summary: bool = typer.Option(False, "--summary", help="Also print the headline summary per attack."),
    size: str = typer.Option("native", "--size", help="clrnet-v2 only: the photos' own size ('native'), a square side (256) or long x short (768x512, orientation kept)."),
    capacity: bool = typer.Option(False, "--capacity", help="clrnet-v2 only: the payload capacity table instead."),
    real_path: bool = typer.Option(False, "--real-path", help="clrnet-v2 only: photos of 8 MP or more through protect, "
                                   "crop 40 %, downscale to 2048 px, JPEG 85 instead."),
    formats: bool = typer.Option(False, "--formats", help="How the protection survives each output format of "
                                 "`protect` instead (whole photo, and crops + JPEG 80)."),
    false_alarms: bool = typer.Option(False, "--false-alarms", help="Never-protected images instead: --data is the "
                                      "datasets root (train/, val/, test/), plus synthetic hard cases."),
    per_family: int = typer.Option(40, "--per-family", help="--false-alarms: synthetic images per family."),
    key: Optional[Path] = typer.Option(None, "--key", help="--false-alarms: read with this key file's patterns "
                                       "(every variant of them), as inspect --key does."),
    eval_workers: int = typer.Option(1, "--workers", "-j", help="--false-alarms: processes of one torch thread "
                                     "each (2 on 2 cores: about twice as fast; the same counts)."),
    layers: bool = typer.Option(False, "--layers", help="clrnet-v2 only: crops of protected photos protected "
                                "again (laundering), and photos protected twice, instead."),
    security: bool = typer.Option(False, "--security", help="clrnet-v2 only: what removing the protection costs an "
                                  "attacker (public pattern subtracted; averaging N photos of one key) instead."),
    tamper: bool = typer.Option(False, "--tamper", help="clrnet-v2 only: edits (splicing, copy-move, inpainting) "
                                "of protected photos under attacks, in Imuge+'s table layout, instead."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="--security: the attacker's photos for averaging "
                                        "(default: train/ beside --data's split)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N photos of --data."),
    protected_only: bool = typer.Option(False, "--protected-only", help="clrnet-v2: leave out the never-protected "
                                        "copies (detection and recovery only, in a third of the time)."),
) -> None:
    """The papers' protocol: protect, crop in survival bins, attack for real, inspect; tables beside the paper's."""
    import time

    import torch

    from clrnet.models.designed import Protector

    from clrnet.evaluation.protocol import PROTOCOL_ATTACKS, QUICK_ATTACKS
    from clrnet.attacks.real import REAL_ATTACKS
    from clrnet.paper.evaluation import evaluate, format_summary, summarize
    from clrnet.api import get_model
    from clrnet.paper.report import report_markdown, write_report

    attacks = list(attack) if attack else (QUICK_ATTACKS if quick else PROTOCOL_ATTACKS)
    bad = [a for a in attacks if a not in REAL_ATTACKS]
    if bad:
        _fail(f"unknown attack {bad[0]!r}; choose from: {', '.join(REAL_ATTACKS)}")
    if crops < 1:
        _fail(f"--crops-per-bin {crops}: must be at least 1")
    torch.set_num_threads(2)
    t0 = time.time()
    from clrnet.files.datasets import parse_size

    try:
        parse_size(size)
    except ValueError as e:
        _fail(str(e))
    if key is not None and not false_alarms:
        _fail("--key applies to --false-alarms (--security makes its own keys)")
    try:
        m = _keyed_model(model, key) if key is not None else get_model(model)
        if false_alarms:
            from clrnet.evaluation.false_alarms import false_alarms as run_false_alarms
            from clrnet.evaluation.tables import markdown_table

            if eval_workers < 1:
                _fail(f"--workers {eval_workers}: must be at least 1")
            rows = run_false_alarms(m, data, per_family, 4 if quick else limit, workers=eval_workers)
            typer.echo(markdown_table(rows, f"### never-protected images: {m.name if key else Path(model).name}, "
                                            f"{per_family} per "
                                            f"synthetic family (as made and JPEG 80), photos of {data} "
                                            f"({time.time() - t0:.0f} s)", 4))
            return
        if formats:
            from clrnet.evaluation.formats import format_table
            from clrnet.evaluation.tables import markdown_table

            rows = format_table(m, data, 2 if quick else limit, seed)
            typer.echo(markdown_table(rows, f"### {data.name}: {Path(model).name}, each output format of "
                                            f"`protect`, {time.time() - t0:.0f} s", 3))
            return
        if (security or capacity or real_path or layers or tamper) and not isinstance(m, Protector):
            _fail(f"--security, --layers, --tamper, --capacity and --real-path measure protection v2: use --model "
                  f"clrnet-v2 (not {model})")
        if isinstance(m, Protector):
            if tamper:
                _eval_tamper(m, data, list(attack) if attack else None, size, seed, 2 if quick else limit, t0, out)
                return
            if real_path:
                from clrnet.evaluation.tables import markdown_table
                from clrnet.evaluation.real_path import real_path as run_path, real_path_summary

                rows = run_path(m, data, seed, crops=crops)
                if not rows:
                    _fail(f"{data}: no photos of 8 megapixels or more")
                typer.echo(markdown_table(
                    rows, f"### {data.name}: {m.name}, protect at full size, crop 40 %, 2048 px, JPEG 85", 3))
                typer.echo(real_path_summary(rows))
                return
            if layers:
                from clrnet.evaluation.layers import layers_table
                from clrnet.evaluation.tables import markdown_table

                rows = layers_table(m, data, 2 if quick else limit, seed)
                typer.echo(markdown_table(rows, f"### protected again: {m.name}, photos of {data} "
                                                f"({time.time() - t0:.0f} s)", 3))
                return
            if security:
                from clrnet.evaluation.security import AVERAGING_N, security_table
                from clrnet.evaluation.tables import markdown_table

                pool = pool or data.parent.parent / "train"
                ns = (10, 30) if quick else AVERAGING_N
                rows = security_table(m, data, pool, targets=2 if quick else (limit or 8), ns=ns, seed=seed)
                typer.echo(markdown_table(rows, f"### attacks on the protection: {m.name}, targets from {data}, "
                                                f"averaging pool {pool} ({time.time() - t0:.0f} s)", 3))
                return
            if capacity:
                from clrnet.evaluation.capacity import capacity_table, format_capacity

                n = limit or (2 if quick else 8)
                typer.echo(format_capacity(capacity_table(m, data, n, seed), n, data.name))
                return
            _eval_v2(m, data, attacks, size, crops, seed, 2 if quick else limit, t0, out, not protected_only)
            return
        ev = evaluate(m, data, attacks, crops, seed=seed, limit=2 if quick else limit)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    title = (f"{data.name}: model {Path(model).name}, {int(ev.per_dataset['photos'])} photos at "
             f"{m.size}x{m.size}, {crops} crop(s) per bin, seed {seed}, {time.time() - t0:.0f} s")
    text = write_report(ev, attacks, out, title) if out else report_markdown(ev, attacks, title)
    typer.echo(text)
    if summary:
        for a in attacks:
            typer.echo(format_summary(summarize([r for r in ev.rows if r.attack == a], ev.per_dataset),
                                      f"{data.name}: {a}, all bins") + "\n")
    if out:
        typer.echo(f"written: {out}/report.md, results.csv, cells.csv, curves.png, figure.png")


def _eval_tamper(m, data: Path, attacks: Optional[list[str]], size: str, seed: int, limit: Optional[int],
                 t0: float, out: Optional[Path] = None) -> None:
    """``eval --tamper``: Imuge+'s Table 4 and 5 layouts and the per-edit table; with ``--out``,
    report.md, results.csv and figure.png (original, received, true and found edit, recovered)."""
    import time

    from clrnet.evaluation.protocol import write_rows
    from clrnet.evaluation.tamper import by_edit, table4, table5, tamper_figure, tamper_rows
    from clrnet.evaluation.tables import markdown_table
    from clrnet.files.imageio import save_atomic, write_text_atomic

    cases: list = []
    rows = tamper_rows(m, data, size, attacks, limit, seed, keep=cases)
    photos = len({r.image for r in rows})
    head = (f"{data.name}: {m.name}, {photos} photos at {size}, one edit (5-40 % of the area) and one unedited "
            f"copy per photo and attack, seed {seed}")
    text = "\n\n".join([
        markdown_table(table4(rows), f"### {head}: per attack, ours (Imuge+, MS-COCO, Table 4)"),
        markdown_table(table5(rows), "### by tampering rate and edit class, all attacks (Imuge+ Table 5 layout)"),
        markdown_table(by_edit(rows), "### by edit operation, all attacks", 3),
    ]) + f"\n\n({time.time() - t0:.0f} s)\n"
    typer.echo(text)
    if out:
        write_text_atomic(text, out / "report.md")
        write_rows(rows, out / "results.csv")
        if cases:
            save_atomic(tamper_figure(cases), out / "figure.png")
        typer.echo(f"written: {out}/report.md, results.csv, figure.png")


def _eval_v2(m, data: Path, attacks: list[str], size: str, crops: int, seed: int, limit: Optional[int],
             t0: float, out: Optional[Path] = None, never_protected: bool = True) -> None:
    """``eval`` for protection v2: a summary table per attack and, for several attacks,
    one table of them all with their mean; with ``--out``, report.md, results.csv (one
    row per sample, to see which photo did what) and figure.png (original, received,
    recovered, Telea for the first photos). One pass: each photo is protected and its
    baselines inpainted once for every attack."""
    import time

    from clrnet.evaluation.protocol import write_rows
    from clrnet.evaluation.crops import attack_table, evaluate_v2, figure_v2, summary_v2
    from clrnet.evaluation.tables import markdown_table
    from clrnet.files.imageio import write_text_atomic

    samples: list[dict] = []
    every, per = evaluate_v2(m, data, attacks, size=size, crops_per_bin=crops, seed=seed, limit=limit,
                             figure=samples if out else None, never_protected=never_protected)
    head = (f"{data.name}: {m.name}, size {size}, {int(per['photos'])} photos, {crops} crop(s) per bin, "
            f"seed {seed}, {time.time() - t0:.0f} s")
    text = []
    for a in attacks:
        lines = [f"### {head}, attack {a}\n", "| metric | value |\n|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in summary_v2([r for r in every if r.attack == a], per)]
        text.append("\n".join(lines) + "\n")
    if len(attacks) > 1:
        text.append(markdown_table(attack_table(every), f"### {head}: every attack", 3) + "\n")
    typer.echo("\n".join(text))
    if out:
        write_text_atomic("\n".join(text), out / "report.md")
        write_rows(every, out / "results.csv")
        figure_v2(samples, out / "figure.png")
        typer.echo(f"written: {out}/report.md, results.csv, figure.png")


@app.command()
def keygen(
    output: Path = typer.Option(..., "-o", "--output", help="Key file to write (keep it secret)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing key file."),
    variants: int = typer.Option(DEFAULT_VARIANTS, "--variants", min=1, max=MAX_VARIANTS,
                                 help="Pattern sets the key derives, one chosen per photo: averaging many "
                                      "protected photos mixes them; reading a photo without protection takes "
                                      "this many times as long."),
) -> None:
    """A new secret key: protect --key KEYFILE, inspect --key KEYFILE (protection v2)."""
    from clrnet.files.imageio import write_text_atomic
    from clrnet.protection.key import generate_key, key_json

    if output.exists() and not force:
        _fail(f"{output}: exists (a key file is not overwritten without --force: photos protected with it "
              f"need it)")
    key = generate_key(variants)
    try:  # written through mkstemp: readable by its owner only
        write_text_atomic(key_json(key), output)
    except OSError as e:
        _fail(f"{output}: cannot write the key file ({e.strerror})")
    typer.echo(f"key {key.fingerprint} ({variants} variants) written to {output}; protect and inspect with "
               f"--key {output} --model clrnet-v2")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Shipped model name or .safetensors file."),
    max_upload_mb: float = typer.Option(50, "--max-upload-mb", help="Largest upload accepted, in MB."),
) -> None:
    """A web page to protect and inspect photos, and its JSON API (/api/protect, /api/inspect, /docs)."""
    try:
        import uvicorn

        from clrnet.web.app import create_app
    except ImportError as e:
        _fail(f"the web page needs the web extra: pip install 'clrnet[web]' ({e.name} is missing)")
    if not 0 < port < 65536 or max_upload_mb <= 0:
        _fail(f"--port {port} / --max-upload-mb {max_upload_mb}: expected a port 1-65535 and a positive limit")
    try:
        application = create_app(model, max_upload_mb)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    typer.echo(f"clrnet: open http://{host}:{port}/ (API docs at /docs); Ctrl-C stops")
    uvicorn.run(application, host=host, port=port, log_level="warning")


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
) -> None:
    """Speed of protect and inspect, one call at a time (and, with --processes, a batch's throughput);
    prints a table."""
    import torch

    from clrnet.evaluation.bench import bench as run_bench, format_bench
    from clrnet.api import get_model

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
    typer.echo(format_bench(rows, model))


def main() -> None:
    from clrnet.core.memory import keep_freed_memory

    keep_freed_memory()  # large photos: reuse freed memory instead of page-faulting fresh arrays
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
