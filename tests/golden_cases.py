"""Golden cases: the shipped default's outputs on fixed photos, through the CLI.

``python tests/golden_cases.py --write`` records ``tests/golden/golden.json``; ``test_golden``
runs the same cases and compares. A behaviour-preserving change keeps every digest: the
protected bytes (PNG) at 256², at a photo's own size and at 8 MP, and each report folder
(``report.json`` and its images) of a crop, a laundered crop, an edited photo and a photo
that was never protected. Re-recorded once since, on 2026-12-07, for an intended change: the
refine network at 128 px on 256 px frames changed the laundered astronaut's ``recovered.png``
and ``overlay.png`` and nothing else; and on 2026-12-07 again for the core layer (drawn from
the 1024 px level): the 8 MP photo's protected bytes and its crop's report changed, nothing
else; and on 2026-12-07 a third time for the passive detector: every report.json gained
``passive_score`` and ``passive_edited`` (None where a protection was found) and the
never-protected photo's folder ``passive_map.png`` and ``passive_mask.png``, nothing else; and
a fourth time on 2026-12-07 for the passive detector's step-3 600 weights: the never-protected
photo's ``passive_score`` and ``passive_map.png`` changed (its mask stays empty), nothing else.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

GOLDEN = Path(__file__).with_name("golden") / "golden.json"
KODAK = "test/kodak24/kodim05.png"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jpeg(im: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _cli(*args: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "clrnet.cli.main", *args], env=env, capture_output=True, text=True,
                       timeout=1200)
    if r.returncode != 0:
        raise RuntimeError(f"clrnet {' '.join(args)} failed: {r.stderr[-2000:]}")


def originals(folder: Path, data: Path | None) -> dict[str, Path]:
    """The photos to protect: 256², a photo at its own size (chelsea, 451 x 300; Kodak's kodim05
    when the datasets are present) and one of 8.6 MP."""
    from skimage import data as sk

    folder.mkdir(parents=True, exist_ok=True)
    photos = {
        "astronaut-256": Image.fromarray(sk.astronaut()).resize((256, 256), Image.BICUBIC),
        "chelsea-own": Image.fromarray(sk.chelsea()),
        "coffee-8mp": Image.fromarray(sk.coffee()).resize((3600, 2400), Image.BICUBIC),
    }
    if data is not None and (data / KODAK).is_file():
        photos["kodim05-own"] = Image.open(data / KODAK).convert("RGB")
    out = {}
    for name, im in photos.items():
        out[name] = folder / f"{name}.png"
        im.save(out[name])
    return out


def received(protected: Path, folder: Path, originals_: dict[str, Path]) -> dict[str, Path]:
    """The copies to inspect, made from the protected photos."""
    from skimage import data as sk

    chelsea = Image.open(protected / "chelsea-own.png").convert("RGB")
    big = Image.open(protected / "coffee-8mp.png").convert("RGB")
    astro = Image.open(protected / "astronaut-256.png").convert("RGB")
    copies: dict[str, Image.Image] = {}
    # a crop of 60 % at JPEG 80
    copies["crop-chelsea"] = _jpeg(chelsea.crop((40, 30, 40 + 349, 30 + 232)), 80)
    # the 8-MP path: a 40 % crop sent at 2048 px, JPEG 85
    c = big.crop((500, 300, 500 + 2277, 300 + 1518))
    copies["crop-8mp-2048"] = _jpeg(c.resize((2048, round(2048 * c.height / c.width)), Image.LANCZOS), 85)
    # an edited photo: an object-shaped region spliced in from another photo
    from clrnet.attacks.edits import object_mask

    mask = object_mask(np.random.default_rng(3), chelsea.height, chelsea.width, 0.06)
    donor = np.asarray(Image.fromarray(sk.coffee()).resize(chelsea.size, Image.BICUBIC))
    edited = np.asarray(chelsea).copy()
    edited[mask] = donor[mask]
    copies["edited-chelsea"] = _jpeg(Image.fromarray(edited), 90)
    # a photo never protected
    copies["never-protected"] = Image.open(originals_["chelsea-own"]).convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, im in copies.items():
        out[name] = folder / f"{name}.png"
        im.save(out[name])
    # a laundered crop: a crop of the protected 256² photo, protected again
    crop = folder / "crop-astronaut.png"
    astro.crop((30, 20, 30 + 200, 20 + 190)).save(crop)
    _cli("protect", str(crop), "-o", str(folder / "laundered-astronaut.png"), "--force")
    crop.unlink()
    out["laundered-astronaut"] = folder / "laundered-astronaut.png"
    return out


def run(work: Path, data: Path | None) -> dict[str, dict[str, str]]:
    """Every case's digests: {"protected": {photo: sha256}, "reports": {copy: {file: sha256 or report}}}."""
    origs = originals(work / "originals", data)
    _cli("protect", *map(str, origs.values()), "-o", str(work / "protected"), "--format", "png")
    protected = {name: _sha(work / "protected" / f"{name}.png") for name in origs}
    copies = received(work / "protected", work / "received", origs)
    _cli("inspect", *map(str, copies.values()), "-o", str(work / "reports"))
    reports: dict[str, dict[str, str]] = {}
    for name in copies:
        folder = work / "reports" / f"{name}.png"
        files = {p.name: _sha(p) for p in sorted(folder.iterdir()) if p.name != "report.json"}
        files["report.json"] = json.loads((folder / "report.json").read_text())
        reports[name] = files
    return {"protected": protected, "reports": reports}


if __name__ == "__main__":
    import tempfile

    root = Path(os.environ.get("CLRNET_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Path(tmp), root if root.is_dir() else None)
    if "--write" in sys.argv:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN}")
    else:
        print(json.dumps(result, indent=1, sort_keys=True))
