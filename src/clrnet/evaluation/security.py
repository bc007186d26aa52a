"""What removing the protection costs an attacker (``clrnet eval --security``).

Two attacks on protection v2, each measured by whether ``inspect`` (with the key the
photo was protected with) still finds the protection in the attacked photo, and
by the PSNR the attacked photo keeps against the original:

- **public pattern subtracted**: the attacker knows the public patterns (they
  ship with the package), reads the payload like any recipient, rebuilds the
  exact change the protection made (ruler and payload, shaped by the JND map of
  the protected photo) and subtracts it. Against a keyed photo the attacker has
  only the public patterns, which do not match.
- **averaging N photos of one key** (Yang et al., NeurIPS 2024): the attacker
  collects N photos protected with one key at one size, averages their
  high-pass residuals, each divided by its JND map, to estimate the key's fixed
  pattern, and subtracts the estimate (scaled by the JND map of the target and a
  least-squares gain) from a protected photo not among the N. Against a key with
  several variants (the default of ``clrnet keygen``) the N photos carry different
  pattern sets, and their average is a mixture. So the table also gives the
  attacker who first sorts the N photos into groups of one variant by clustering
  their residuals (:func:`sort_by_variant`), assigns the target to the group its
  residual matches best, and averages only that group.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from clrnet.core.image import luminance, pil_to_tensor
from clrnet.core.jnd import jnd_map
from clrnet.files.datasets import list_images
from clrnet.models.designed import Protector
from clrnet.payload import channel
from clrnet.protection.key import DEFAULT_VARIANTS, ProtectionKey
from clrnet.sync.frame import working_size

AVERAGING_N = (10, 30, 100, 300, 1000)


def _psnr(a: Tensor, b: Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1 / max(mse, 1e-12))


def _load(path: Path, size: tuple[int, int]) -> Tensor:
    with Image.open(path) as im:
        return pil_to_tensor(im.convert("RGB").resize(size, Image.Resampling.BICUBIC))


def _crop_half(photo: Tensor) -> Tensor:
    """The middle half of the area."""
    _, h, w = photo.shape
    dh, dw = round(h * (1 - 0.5 ** 0.5) / 2), round(w * (1 - 0.5 ** 0.5) / 2)
    return photo[:, dh:h - dh, dw:w - dw]


def _found(model: Protector, photo: Tensor) -> bool:
    return bool(model.inspect(photo).protected)


def subtract_public(public: Protector, photo: Tensor) -> Tensor:
    """The attacker's best public removal: read the payload, rebuild the change the
    public protection made to this photo, subtract it (an unreadable payload: the
    ruler alone is rebuilt, with a payload of zeros)."""
    _, h, w = photo.shape
    r = public.inspect(photo)
    bits = r.decoded.codeword if r.decoded is not None else None
    if bits is None:
        bits = torch.zeros(public.layout(w, h).n_bits, dtype=torch.uint8)
    delta = public.signal(photo, bits)
    return (photo - delta).clamp(0, 1)


def normalised_residual(photo: Tensor, model: Protector) -> Tensor:
    """High-pass luminance over the JND map (H, W): what averaging estimates the
    key's fixed pattern from."""
    m = jnd_map(photo[None], model.cfg.jnd_floor, model.cfg.jnd_slope, model.cfg.jnd_cap)[0, 0]
    return channel.whiten(luminance(photo[None])[0, 0]) / (m / 255)


def remove_estimate(photo: Tensor, estimate: Tensor, model: Protector) -> Tensor:
    """Subtract the averaged pattern, shaped by the photo's JND map, with the gain that
    best explains the photo's own high-pass residual (least squares, at least 0)."""
    m = jnd_map(photo[None], model.cfg.jnd_floor, model.cfg.jnd_slope, model.cfg.jnd_cap)[0, 0] / 255
    pattern = m * estimate
    resid = channel.whiten(luminance(photo[None])[0, 0])
    gain = max(float((resid * channel.whiten(pattern)).sum() / (channel.whiten(pattern) ** 2).sum().clamp_min(1e-12)),
               0.0)
    return (photo - gain * pattern[None]).clamp(0, 1)


def sort_by_variant(residuals: Tensor, groups: int, seed: int = 0) -> np.ndarray:
    """The attacker's sorting of N protected photos (their normalised residuals, N x P)
    into ``groups`` of one variant each: photos of one variant share a pattern, so
    their residuals correlate; spectral clustering of the correlation matrix (its
    leading eigenvectors, k-means on them). Returns a group per photo."""
    from scipy.cluster.vq import kmeans2

    r = residuals - residuals.mean(1, keepdim=True)
    r = r / r.norm(dim=1, keepdim=True).clamp_min(1e-12)
    c = (r @ r.T).double().numpy()
    np.fill_diagonal(c, 0.0)
    k = min(groups, len(c))
    emb = np.linalg.eigh(c)[1][:, -k:]
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)
    _, labels = kmeans2(emb, k, seed=seed, minit="++")
    return labels


