"""Fit the spectrum model of the small channels' DCT grid (clrnet/payload/grid.py).

    python scripts/fit_grid_spectrum.py --data ../shared/datasets/train --photos 400

Each photo (at its own size and squeezed to 256 x 256) is box-averaged to an
8-cell grid per plane (Y, Cb, Cr) and taken through an orthonormal DCT; the
mean square of each coefficient, grouped by frequency and grid, is fitted by
log var = A + log(cells) - alpha * log(fx^2 + fy^2 + f0^2) + log(box attenuation),
fx, fy in cycles per long side. Prints (A, alpha, f0) per plane (grid.SPECTRUM)
and the photos' mean and spread per plane (grid.DC_MEAN, grid.DC_STD before widening).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.optimize import least_squares

from clrnet.files.datasets import list_images
from clrnet.payload.grid import YCC

CELLS = 8


def coefficients(img: Image.Image) -> list[tuple[int, float, float, float, float, int, float]]:
    """(plane, fx, fy, u / 2gw, v / 2gh, cells, coefficient) for every AC coefficient."""
    w, h = img.size
    gw, gh = (CELLS, max(1, round(CELLS * h / w))) if w >= h else (max(1, round(CELLS * w / h)), CELLS)
    ycc = np.asarray(img, dtype=np.float64) @ YCC.T
    long = max(w, h)
    out = []
    for p in range(3):
        g = np.asarray(Image.fromarray(ycc[..., p].astype(np.float32), mode="F").resize((gw, gh), Image.Resampling.BOX),
                       dtype=np.float64)
        c = dctn(g, norm="ortho")
        out += [(p, u / 2 * long / w, v / 2 * long / h, u / (2 * gw), v / (2 * gh), gw * gh, c[v, u])
                for v in range(gh) for u in range(gw) if u or v]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/datasets/train")
    ap.add_argument("--photos", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    files = list_images(Path(a.data))
    rng = np.random.default_rng(a.seed)
    files = [files[i] for i in rng.choice(len(files), min(a.photos, len(files)), replace=False)]
    groups: dict[tuple, list[float]] = defaultdict(list)
    means: list[np.ndarray] = []
    for f in files:
        im = Image.open(f).convert("RGB")
        means.append((np.asarray(im, dtype=np.float64) @ YCC.T).reshape(-1, 3).mean(0))
        for img in (im, im.resize((256, 256), Image.Resampling.BICUBIC)):
            for p, fx, fy, au, av, cells, c in coefficients(img):
                groups[(p, round(fx, 2), round(fy, 2), round(au, 3), round(av, 3), cells)].append(c)
    keys = [k for k, v in groups.items() if len(v) >= 30]
    k = np.array(keys, dtype=np.float64)
    var = np.array([np.mean(np.square(groups[key])) for key in keys])

    def model(theta: np.ndarray) -> np.ndarray:
        out = np.zeros(len(k))
        for p in range(3):
            a0, alpha, f0 = theta[3 * p:3 * p + 3]
            m = k[:, 0] == p
            att = (np.sinc(k[m, 3]) * np.sinc(k[m, 4])) ** 2
            out[m] = a0 + np.log(k[m, 5]) - alpha * np.log(k[m, 1] ** 2 + k[m, 2] ** 2 + f0 ** 2) + np.log(att)
        return out

    fit = least_squares(lambda t: model(t) - np.log(var), x0=[7, 1, 0.3] * 3, bounds=([-20, 0, 0.01] * 3, [30, 4, 5] * 3))
    print(f"{len(files)} photos, {len(keys)} coefficient groups, rms log error {np.sqrt(np.mean(fit.fun ** 2)):.3f}")
    for p, name in enumerate(("Y", "Cb", "Cr")):
        a0, alpha, f0 = fit.x[3 * p:3 * p + 3]
        print(f"{name}: A {a0:.4f}  alpha {alpha:.4f}  f0 {f0:.4f}")
    m = np.array(means)
    print("photo mean per plane", np.round(m.mean(0), 1).tolist(), "spread", np.round(m.std(0), 1).tolist())


if __name__ == "__main__":
    main()
