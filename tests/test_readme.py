"""Every command the README shows works: the everyday ones (protect, inspect, keygen) run for
real, in the README's order, on small photos named as the README names them; the others
(eval, train, bench, serve, demo, a Ray batch) parse with ``--help``, so a subcommand or an
option the README names exists. The Quick start runs in CI (``.ci/run`` installs from scratch)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from clrnet.cli.main import app

README = Path(__file__).resolve().parents[1] / "README.md"
RUN_FOR_REAL = {"protect", "inspect", "keygen"}


def readme_commands() -> list[str]:
    """The ``clrnet ...`` lines of the README's fenced shell blocks and of its command table."""
    text = README.read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        out += [line.strip() for line in block.splitlines() if line.strip().startswith("clrnet ")]
    out += re.findall(r"^\| `(clrnet [^`]+)` \|", text, re.M)
    return out


def _photos(root: Path) -> None:
    """The photos the README's commands name, small (their content: scikit-image's photos)."""
    from skimage import data

    base = Image.fromarray(data.astronaut()).resize((160, 120))
    base.save(root / "photo.jpg", quality=95)
    base.save(root / "photo.png")
    for folder, n in (("shoot", 2), ("inbox", 1)):
        (root / folder).mkdir()
        for i in range(n):
            base.rotate(5 * (i + 1)).save(root / folder / f"p{i}.jpg", quality=95)


def test_the_readme_shows_commands():
    cmds = readme_commands()
    assert len(cmds) >= 15 and any(c.startswith("clrnet eval ") for c in cmds)


def test_every_readme_command_runs(tmp_path, monkeypatch):
    _photos(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for cmd in readme_commands():
        args = shlex.split(cmd)[1:]
        real = args[0] in RUN_FOR_REAL and "--engine" not in args
        if real and args[0] == "inspect" and not (tmp_path / "received.jpg").exists():
            # a received copy: a crop of the protected photo
            prot = Image.open(tmp_path / "photo.protected.jpg")
            prot.crop((10, 8, 150, 110)).save(tmp_path / "received.jpg", quality=90)
        r = runner.invoke(app, args if real else [*args, "--help"])
        assert r.exit_code == 0, f"{cmd}: exit {r.exit_code}\n{r.output}"
        if real and args[0] == "inspect":
            out = Path(args[args.index("-o") + 1])
            assert (out / "report.json").is_file() or (out / "results.jsonl").is_file(), cmd


@pytest.mark.parametrize("line", ["clrnet eval crops --data X", "clrnet eval paper --data X"])
def test_a_command_the_readme_could_show_wrongly_fails(line):
    """The check can fail: an option that does not exist is refused even with --help."""
    r = CliRunner().invoke(app, [*shlex.split(line)[1:], "--no-such-option", "--help"])
    assert r.exit_code != 0
