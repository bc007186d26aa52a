"""Command line: a thin layer over the Python API (``clrnet --help``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="CLR-Net: protect photos against malicious cropping; localise crops and "
                       "recover what was cut away.")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _parse_size(text: Optional[str]) -> Optional[tuple[int, int]]:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
        return w, h
    except ValueError:
        _fail(f"--original-size {text!r}: expected WIDTHxHEIGHT, e.g. 768x512")
    return None


@app.command()
def protect(
    image: Path = typer.Argument(..., help="Photo to protect."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the protected photo (PNG recommended)."),
    model: str = typer.Option("clrnet-small-128", "--model", "-m", help="Shipped model name or .safetensors file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
) -> None:
    """Write a protected copy of IMAGE: same size, visually identical."""
    from .imageio import ImageInputError, OutputExistsError, check_writable, open_image, save_atomic
    from .pipeline import protect as protect_image

    try:
        check_writable(output, [image], force)
        photo = open_image(image)
        result = protect_image(photo, model)
        save_atomic(result, output)
    except (ImageInputError, OutputExistsError, FileNotFoundError) as e:
        _fail(str(e))
    if output.suffix.lower() in (".jpg", ".jpeg"):
        typer.echo("note: saved as JPEG; a lossless PNG keeps the protection strongest", err=True)
    typer.echo(f"protected {image} -> {output} ({result.size[0]}x{result.size[1]})")


@app.command()
def inspect(
    image: Path = typer.Argument(..., help="Received (possibly cropped) photo."),
    output: Path = typer.Option(..., "-o", "--output", help="Report folder (recovered.png, mask.png, overlay.png, report.json; presence.png with clrnet-v2)."),
    model: str = typer.Option("clrnet-small-128", "--model", "-m", help="Shipped model name or .safetensors file."),
    original_size: Optional[str] = typer.Option(None, "--original-size", help="Original WIDTHxHEIGHT if known; otherwise estimated."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty report folder."),
) -> None:
    """Was IMAGE cropped from a protected photo? Where, and what was cut away?"""
    from .imageio import (ImageInputError, OutputExistsError, open_image, save_atomic,
                          write_text_atomic)
    from .pipeline import inspect as inspect_image

    size = _parse_size(original_size)
    try:
        if output.exists() and not output.is_dir():
            raise OutputExistsError(f"{output}: exists and is not a folder")
        if output.is_dir() and any(output.iterdir()) and not force:
            raise OutputExistsError(f"{output}: folder is not empty (use --force to write into it)")
        photo = open_image(image)
        found = inspect_image(photo, model, original_size=size)
        save_atomic(found.recovered, output / "recovered.png")
        save_atomic(found.mask, output / "mask.png")
        save_atomic(found.overlay(), output / "overlay.png")
        if found.presence is not None:
            save_atomic(found.presence, output / "presence.png")
        write_text_atomic(found.to_json() + "\n", output / "report.json")
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
    est = " (estimated)" if found.size_estimated else ""
    typer.echo(f"original size{est}: {found.original_size[0]}x{found.original_size[1]}; report in {output}/")


@app.command()
def train(
    config: str = typer.Option("small", "--config", "-c", help="YAML config file or built-in name (small, paper)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset root with train/ and val/ (default: $CLRNET_DATA or ../shared/datasets)."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Checkpoints, log.csv, best.safetensors (default: runs/<name>)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Train until this step (default: the config's)."),
) -> None:
    """Train (or resume training) a model; logs to RUN_DIR/log.csv."""
    from .config import load_config
    from .training import Trainer

    refine_cfg = _refine_config(config)
    if refine_cfg is not None:
        from .reconstruction.train_refine import train_refine

        rd = run_dir or Path("runs") / refine_cfg.name
        if (rd / "last.pt").is_file():
            typer.echo(f"resuming {rd}")
        try:
            best = train_refine(refine_cfg, rd, data, steps)
        except FileNotFoundError as e:
            _fail(f"{e} (set --data or $CLRNET_DATA)")
        typer.echo(f"done: {best} (best on validation), {rd}/last.safetensors")
        return

    try:
        cfg = load_config(config)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    rd = run_dir or Path("runs") / cfg.name
    try:
        trainer = Trainer(cfg, rd, data)
    except FileNotFoundError as e:
        _fail(f"{e} (set --data or $CLRNET_DATA)")
    if trainer.state.step:
        typer.echo(f"resuming {rd} from step {trainer.state.step}")
    trainer.fit(steps)
    typer.echo(f"done: {rd}/best.safetensors (best on validation), {rd}/last.safetensors")


def _refine_config(config: str):
    """The reconstruction network's config if ``config`` names one (``kind: refine``), else None."""
    from importlib import resources

    import yaml

    path = Path(config)
    res = resources.files("clrnet") / "configs" / f"{config}.yaml"
    text = path.read_text() if path.is_file() else (res.read_text() if res.is_file() else "")
    data = yaml.safe_load(text) if text else None
    if not isinstance(data, dict) or data.get("kind") != "refine":
        return None
    from .reconstruction.train_refine import RefineConfig

    return RefineConfig.model_validate({k: v for k, v in data.items() if k != "kind"})


