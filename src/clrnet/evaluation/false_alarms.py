"""False alarms on photos that were never protected (``clrnet eval --false-alarms``).

A fact-checker who sees "CROPPED" on an untouched photo stops trusting the tool,
so the presence test is measured on what it will meet: every photo of the
datasets (as it is, after JPEG 80 and halved; at its own size and at 256²) and
synthetic hard cases that fool detectors of periodic patterns: flat colours,
gradients, sinusoidal and square gratings over a range of frequencies and
angles, checkerboards, halftone dots, rendered text, screenshot-like pages and
noise. For each family: how often ``inspect`` calls the image "protected" and
how often "cropped".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clrnet.api import Model, get_model, inspect
from clrnet.attacks.real import jpeg
from clrnet.files.datasets import list_images

HARD_FAMILIES = ("flat", "gradient", "grating", "checkerboard", "halftone", "text", "screenshot", "noise")
WORDS = ("photo crop protect inspect newsroom archive verify source caption credit agency wire frame "
         "editor deadline rights license").split()


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    return x, y


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float64)


def _blend(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> Image.Image:
    arr = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    return Image.fromarray(arr.round().clip(0, 255).astype(np.uint8))


def _text_page(rng: np.random.Generator, size: int, screenshot: bool) -> Image.Image:
    bg = (245, 245, 245) if screenshot else tuple(int(v) for v in rng.integers(180, 256, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=int(rng.integers(9, 22)))
    y = 4
    if screenshot:  # a title bar, buttons and panels
        d.rectangle([0, 0, size, 22], fill=(40, 60, 90))
        d.text((6, 4), "clrnet - " + " ".join(rng.choice(WORDS, 2)), fill="white", font=font)
        y = 30
        for _ in range(int(rng.integers(1, 4))):
            x0 = int(rng.integers(0, size // 2))
            d.rectangle([x0, y, x0 + int(rng.integers(40, size // 2)), y + 18], fill=(70, 130, 200), outline="black")
            y += 26
    while y < size - 10:
        line = " ".join(rng.choice(WORDS, int(rng.integers(3, 9))))
        d.text((int(rng.integers(2, 12)), y), line, fill=(20, 20, 20), font=font)
        y += int(font.size * 1.4)
    return im


def hard_case(family: str, i: int, size: int = 256, seed: int = 0) -> Image.Image:
    """The ``i``-th image of a synthetic family (seeded; frequencies and angles sweep with i)."""
    rng = np.random.default_rng([seed, HARD_FAMILIES.index(family), i])
    x, y = _grid(size)
    if family == "flat":
        return Image.new("RGB", (size, size), tuple(int(v) for v in _colour(rng)))
    if family == "gradient":
        ang = rng.uniform(0, math.pi)
        t = (x * math.cos(ang) + y * math.sin(ang)) if i % 2 == 0 else np.hypot(x - 0.5, y - 0.5) * 1.4
        return _blend(np.clip(t, 0, 1), _colour(rng), _colour(rng))
    if family == "grating":
        freq = 2 * 2 ** (i % 6) * rng.uniform(0.8, 1.25)  # 1.6 ... 80 cycles per frame
        ang = math.radians(((i // 6) * 15) % 180)  # every frequency at 0°, then every one at 15°, ...
        phase = 2 * math.pi * freq * (x * math.cos(ang) + y * math.sin(ang))
        t = (np.sin(phase) + 1) / 2 if i % 2 == 0 else (np.sin(phase) > 0).astype(np.float64)
        return _blend(t, _colour(rng), _colour(rng))
    if family == "checkerboard":
        cells = 2 * 2 ** (i % 5) * rng.uniform(0.8, 1.25)
        t = ((np.floor(x * cells) + np.floor(y * cells)) % 2).astype(np.float64)
        return _blend(t, _colour(rng), _colour(rng))
    if family == "halftone":
        pitch = rng.uniform(3, 12)
        ang = math.radians(rng.choice([0, 15, 45, 75]))
        u = (x * math.cos(ang) + y * math.sin(ang)) * size / pitch
        v = (-x * math.sin(ang) + y * math.cos(ang)) * size / pitch
        tone = np.clip(0.2 + 0.6 * x + 0.2 * np.sin(6 * y), 0, 1)  # the picture the dots print
        r = np.hypot(u - np.round(u), v - np.round(v))
        return _blend((r < 0.5 * np.sqrt(tone)).astype(np.float64), np.array([250.0, 250, 245]), np.zeros(3))
    if family == "text":
        return _text_page(rng, size, screenshot=False)
    if family == "screenshot":
        return _text_page(rng, size, screenshot=True)
    if family == "noise":
        kind = i % 3
        if kind == 0:
            arr = rng.normal(128, rng.uniform(5, 60), (size, size, 3))
        elif kind == 1:
            arr = rng.uniform(0, 255, (size, size, 3))
        else:
            arr = np.full((size, size, 3), _colour(rng))
            mask = rng.random((size, size)) < rng.uniform(0.01, 0.2)
            arr[mask] = rng.choice([0, 255], (int(mask.sum()), 1))
        return Image.fromarray(arr.round().clip(0, 255).astype(np.uint8))
    raise ValueError(f"unknown family {family!r}; choose from {', '.join(HARD_FAMILIES)}")


def photo_variants(im: Image.Image) -> Iterator[tuple[str, Image.Image]]:
    """A dataset photo as it is, after JPEG 80 and halved; at its own size and at 256²."""
    for size_name, base in (("native", im), ("256", im.resize((256, 256), Image.Resampling.LANCZOS))):
        yield f"{size_name}", base
        yield f"{size_name}, JPEG 80", jpeg(base, 80)
        half = base.resize((max(32, base.width // 2), max(32, base.height // 2)), Image.Resampling.LANCZOS)
        yield f"{size_name}, halved", half


Item = tuple[str, object]  # ("synthetic", (family, i)) or ("photo", path)
_WORKER_MODEL: list[Model] = []


def _verdicts(m: Model, item: Item) -> list[tuple[str, bool, bool]]:
    """(family, called protected, called cropped) for each image one item makes: a
    synthetic image as made and after JPEG 80, or a photo's six variants."""
    kind, what = item
    if kind == "synthetic":
        family, i = what  # type: ignore[misc]
        im = hard_case(family, int(i))
        images = [(family, im), (family, jpeg(im, 80))]
    else:
        with Image.open(what) as im:  # type: ignore[arg-type]
            rgb = im.convert("RGB")
        images = [(f"photos: {name}", v) for name, v in photo_variants(rgb)]
    out = []
    for family, im in images:
        found = inspect(im, m)
        out.append((family, bool(found.protected), bool(found.cropped)))
    return out


