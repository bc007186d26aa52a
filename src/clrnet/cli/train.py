"""``clrnet train``: the paper's model, the reconstruction network and the tamper network;
``python -m clrnet.cli.train`` is the same command for torchrun."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from clrnet.cli.common import _fail

app = typer.Typer()


@app.command()
def train(
    config: str = typer.Option("small", "--config", "-c", help="YAML config file or built-in name (small, paper; refine: the reconstruction network; tamper: the tamper network; passive: the passive detector; qf-predictor: FG-JPEG's QF predictor; fg-jpeg: its generator)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset root with train/ and val/ (default: $CLRNET_DATA or ../shared/datasets)."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Checkpoints, log.csv, best.safetensors (default: runs/<name>)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Train until this step (default: the config's)."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="Override a setting of the model's config, "
                                             "e.g. --set attack.jpeg=fg --set train.steps=400 (repeatable)."),
    nproc: int = typer.Option(1, "--nproc", help="Data-parallel processes on this machine (runs torchrun). "
                              "Global batch = batch_size x nproc."),
) -> None:
    """Train (or resume training) a model; logs to RUN_DIR/log.csv."""
    from clrnet.paper.config import load_config
    from clrnet.paper.training import Trainer
    from clrnet.training.distributed import close_world, init_world

    refine_cfg = _refine_config(config)
    tamper_cfg = _tamper_config(config)
    passive_cfg = _passive_config(config)
    qf_cfg = _qf_config(config)
    fg_cfg = _fg_config(config)
    if nproc < 1:
        _fail(f"--nproc {nproc}: must be at least 1")
    if sets and any(c is not None for c in (refine_cfg, tamper_cfg, passive_cfg, qf_cfg, fg_cfg)):
        _fail(f"--set: {config} is not a config of the paper's model (edit a copy of the YAML instead)")
    if passive_cfg is not None:
        from clrnet.training.passive import train_passive

        _run_single(train_passive, passive_cfg, run_dir, data, steps, "best on validation",
                    "best.safetensors (with its threshold)")
        return
    if qf_cfg is not None:
        from clrnet.paper.fgjpeg.training import train_predictor

        _run_single(train_predictor, qf_cfg, run_dir, data, steps, "best validation accuracy", "best.safetensors")
        return
    if fg_cfg is not None:
        from clrnet.paper.fgjpeg.generator_training import train_generator

        _run_single(train_generator, fg_cfg, run_dir, data, steps, "best validation PSNR against real JPEGs",
                    "best.safetensors")
        return
    if tamper_cfg is not None:
        from clrnet.training.tamper import train_tamper

        _run_single(train_tamper, tamper_cfg, run_dir, data, steps, "best on validation, with its threshold",
                    "last.pt")
        return
    if nproc > 1:
        _torchrun(nproc, config, data, run_dir, steps, sets or [])
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
        cfg = load_config(config, sets)
    except (FileNotFoundError, ValueError) as e:
        errors = getattr(e, "errors", None)  # pydantic: one line per wrong setting, joined
        _fail(f"{config}: " + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in errors())
              if callable(errors) else str(e))
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


def _run_single(fit, cfg, run_dir: Optional[Path], data: Optional[Path], steps: Optional[int], what: str,
                kept: str) -> None:
    """A trainer of one process (``fit(cfg, run_dir, data, steps)``), resumed where it stopped."""
    rd = run_dir or Path("runs") / cfg.name
    if (rd / "last.pt").is_file():
        typer.echo(f"resuming {rd}")
    try:
        result = fit(cfg, rd, data, steps)
    except (FileNotFoundError, ValueError) as e:
        _fail(f"{e} (set --data or $CLRNET_DATA)" if isinstance(e, FileNotFoundError) else str(e))
    typer.echo(f"done: {result} ({what}), {rd}/{kept}")


def _torchrun(nproc: int, config: str, data: Optional[Path], run_dir: Optional[Path], steps: Optional[int],
              sets: list[str]) -> None:
    """``clrnet train --nproc N``: the same command under torchrun on this machine."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "clrnet.cli.train", "--config", config]
    for flag, value in (("--data", data), ("--run-dir", run_dir), ("--steps", steps)):
        if value is not None:
            cmd += [flag, str(value)]
    for item in sets:
        cmd += ["--set", item]
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


def _of_kind(kind: str, where: str):
    """A reader of configs that say ``kind: <kind>``: the config model ``where`` (module:Class)
    validated from the YAML, or None for a config of another kind."""
    def read(config: str):
        data = _config_of_kind(config, kind)
        if data is None:
            return None
        from importlib import import_module

        module, name = where.split(":")
        return getattr(import_module(module), name).model_validate(data)

    read.__doc__ = f"The config of ``config`` if it says ``kind: {kind}``, else None."
    return read


_refine_config = _of_kind("refine", "clrnet.training.refine:RefineConfig")  # the reconstruction network
_tamper_config = _of_kind("tamper", "clrnet.training.tamper:TamperConfig")  # the tamper network
_passive_config = _of_kind("passive", "clrnet.training.passive:PassiveConfig")  # the passive detector
_qf_config = _of_kind("qf-predictor", "clrnet.paper.fgjpeg.data:QFConfig")  # FG-JPEG's QF predictor
_fg_config = _of_kind("fg-jpeg", "clrnet.paper.fgjpeg.generator_training:FGConfig")  # FG-JPEG's generator


def main() -> None:
    """``torchrun -m clrnet.cli.train --config ...``: the train command in each process."""
    app(sys.argv[1:], prog_name="clrnet train")


if __name__ == "__main__":
    main()
