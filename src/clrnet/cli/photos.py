"""The everyday commands: protect, inspect, keygen, serve, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from clrnet.cli.common import (
    ADDRESS_OPTION,
    ENGINE_OPTION,
    INPUTS_HELP,
    KEY_OPTION,
    RECURSIVE_OPTION,
    WORKERS_OPTION,
    _batch_guard,
    _check_batch_options,
    _echo_warnings,
    _fail,
    _finish_batch,
    _keyed_model,
    _parse_size,
)
from clrnet.models.zoo import DEFAULT_MODEL
from clrnet.protection.key import DEFAULT_VARIANTS, MAX_VARIANTS

app = typer.Typer()


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
    passive: Optional[bool] = typer.Option(None, "--passive/--no-passive", help="The passive detector (an "
                                           "estimate from the pixels alone): by default only when no protection "
                                           "is found; --passive also on protected photos, --no-passive never."),
) -> None:
    """Was each photo cropped from a protected photo? Where, and what was cut away?"""
    from clrnet.api import inspect as inspect_image
    from clrnet.batch.local import write_report_folder
    from clrnet.files.imageio import ImageInputError, OutputExistsError, open_image
    from clrnet.files.inputs import is_batch

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
                                   images=images, address=address, key=key, thorough=thorough, passive=passive)
            m = _keyed_model(model, key, thorough)
            return list(inspect_many(inputs, output, m, original_size=size, recursive=recursive, force=force,
                                     images=images, workers=workers, progress=True, passive=passive))

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
        found = inspect_image(photo, m, original_size=size, passive=passive)
        write_report_folder(found, output)
    except (ImageInputError, OutputExistsError, FileNotFoundError) as e:
        _fail(str(e))
    verdict = "CROPPED" if found.cropped else "not cropped"
    x0, y0, x1, y1 = found.box
    if found.protected is False:
        typer.echo(f"{image}: no protection found (strength {found.protection:.3f}): this photo was "
                   f"probably never protected, so crops cannot be localised; not cropped "
                   f"(score {found.score:.3f})")
        _echo_passive(found)
        return
    typer.echo(f"{image}: {verdict} (score {found.score:.3f})")
    typer.echo(f"kept box in original frame: x {x0:.3f}-{x1:.3f}, y {y0:.3f}-{y1:.3f} "
               f"({(x1 - x0) * (y1 - y0):.0%} of the area)")
    if found.tampered is not None:
        typer.echo(f"EDITED: {found.tamper_score:.1%} of the kept part changed after protection "
                   f"(tamper_mask.png, outlined in overlay.png)" if found.tampered
                   else "no edits found inside the kept part")
    _echo_passive(found)
    est = " (estimated)" if found.size_estimated else ""
    typer.echo(f"original size{est}: {found.original_size[0]}x{found.original_size[1]}; report in {output}/")


def _echo_passive(found) -> None:
    if found.passive_score is None:
        return
    verdict = "probably EDITED" if found.passive_edited else "no edit found"
    typer.echo(f"passive detector (an estimate from the pixels alone, no protection read): {verdict} "
               f"(passive_score {found.passive_score:.3f}; passive_map.png, passive_mask.png)")


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