def _start_worker(model: Model | str | None) -> None:
    import torch

    torch.set_num_threads(1)  # one process per core
    _WORKER_MODEL[:] = [get_model(model)]


def _worker_verdicts(item: Item) -> list[tuple[str, bool, bool]]:
    return _verdicts(_WORKER_MODEL[0], item)


def false_alarms(model: Model | str | None, data_root: str | Path | None, per_family: int = 40,
                 photo_limit: int | None = None, progress: bool = True, workers: int = 1) -> list[dict[str, object]]:
    """Rows per family: images, share called protected, share called cropped. ``workers``
    processes of one torch thread each share the images (the counts do not depend on it)."""
    from tqdm import tqdm

    items: list[Item] = [("synthetic", (f, i)) for f in HARD_FAMILIES for i in range(per_family)]
    photos: list[Path] = []
    if data_root is not None:
        for split in ("train", "val", "test"):
            photos += list_images(Path(data_root) / split)
        photos = photos[:photo_limit]
    items += [("photo", p) for p in photos]
    bar = tqdm(total=len(items), desc="never-protected images", disable=not progress)
    counts: dict[str, list[int]] = {}

    def count(verdicts: list[tuple[str, bool, bool]]) -> None:
        for family, protected, cropped in verdicts:
            c = counts.setdefault(family, [0, 0, 0])
            c[0] += 1
            c[1] += int(protected)
            c[2] += int(cropped)
        bar.update(1)

    if workers <= 1:
        m = get_model(model)
        for item in items:
            count(_verdicts(m, item))
    else:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers, _start_worker, (model,)) as pool:
            for verdicts in pool.imap(_worker_verdicts, items):
                count(verdicts)
    bar.close()
    rows = [{"images": k, "n": v[0], "called protected": v[1] / v[0], "called cropped": v[2] / v[0]}
            for k, v in counts.items()]
    total = np.array([v for v in counts.values()]).sum(0)
    rows.append({"images": "all", "n": int(total[0]), "called protected": total[1] / total[0],
                 "called cropped": total[2] / total[0]})
    return rows