@app.command()
def demo(
    output: Path = typer.Option(Path("demo-out"), "-o", "--output", help="Folder for demo.png and the images."),
    model: str = typer.Option("clrnet-small-128", "--model", "-m", help="Shipped model name or .safetensors file."),
) -> None:
    """Protect a sample photo, crop it to 60 % + JPEG 80, inspect it; write a figure."""
    from .demo import run_demo

    try:
        nums = run_demo(output, model)
    except FileNotFoundError as e:
        _fail(str(e))
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
    model: str = typer.Option("clrnet-small-128", "--model", "-m", help="Shipped model name or .safetensors file."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.md, results.csv, cells.csv, curves.png, figure.png."),
    attack: Optional[list[str]] = typer.Option(None, "--attack", "-a", help="Only these real attacks (repeatable); default: all."),
    crops: int = typer.Option(1, "--crops-per-bin", help="Crops per survival bin, photo and attack."),
    seed: int = typer.Option(0, "--seed"),
    quick: bool = typer.Option(False, "--quick", help="2 photos, JPEG 70 and none: a smoke test."),
    summary: bool = typer.Option(False, "--summary", help="Also print the headline summary per attack."),
    size: str = typer.Option("native", "--size", help="clrnet-v2 only: square side the photos are brought to, or 'native'."),
    capacity: bool = typer.Option(False, "--capacity", help="clrnet-v2 only: the payload capacity table instead."),
    real_path: bool = typer.Option(False, "--real-path", help="clrnet-v2 only: photos of 8 MP or more through protect, "
                                   "crop 40 %, downscale to 2048 px, JPEG 85 instead."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N photos of --data."),
) -> None:
    """The papers' protocol: protect, crop in survival bins, attack for real, inspect; tables beside the paper's."""
    import time

    import torch

    from .protection.protector import Protector

    from .evaluation import PROTOCOL_ATTACKS, QUICK_ATTACKS, REAL_ATTACKS, evaluate, format_summary, summarize
    from .pipeline import get_model
    from .report import report_markdown, write_report

    attacks = list(attack) if attack else (QUICK_ATTACKS if quick else PROTOCOL_ATTACKS)
    bad = [a for a in attacks if a not in REAL_ATTACKS]
    if bad:
        _fail(f"unknown attack {bad[0]!r}; choose from: {', '.join(REAL_ATTACKS)}")
    if crops < 1:
        _fail(f"--crops-per-bin {crops}: must be at least 1")
    torch.set_num_threads(2)
    t0 = time.time()
    if size != "native" and not (size.isdigit() and int(size) >= 32):
        _fail(f"--size {size!r}: expected a side of at least 32 px or 'native'")
    try:
        m = get_model(model)
        if isinstance(m, Protector):
            if real_path:
                from .evaluation_v2 import markdown_table, real_path as run_path

                rows = run_path(m, data, seed)
                if not rows:
                    _fail(f"{data}: no photos of 8 megapixels or more")
                typer.echo(markdown_table(
                    rows, f"### {data.name}: {m.name}, protect at full size, crop 40 %, 2048 px, JPEG 85", 3))
                return
            if capacity:
                from .evaluation_v2 import capacity_table, format_capacity

                n = limit or (2 if quick else 8)
                typer.echo(format_capacity(capacity_table(m, data, n, seed), n, data.name))
                return
            _eval_v2(m, data, attacks, size, crops, seed, 2 if quick else limit, t0)
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


def _eval_v2(m, data: Path, attacks: list[str], size: str, crops: int, seed: int, limit: Optional[int],
             t0: float) -> None:
    """``eval`` for protection v2: a summary table per attack."""
    import time

    from .evaluation_v2 import evaluate_v2, summary_v2

    for a in attacks:
        rows, per = evaluate_v2(m, data, [a], size=size, crops_per_bin=crops, seed=seed, limit=limit)
        typer.echo(f"### {data.name}: {m.name}, size {size}, attack {a}, {int(per['photos'])} photos, "
                   f"{crops} crop(s) per bin, seed {seed}, {time.time() - t0:.0f} s\n")
        typer.echo("| metric | value |\n|---|---|")
        for k, v in summary_v2(rows, per):
            typer.echo(f"| {k} | {v} |")
        typer.echo("")


@app.command()
def bench(
    model: str = typer.Option("clrnet-small-128", "--model", "-m", help="Shipped model name or .safetensors file."),
    sizes: str = typer.Option("128,256,512", "--sizes", help="Square photo sizes to time, comma-separated."),
    repeats: int = typer.Option(5, "--repeats", help="Timed calls per size (median), after one warm-up."),
    threads: int = typer.Option(2, "--threads", help="torch.set_num_threads for the run."),
    large: bool = typer.Option(True, "--large/--no-large", help="Also time one 12-megapixel (4000x3000) photo."),
) -> None:
    """Throughput of protect and inspect; prints a table."""
    import torch

    from .bench import bench as run_bench, format_bench
    from .pipeline import get_model

    try:
        size_list = tuple(int(v) for v in sizes.split(","))
        if any(v < 32 for v in size_list) or repeats < 1 or threads < 1:
            raise ValueError
    except ValueError:
        _fail(f"--sizes {sizes!r} / --repeats {repeats} / --threads {threads}: expected sizes >= 32 "
              "like 128,256 and positive counts")
    torch.set_num_threads(threads)
    try:
        m = get_model(model)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    rows = run_bench(m, size_list, repeats, (4000, 3000) if large else None)
    typer.echo(format_bench(rows, model))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
