"""Fuzz the file boundary: mutated and malformed photos through protect and inspect.

    python scripts/fuzz.py [--n 10000] [--seed 0] [--model clrnet-v2] [--threads 2] [--keep runs/fuzz]

Valid seed files of every format we read (JPEG with EXIF, PNG with an ICC profile,
TIFF, multi-page TIFF, WebP, animated GIF, BMP) are mutated, seeded: truncated,
bit-flipped, header bytes overwritten, huge declared dimensions, zero-size. Each
file goes through ``read_photo`` -> ``protect`` -> ``inspect``. The contract: a
file either works or raises ``ImageInputError`` (one line naming the file);
anything else is a failure, kept in ``--keep`` for reproduction. Printed: the
outcome counts, the slowest file and the peak memory (RSS) of the process.
"""

from __future__ import annotations

import argparse
import io
import resource
import struct
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = ("jpeg", "png", "tiff", "tiff-pages", "webp", "gif-animated", "bmp")
MUTATIONS = ("truncate", "bitflip", "header", "huge", "zero")
TIME_LIMIT_S = 10.0


def seed_files(seed: int = 0) -> dict[str, bytes]:
    """Small valid files, one per format, from a real photo."""
    from skimage import data

    rng = np.random.default_rng(seed)
    photo = Image.fromarray(data.astronaut()).resize((96, 80))
    frames = [photo.rotate(a) for a in (0, 10, 20)]
    out = {}
    for name in FORMATS:
        buf = io.BytesIO()
        if name == "jpeg":
            exif = Image.Exif()
            exif[0x010F], exif[0x0112] = "Fuzz", 6
            photo.save(buf, format="JPEG", quality=int(rng.integers(60, 96)), exif=exif.tobytes())
        elif name == "png":
            from PIL import ImageCms

            icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
            icc[24:36] = bytes(12)  # the header's creation time: the same bytes on every run
            icc = bytes(icc)
            photo.save(buf, format="PNG", icc_profile=icc)
        elif name == "tiff":
            photo.save(buf, format="TIFF")
        elif name == "tiff-pages":
            frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
        elif name == "webp":
            photo.save(buf, format="WEBP", quality=80)
        elif name == "gif-animated":
            frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
        else:
            photo.save(buf, format="BMP")
        out[name] = buf.getvalue()
    return out


def _huge(data: bytes, fmt: str) -> bytes:
    """Declare enormous dimensions in the header, keeping checksums valid where there are any."""
    b = bytearray(data)
    big = 60000
    if fmt == "png":
        b[16:24] = struct.pack(">II", big, big)
        b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    elif fmt == "jpeg":
        i = 2
        while i + 9 < len(b):
            marker, length = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                b[i + 5:i + 9] = struct.pack(">HH", big, big)
                break
            i += 2 + length
    elif fmt == "bmp":
        b[18:26] = struct.pack("<ii", big, big)
    elif fmt.startswith("gif"):
        b[6:10] = struct.pack("<HH", big, big)
    elif fmt.startswith("tiff"):
        b[30:34] = struct.pack("<I", big)  # lands in the first IFD's entries
    else:  # webp: VP8 frame header width/height
        b[26:30] = struct.pack("<HH", big & 0x3FFF, big & 0x3FFF)
    return bytes(b)


def mutate(data: bytes, fmt: str, kind: str, rng: np.random.Generator) -> bytes:
    if kind == "zero":
        return b""
    if kind == "truncate":
        return data[:int(rng.integers(1, max(2, len(data))))]
    if kind == "huge":
        return _huge(data, fmt)
    b = bytearray(data)
    if kind == "bitflip":
        for _ in range(int(rng.integers(1, 40))):
            i = int(rng.integers(len(b)))
            b[i] ^= 1 << int(rng.integers(8))
    else:  # header: overwrite a few bytes among the first 64
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(min(64, len(b))))] = int(rng.integers(256))
    return bytes(b)


def cases(n: int, seed: int = 0):
    """``n`` seeded (name, bytes) cases cycling through formats and mutations."""
    seeds = seed_files(seed)
    rng = np.random.default_rng(seed)
    for i in range(n):
        fmt = FORMATS[i % len(FORMATS)]
        kind = MUTATIONS[(i // len(FORMATS)) % len(MUTATIONS)]
        ext = {"jpeg": ".jpg", "tiff-pages": ".tif", "tiff": ".tif", "gif-animated": ".gif"}.get(fmt, f".{fmt}")
        yield f"{i:05d}-{fmt}-{kind}{ext}", mutate(seeds[fmt], fmt, kind, rng)


def run_one(path: Path, model) -> tuple[str, str]:
    """('ok' | 'refused' | 'failed', detail) for one file through read, protect, inspect."""
    from clrnet import ImageInputError, inspect, protect, read_photo

    try:
        photo = read_photo(path)
        inspect(protect(photo.image, model), model)
        return "ok", ""
    except ImageInputError as e:
        msg = str(e)
        if "\n" in msg or not msg.startswith(str(path)):
            return "failed", f"message not one line naming the file: {msg!r}"
        return "refused", msg
    except Exception:
        return "failed", traceback.format_exc()


def fuzz(n: int, seed: int, model_name: str, keep: Path | None, progress: bool = True) -> dict[str, object]:
    from tqdm import tqdm

    from clrnet.api import get_model

    model = get_model(model_name)
    counts = {"ok": 0, "refused": 0, "failed": 0}
    slowest = (0.0, "")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in tqdm(cases(n, seed), total=n, desc="fuzzing", disable=not progress):
            path = Path(tmp) / name
            path.write_bytes(data)
            t0 = time.perf_counter()
            outcome, detail = run_one(path, model)
            dt = time.perf_counter() - t0
            counts[outcome] += 1
            slowest = max(slowest, (dt, name))
            if outcome == "failed" or dt > TIME_LIMIT_S:
                failures.append((name, dt, detail))
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    (keep / name).write_bytes(data)
            path.unlink()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # ru_maxrss is in KiB on Linux
    return {"counts": counts, "slowest_s": slowest[0], "slowest": slowest[1], "peak_rss_gb": peak_gb,
            "failures": failures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="clrnet-v2")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 leaves a core free)")
    ap.add_argument("--keep", type=Path, default=Path("runs/fuzz"), help="Where failing files are kept.")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    res = fuzz(args.n, args.seed, args.model, args.keep)
    c = res["counts"]
    print(f"| files | worked | refused (one-line error) | failed (traceback or wrong message) | "
          f"files over {TIME_LIMIT_S:.0f} s | slowest | peak memory |")
    print("|---|---|---|---|---|---|---|")
    over = sum(1 for _, dt, _ in res["failures"] if dt > TIME_LIMIT_S)
    print(f"| {args.n} | {c['ok']} | {c['refused']} | {c['failed']} | {over} | {res['slowest_s']:.2f} s "
          f"({res['slowest']}) | {res['peak_rss_gb']:.2f} GB |")
    for name, dt, detail in res["failures"][:10]:
        print(f"\n{name} ({dt:.2f} s):\n{detail}", file=sys.stderr)
    sys.exit(1 if res["failures"] else 0)


if __name__ == "__main__":
    main()
