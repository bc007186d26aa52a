"""Command line: a thin layer over the Python API (``clrnet --help``)."""

from __future__ import annotations

import sys

import typer

from clrnet.cli import evaluate, photos, train

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="CLR-Net: protect photos against malicious cropping; localise crops and "
                       "recover what was cut away.")
for part in (photos.app, train.app, evaluate.app):
    app.registered_commands.extend(part.registered_commands)
app.add_typer(evaluate.eval_app, name="eval")


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
