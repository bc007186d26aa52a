"""The flattest mid-tone 64 x 64 patch of scikit-image's astronaut (the wall behind her) at 4x zoom: the original,
protected by the shipped v1 model and by protection v2, and each change x 10 around
mid-grey. Writes docs/flat-wall.png and prints the change's rms in the patch.

    python scripts/flat_wall.py [--out docs/flat-wall.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage import data

import clrnet
from clrnet.core.image import local_std, luminance, pil_to_tensor


def flattest(img: Image.Image, side: int = 64) -> tuple[int, int]:
    x = pil_to_tensor(img)
    y = luminance(x[None])
    sd = local_std(y * 255, side)[0, 0].numpy()
    mean = torch.nn.functional.avg_pool2d(y, side, 1, side // 2, count_include_pad=False)[0, 0, :sd.shape[0], :sd.shape[1]]
    sd[(mean < 0.2).numpy() | (mean > 0.85).numpy()] = 1e9  # a wall, not the black of space or a white suit
    sd[: side // 2], sd[-side // 2:], sd[:, : side // 2], sd[:, -side // 2:] = 1e9, 1e9, 1e9, 1e9
    cy, cx = np.unravel_index(int(np.argmin(sd)), sd.shape)
    return int(cx) - side // 2, int(cy) - side // 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("docs/flat-wall.png"))
    args = ap.parse_args()
    torch.manual_seed(0)
    original = Image.fromarray(data.astronaut())
    x0, y0 = flattest(original)
    box = (x0, y0, x0 + 64, y0 + 64)
    tiles = [("original", original.crop(box))]
    for name in ("clrnet-small-128", "clrnet-v2"):
        prot = clrnet.protect(original, model=name)
        a = np.asarray(prot.crop(box), dtype=np.float32)
        b = np.asarray(original.crop(box), dtype=np.float32)
        rms = float(np.sqrt(((a - b) ** 2).mean()))
        print(f"{name}: change rms {rms:.2f} levels in the patch at {box}")
        tiles.append((f"{name} ({rms:.1f} rms)", prot.crop(box)))
        diff = np.clip(128 + 10 * (a - b), 0, 255).astype(np.uint8)
        tiles.append((f"{name} change x10", Image.fromarray(diff)))
    z = 4 * 64
    sheet = Image.new("RGB", (len(tiles) * (z + 8), z + 24), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, t) in enumerate(tiles):
        sheet.paste(t.resize((z, z), Image.Resampling.NEAREST), (i * (z + 8), 24))
        draw.text((i * (z + 8) + 2, 6), label, fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
