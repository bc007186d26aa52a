"""Tampering evaluation (``clrnet eval --tamper``): Imuge+'s Tables 4 and 5 with real edits.

Each photo is brought to ``size`` (a square side or ``native``), protected and saved as
PNG. Per attack of ``TAMPER_ATTACKS`` it is edited once (the edit cycles through
``edits.EDITS``, the mask through free-form and object-like, the area drawn in 5-40 %,
all seeded) and also left unedited (the false-alarm case); the attack is applied for
real and ``inspect`` is asked, with the true original size. Measured in the original
frame: the mask's pixel F1 and IoU (beside the trivial "everything edited" F1), PSNR
and SSIM of the recovered photo against the original, PSNR of the edited region alone
against OpenCV Telea inpainting of the true region of the received photo, and a
passive baseline a user has without protection (error-level analysis, thresholded by
Otsu). Unedited: the share called edited and the flagged area.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from clrnet.api import inspect
from clrnet.attacks.edits import EDITS, MASK_KINDS, apply_edit, make_mask
from clrnet.attacks.real import REAL_ATTACKS
from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.core.metrics import mask_f1, mask_iou, psnr, ssim
from clrnet.files.datasets import bring_to, list_images
from clrnet.models.designed import Protector
from clrnet.passive.classical import jpeg_error

TAMPER_ATTACKS = ["none", "jpeg90", "jpeg70", "jpeg50", "scale150", "scale70", "scale50", "gaussian", "median",
                  "noise", "dropout"]
RATE_RANGE = (0.05, 0.40)
# Imuge+ (Table 4, MS-COCO, 512 x 512, learned, GPU-trained): (F1, PSNR, SSIM) per attack
IMUGE_PLUS = {"none": (0.918, 29.93, 0.916), "jpeg90": (0.894, 28.87, 0.905), "jpeg70": (0.873, 28.33, 0.887),
              "jpeg50": (0.827, 27.82, 0.873), "scale150": (0.915, 29.92, 0.915), "scale70": (0.874, 28.45, 0.864),
              "scale50": (0.853, 27.44, 0.847), "gaussian": (0.852, 28.63, 0.880), "median": (0.792, 25.65, 0.787),
              "noise": (0.844, 27.68, 0.848), "dropout": (0.802, 27.13, 0.847)}
EDIT_CLASS = {"splice": "splicing", "copymove": "copy-move", "telea": "inpainting", "ns": "inpainting",
              "biharmonic": "inpainting", "smooth": "inpainting"}


@dataclass
class TamperRow:
    image: str
    attack: str
    edit: str  # one of EDITS, or "none" (the false-alarm case)
    mask_kind: str
    rate: float  # edited share of the frame
    found: bool  # the protection was found and the payload decoded
    flagged: bool  # inspect called the photo edited
    flagged_area: float  # share of the frame marked edited
    f1: float
    iou: float
    f1_trivial: float  # "everything edited"
    f1_passive: float  # error-level analysis, Otsu threshold
    psnr: float  # recovered photo vs original
    ssim: float
    psnr_region: float  # the edited region alone
    psnr_region_inpaint: float  # Telea inpainting of the true region, same pixels


def _load(path: Path, size: str) -> Image.Image:
    return bring_to(Image.open(path).convert("RGB"), size)


def _png(im: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def error_level(photo: np.ndarray, quality: int = 90) -> np.ndarray:
    """Error-level analysis: where re-saving as JPEG changes the photo more than elsewhere
    (edited regions often recompress differently), smoothed; thresholded by Otsu."""
    err = jpeg_error(photo, quality)
    side = max(3, (min(photo.shape[:2]) // 32) | 1)
    err = cv2.GaussianBlur(err, (side, side), 0)
    u8 = cv2.normalize(err, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, out = cv2.threshold(u8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return out.astype(bool)


def tamper_rows(model: Protector, folder: str | Path, size: str = "256", attacks: list[str] | None = None,
                limit: int | None = None, seed: int = 0, progress: bool = True,
                keep: list | None = None) -> list[TamperRow]:
    """Every photo x attack: one edited and one unedited case (see the module's docstring).
    ``keep`` collects (original, received, true mask, inspection) of the first edited cases
    for a figure."""
    from tqdm import tqdm

    attacks = attacks or TAMPER_ATTACKS
    unknown = [a for a in attacks if a not in REAL_ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack {unknown[0]!r}; choose from: {', '.join(REAL_ATTACKS)}")
    paths = list_images(folder)[:limit] if limit else list_images(folder)
    if not paths:
        raise FileNotFoundError(f"{folder}: no photos")
    rows: list[TamperRow] = []
    bar = tqdm(total=len(paths) * len(attacks), desc="tampering", disable=not progress)
    for i, path in enumerate(paths):
        original = _load(path, size)
        donor = np.asarray(_load(paths[(i + 1) % len(paths)], size))
        protected = np.asarray(_png(tensor_to_pil(model.protect(pil_to_tensor(original)))))
        ref = pil_to_tensor(original)
        for j, attack in enumerate(attacks):
            edit, kind, mask, edited = edit_case(protected, donor, i, j, seed)
            for name, photo, truth in ((edit, edited, mask), ("none", protected, np.zeros_like(mask))):
                received = REAL_ATTACKS[attack](Image.fromarray(photo), seed + i)
                rows.append(_measure(model, path.name, attack, name, kind, received, truth, ref, keep))
            bar.update()
    bar.close()
    return rows


def edit_case(protected: np.ndarray, donor: np.ndarray, i: int, j: int, seed: int = 0
              ) -> tuple[str, str, np.ndarray, np.ndarray]:
    """The edit of photo ``i`` (of the folder) under attack ``j`` (of the attacks asked),
    seeded by both: (edit, mask kind, true mask, edited photo); ``donor`` is what a splice
    pastes from (:func:`tamper_rows` passes the folder's next photo)."""
    h, w = protected.shape[:2]
    rng = np.random.default_rng([seed, i, j])
    edit = EDITS[(i + j) % len(EDITS)]
    kind = MASK_KINDS[(i + j // len(EDITS)) % len(MASK_KINDS)]
    mask = make_mask(kind, rng, h, w, float(rng.uniform(*RATE_RANGE)))
    return edit, kind, mask, apply_edit(edit, protected, mask, rng, donor)


def _measure(model: Protector, image: str, attack: str, edit: str, kind: str, received: Image.Image,
             truth: np.ndarray, ref: torch.Tensor, keep: list | None) -> TamperRow:
    h, w = truth.shape
    found = inspect(received, model, original_size=(w, h))
    pred = (torch.from_numpy(np.array(found.tamper_mask)) > 127) if found.tamper_mask is not None \
        else torch.zeros(h, w, dtype=torch.bool)
    t = torch.from_numpy(truth)
    rec = pil_to_tensor(found.recovered)
    rate = float(truth.mean())
    region = psnr_inp = f1p = float("nan")
    if truth.any():
        at_size = np.asarray(received.resize((w, h), Image.BICUBIC)) if received.size != (w, h) \
            else np.asarray(received)
        telea = cv2.inpaint(np.ascontiguousarray(at_size), truth.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
        region = psnr(rec, ref, t)
        psnr_inp = psnr(pil_to_tensor(Image.fromarray(telea)), ref, t)
        f1p = mask_f1(torch.from_numpy(error_level(at_size)), t)
        if keep is not None and len(keep) < 4 and image not in {k[0] for k in keep}:
            keep.append((image, tensor_to_pil(ref), received, Image.fromarray(truth.astype(np.uint8) * 255), found))
    return TamperRow(image, attack, edit, kind, rate, bool(found.payload), bool(found.tampered),
                     float(pred.float().mean()), mask_f1(pred, t), mask_iou(pred, t),
                     2 * rate / (1 + rate) if rate > 0 else float("nan"), f1p, psnr(rec, ref), ssim(rec, ref),
                     region, psnr_inp)


def _mean(values: list[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return sum(v) / len(v) if v else float("nan")


def table4(rows: list[TamperRow]) -> list[dict[str, object]]:
    """Imuge+'s Table 4 layout: a column per attack, ours with Imuge+'s (MS-COCO) in parentheses."""
    attacks = list(dict.fromkeys(r.attack for r in rows))
    out: list[dict[str, object]] = []

    def line(name: str, fn, ref: int | None = None, digits: int = 3) -> None:
        d: dict[str, object] = {"": name}
        for a in attacks:
            v = fn([r for r in rows if r.attack == a])
            cell = f"{v:.{digits}f}"
            if ref is not None and a in IMUGE_PLUS:
                cell += f" ({IMUGE_PLUS[a][ref]:.{digits}f})"
            d[a] = cell
        d["mean"] = f"{fn(rows):.{digits}f}"
        out.append(d)

    line("mask F1 (Imuge+)", lambda rs: _mean([r.f1 for r in rs if r.edit != "none"]), 0)
    line("mask IoU", lambda rs: _mean([r.iou for r in rs if r.edit != "none"]))
    line("trivial F1 (all edited)", lambda rs: _mean([r.f1_trivial for r in rs if r.edit != "none"]))
    line("passive F1 (error level)", lambda rs: _mean([r.f1_passive for r in rs if r.edit != "none"]))
    line("recovered PSNR (Imuge+)", lambda rs: _mean([r.psnr for r in rs if r.edit != "none"]), 1, 2)
    line("recovered SSIM (Imuge+)", lambda rs: _mean([r.ssim for r in rs if r.edit != "none"]), 2)
    line("edited region PSNR", lambda rs: _mean([r.psnr_region for r in rs if r.edit != "none"]), None, 2)
    line("Telea, true region", lambda rs: _mean([r.psnr_region_inpaint for r in rs if r.edit != "none"]), None, 2)
    line("payload decoded (edited)", lambda rs: _mean([float(r.found) for r in rs if r.edit != "none"]))
    line("unedited: called edited", lambda rs: _mean([float(r.flagged) for r in rs if r.edit == "none"]))
    line("unedited: area flagged", lambda rs: _mean([r.flagged_area for r in rs if r.edit == "none"]), None, 4)
    line("unedited: payload decoded", lambda rs: _mean([float(r.found) for r in rs if r.edit == "none"]))
    return out


RATE_BINS = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.5))


def table5(rows: list[TamperRow]) -> list[dict[str, object]]:
    """Imuge+'s Table 5 layout: by tampering rate and edit class (all attacks pooled), F1 and
    recovered PSNR, with the count of cases."""
    out: list[dict[str, object]] = []
    for lo, hi in RATE_BINS:
        d: dict[str, object] = {"rate": f"[{lo:.1f},{hi:.1f}]"}
        for cls in ("copy-move", "splicing", "inpainting"):
            rs = [r for r in rows if r.edit != "none" and EDIT_CLASS[r.edit] == cls and lo <= r.rate < hi]
            d[f"{cls} F1"] = f"{_mean([r.f1 for r in rs]):.3f}"
            d[f"{cls} PSNR"] = f"{_mean([r.psnr for r in rs]):.2f}"
            d[f"{cls} n"] = len(rs)
        out.append(d)
    return out


def by_edit(rows: list[TamperRow]) -> list[dict[str, object]]:
    """Each edit operation: F1, edited-region PSNR against Telea on the true region."""
    out: list[dict[str, object]] = []
    for e in EDITS:
        rs = [r for r in rows if r.edit == e]
        if rs:
            out.append({"edit": e, "cases": len(rs), "mask F1": _mean([r.f1 for r in rs]),
                        "payload decoded": _mean([float(r.found) for r in rs]),
                        "region PSNR": _mean([r.psnr_region for r in rs]),
                        "Telea, true region": _mean([r.psnr_region_inpaint for r in rs])})
    return out


def tamper_figure(cases: list) -> Image.Image:
    """Rows (one per photo) of: original, received, true mask, predicted mask, recovered with
    the edits outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(cases), 5, figsize=(15, 3.1 * len(cases)), squeeze=False)
    for row, (_, orig, received, truth, found) in zip(axes, cases):
        pred = found.tamper_mask if found.tamper_mask is not None else Image.new("L", orig.size, 0)
        for ax, im, title in zip(row, (orig, received, truth, pred, found.overlay()),
                                 ("original", "received (edited, attacked)", "true edit", "found edit",
                                  "recovered, edits outlined")):
            ax.imshow(im, cmap="gray" if im.mode == "L" else None, vmin=0, vmax=255)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")