def security_table(model: Protector, targets_folder: str | Path, pool_folder: str | Path,
                   size: tuple[int, int] = (384, 256), targets: int = 8, ns: tuple[int, ...] = AVERAGING_N,
                   seed: int = 0, variants: int = DEFAULT_VARIANTS,
                   progress: bool = True) -> list[dict[str, object]]:
    """One row per attack: the share of target photos whose protection ``inspect``
    still finds after the attack, and the PSNR (dB) the attacked photo keeps against
    the original (mean), for the public protection, a key of one variant and one of
    ``variants``; and how often a keyed photo (whole, and its middle half) read
    without its key is called protected at all (it should say "no protection")."""
    from tqdm import tqdm

    size = working_size(*size)  # the attack works at the working frame
    public = model.with_key(None)
    rng = np.random.default_rng(seed)
    secret = rng.bytes(32)  # a seeded key: the same numbers every run
    keyed = model.with_key(ProtectionKey(secret))
    varied = model.with_key(ProtectionKey(secret, variants))
    many = f"keyed, {variants} variants"
    originals = [_load(p, size) for p in list_images(targets_folder)[:targets]]
    pool_paths = list_images(pool_folder)
    need = max(ns) if ns else 0
    if len(pool_paths) < need:
        raise ValueError(f"{pool_folder}: {len(pool_paths)} photos, the averaging attack needs {need}")
    rows: list[dict[str, object]] = []

    def row(attack: str, protection: str, attacked: list[Tensor], protected: list[Tensor], reader: Protector,
            cost: str = "") -> None:
        rows.append({"attack": attack, "protection": protection,
                     "protection still found": float(np.mean([_found(reader, a) for a in attacked])),
                     "PSNR attacked vs original (dB)": float(np.mean([_psnr(a, o) for a, o in zip(attacked, originals)])),
                     "PSNR protected vs original (dB)": float(np.mean([_psnr(p, o) for p, o in zip(protected,
                                                                                                       originals)])),
                     "attacker needs": cost})

    pub = [public.protect(x) for x in originals]
    key = [keyed.protect(x) for x in originals]
    var = [varied.protect(x) for x in originals]
    row("none", "public", pub, pub, public)
    row("none", "keyed", key, key, keyed)
    row("none", many, var, var, varied)
    other = model.with_key(ProtectionKey(rng.bytes(32), variants))
    for name, reader in (("read without the key (public patterns)", public), ("read with another key", other)):
        parts = [c for p in var for c in (p, _crop_half(p))]
        rows.append({"attack": name, "protection": many,
                     "protection still found": float(np.mean([_found(reader, c) for c in parts])),
                     "PSNR attacked vs original (dB)": float("nan"), "PSNR protected vs original (dB)": float("nan"),
                     "attacker needs": f"{len(parts)} photos and crops"})
    row("public pattern subtracted", "public", [subtract_public(public, p) for p in pub], pub, public,
        "the package")
    row("public pattern subtracted", many, [subtract_public(public, p) for p in var], var, varied,
        "the package")
    readers = varied.readers()
    total = torch.zeros(size[1], size[0], dtype=torch.float64)
    residuals: list[Tensor] = []  # of the varied key's photos, for the sorting attacker
    truth: list[int] = []  # their variants, to score the sorting
    order = rng.permutation(len(pool_paths))[:need]
    done = 0
    bar = tqdm(total=need, desc="averaging attack", disable=not progress)
    for n in sorted(ns):
        for i in order[done:n]:
            x = _load(pool_paths[int(i)], size)
            total += normalised_residual(keyed.protect(x), keyed).double()
            residuals.append(normalised_residual(varied.protect(x), varied).flatten())
            truth.append(readers.index(varied.for_photo(x)))
            bar.update(1)
        done = n
        estimate = (total / n).float()
        row(f"averaging {n} photos of the key", "keyed", [remove_estimate(p, estimate, keyed) for p in key], key,
            keyed, f"{n} photos protected with the key")
        stack = torch.stack(residuals)
        mixed = stack.mean(0).view(size[1], size[0])
        row(f"averaging {n} photos of the key", many, [remove_estimate(p, mixed, varied) for p in var], var,
            varied, f"{n} photos protected with the key")
        labels = sort_by_variant(stack, variants, seed)
        means = torch.stack([stack[torch.from_numpy(labels == g)].mean(0) if (labels == g).any()
                             else torch.zeros(stack.shape[1]) for g in range(variants)])
        right = sum(int(np.bincount(np.asarray(truth)[labels == g]).max()) for g in range(variants)
                    if (labels == g).any())
        unit = means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
        attacked = []
        for p in var:  # the target joins the group whose average its residual matches best
            g = int(torch.argmax(unit @ normalised_residual(p, varied).flatten()))
            attacked.append(remove_estimate(p, means[g].view(size[1], size[0]), varied))
        row(f"averaging {n} photos of the key, sorted by variant first", many, attacked, var, varied,
            f"{n} photos, {right / n:.0%} sorted into their variant's group")
    bar.close()
    return rows
