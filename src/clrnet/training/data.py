"""Training photos: random square crops of the train split, drawn by a seeded generator."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from clrnet.core.geometry import resize
from clrnet.files.datasets import list_images


class PhotoBank:
    """In-memory uint8 photos for fast random training crops."""

    def __init__(self, folders: list[str | Path], size: int, cache: str | Path | None = None,
                 progress: bool = True) -> None:
        self.size = size
        paths = [p for f in folders for p in list_images(f)]
        if not paths:
            raise FileNotFoundError(f"no photos in {', '.join(map(str, folders))}")
        digest = hashlib.sha1("\n".join(map(str, paths)).encode()).hexdigest()[:12]
        key = f"bank-{size}-{len(paths)}-{digest}.pt"  # stable across processes
        cache_file = Path(cache) / key if cache else None
        if cache_file is not None and cache_file.is_file():
            self.images: list[Tensor] = torch.load(cache_file)
            return
        from tqdm import tqdm

        short = int(size * 1.5)
        self.images = []
        for p in tqdm(paths, desc="loading photos", disable=not progress):
            with Image.open(p) as im:
                im = im.convert("RGB")
                w, h = im.size
                s = short / min(w, h)
                im = im.resize((max(short, round(w * s)), max(short, round(h * s))),
                               Image.Resampling.BICUBIC if s > 1 else Image.Resampling.LANCZOS)
                self.images.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
        if cache_file is not None:  # atomically: other processes may read it next
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
            torch.save(self.images, tmp)
            os.replace(tmp, cache_file)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, n: int, rng: np.random.Generator) -> Tensor:
        """``n`` random resized crops (40-100 % of the photo's area), random h-flips."""
        out = []
        for _ in range(n):
            img = self.images[int(rng.integers(len(self.images)))]
            _, h, w = img.shape
            area = rng.uniform(0.4, 1.0) * h * w
            ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw = int(min(w, round(np.sqrt(area * ratio))))
            ch = int(min(h, round(np.sqrt(area / ratio))))
            x0 = int(rng.integers(0, w - cw + 1))
            y0 = int(rng.integers(0, h - ch + 1))
            patch = img[:, y0:y0 + ch, x0:x0 + cw].float()[None] / 255
            patch = resize(patch, self.size, self.size)[0]
            if rng.random() < 0.5:
                patch = patch.flip(-1)
            out.append(patch)
        return torch.stack(out).clamp(0, 1)
