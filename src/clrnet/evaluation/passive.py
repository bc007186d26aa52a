"""``clrnet eval passive``: the passive detector in the PSCC-Net paper's protocol.

Data (``--data`` is the datasets root): synthetic edits of ``test/kodak24`` and ``test/set14``
(every photo once as each of ``forgeries.KINDS``, seeded; a splice's donor is the folder's next
photo), received after each post-processing column (``attacks.real``; the floor's column is
JPEG 80); and the real CASIA v1.0 samples of ``forensics/casia1-samples`` (tampered photos with
their masks; their originals are the pristine ones of the image-level rows).
Rows: PSCC-Net (ours), ELA and NOI1 (``passive.classical``; the map's mean is their image
score), and, on the synthetic edits of protected copies of the same photos, the active tamper
map of the protection (``inspect``'s ``tamper_mask``, a binary map, and its edited share).
Pixel level (edited photos only, every pixel of them pooled): AUC, and F1 at the threshold of
the pooled ROC's equal-error point (the paper's F1), averaged over the photos. Image level:
AUC, F1 at the equal-error threshold, EER, TPR at 1 % FPR; and, for PSCC-Net, the share of
pristine photos its shipped threshold calls edited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from clrnet.api import inspect
from clrnet.attacks.forgeries import KINDS, forge
from clrnet.attacks.real import REAL_ATTACKS
from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.core.roc import auc, eer, f1_at, tpr_at_fpr
from clrnet.files.datasets import list_images
from clrnet.files.imageio import save_atomic
from clrnet.passive.classical import ela_map, noi1_map
from clrnet.passive.detect import DEFAULT, detector

COLUMNS = ["none", "jpeg80", "jpeg50", "scale50", "gaussian", "noise"]
ACTIVE_COLUMNS = ("none", "jpeg80")
SYNTHETIC = ("kodak24", "set14")
CASIA = "forensics/casia1-samples"
METHODS = ("PSCC-Net (ours)", "ELA", "NOI1")
ACTIVE = "clrnet-v2 tamper map (protected)"
# the paper: Table 1 (pixel AUC of the pre-trained model, CASIA), Table 2 (ELA, NOI1 on CASIA:
# AUC / F1, fine-tuned protocol) and Table 3 (detection on CASIA-D)
PAPER = {"PSCC-Net pixel AUC (Table 1, CASIA)": 0.829, "ELA pixel AUC / F1 (Table 2, CASIA)": (0.613, 0.214),
         "NOI1 pixel AUC / F1 (Table 2, CASIA)": (0.612, 0.263),
         "PSCC-Net image AUC / F1 / EER / TPR@1% (Table 3, CASIA-D)": (0.9965, 0.9712, 0.0283, 0.9565)}


@dataclass
class Case:
    """One photo as received: its truth mask (all False: pristine) and what each method said."""

    source: str
    name: str
    kind: str
    column: str
    truth: np.ndarray
    scores: dict[str, float]
    maps: dict[str, np.ndarray]
    photo: np.ndarray | None = None


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _fit(donor: np.ndarray, h: int, w: int) -> np.ndarray:
    """``donor`` resized to cover h x w and centre-cropped to it."""
    dh, dw = donor.shape[:2]
    f = max(h / dh, w / dw)
    im = Image.fromarray(donor).resize((max(w, round(dw * f)), max(h, round(dh * f))), Image.BICUBIC)
    a = np.asarray(im)
    y, x = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[y:y + h, x:x + w]


def synthetic_edits(folder: Path, seed: int, limit: int | None = None
                    ) -> list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]:
    """(photo name, kind, original, edited, mask) for every photo x kind, seeded."""
    paths = list_images(folder)[:limit] if limit else list_images(folder)
    if len(paths) < 2:
        raise FileNotFoundError(f"{folder}: fewer than two photos")
    out = []
    for i, p in enumerate(paths):
        photo = _rgb(p)
        donor = _fit(_rgb(paths[(i + 1) % len(paths)]), *photo.shape[:2])
        for k, kind in enumerate(KINDS):
            rng = np.random.default_rng([seed, i, k])
            edited, mask = forge(kind, photo, rng, donor)
            out.append((p.name, kind, photo, edited, mask))
    return out


def passive_scores(photo: np.ndarray, name: str = DEFAULT) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Each method's image score and map of one received photo."""
    r = detector(name)(photo)
    ela, noi = ela_map(photo), noi1_map(photo)
    return ({METHODS[0]: r.score, METHODS[1]: float(ela.mean()), METHODS[2]: float(noi.mean())},
            {METHODS[0]: r.map, METHODS[1]: ela, METHODS[2]: noi})


def _receive(photo: np.ndarray, column: str, seed: int) -> np.ndarray:
    return np.asarray(REAL_ATTACKS[column](Image.fromarray(photo), seed).convert("RGB"))


def _truth_after(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape == shape[:2]:
        return mask
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((shape[1], shape[0]), Image.NEAREST)) > 127


def synthetic_cases(root: Path, columns: list[str], seed: int, limit: int | None, name: str = DEFAULT,
                    progress: bool = True) -> list[Case]:
    edits = [(src, e) for src in SYNTHETIC for e in synthetic_edits(root / "test" / src, seed, limit)]
    cases = []
    for j, (src, (photo_name, kind, _, edited, mask)) in enumerate(tqdm(edits, desc="passive: synthetic",
                                                                      disable=not progress)):
        for column in columns:
            received = _receive(edited, column, seed + j)
            s, m = passive_scores(received, name)
            cases.append(Case(src, photo_name, kind, column, _truth_after(mask, received.shape), s, m,
                              received if j < 8 and column == "jpeg80" else None))
    return cases


def casia_cases(root: Path, name: str = DEFAULT, progress: bool = True) -> list[Case]:
    """The CASIA samples: tampered (with masks) and their originals (pristine)."""
    folder = root / CASIA
    tampered = list_images(folder / "tampered")
    cases = []
    for p in tqdm(tampered, desc="passive: CASIA", disable=not progress):
        mask = np.asarray(Image.open(folder / "mask" / p.name).convert("L")) > 127
        for kind, path, truth in (("tampered", p, mask), ("pristine", folder / "original" / p.name,
                                                           np.zeros_like(mask))):
            photo = _rgb(path)
            s, m = passive_scores(photo, name)
            cases.append(Case("casia", p.name, kind, "as published", truth, s, m, photo if len(cases) < 8 else None))
    return cases


def active_cases(model, root: Path, seed: int, limit: int | None, progress: bool = True) -> list[Case]:
    """The same synthetic edits made on protected copies, read by ``inspect``'s tamper map."""
    cases = []
    for src in SYNTHETIC:
        paths = list_images(root / "test" / src)[:limit] if limit else list_images(root / "test" / src)
        for i, p in enumerate(tqdm(paths, desc=f"active: {src}", disable=not progress)):
            photo = _rgb(p)
            protected = np.asarray(tensor_to_pil(model.protect(pil_to_tensor(Image.fromarray(photo)))))
            donor = _fit(_rgb(paths[(i + 1) % len(paths)]), *photo.shape[:2])
            for k, kind in enumerate(KINDS):
                edited, mask = forge(kind, protected, np.random.default_rng([seed, i, k]), donor)
                for column in ACTIVE_COLUMNS:
                    received = REAL_ATTACKS[column](Image.fromarray(edited), seed + i).convert("RGB")
                    found = inspect(received, model, original_size=(photo.shape[1], photo.shape[0]))
                    tm = (np.asarray(found.tamper_mask) > 127).astype(np.float32) if found.tamper_mask is not None \
                        else np.zeros(mask.shape, np.float32)
                    if tm.shape != mask.shape:
                        tm = np.asarray(Image.fromarray(tm).resize((mask.shape[1], mask.shape[0]), Image.NEAREST))
                    share = float(found.tamper_score or 0.0)
                    cases.append(Case(src, p.name, kind, column, mask, {ACTIVE: share}, {ACTIVE: tm}))
    return cases


def measure(cases: list[Case], method: str, threshold: float | None = None) -> dict[str, float]:
    """The paper's pixel- and image-level numbers of one method over ``cases``."""
    edited = [c for c in cases if c.truth.any()]
    px = np.concatenate([c.maps[method].ravel() for c in edited]) if edited else np.zeros(0)
    pt = np.concatenate([c.truth.ravel() for c in edited]) if edited else np.zeros(0, bool)
    row: dict[str, float] = {}
    if edited:
        row["pixel AUC"] = auc(px, pt)
        _, t = eer(px, pt)
        row["pixel F1"] = float(np.mean([f1_at(c.maps[method], c.truth, t) for c in edited]))
    s = np.array([c.scores[method] for c in cases])
    lab = np.array([c.truth.any() for c in cases])
    if lab.any() and (~lab).any():
        e, t = eer(s, lab)
        row.update({"image AUC": auc(s, lab), "image F1": f1_at(s, lab, t), "EER": e,
                    "TPR@1%FPR": tpr_at_fpr(s, lab, 0.01)})
        if threshold is not None:
            row["pristine called edited"] = float((s[~lab] >= threshold).mean())
            row["edited called edited"] = float((s[lab] >= threshold).mean())
    return row


def passive_table(cases: list[Case], active: list[Case], threshold: float) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    groups: dict[tuple[str, str], list[Case]] = {}
    for c in cases:
        groups.setdefault(("Kodak + Set14" if c.source in SYNTHETIC else "CASIA v1.0 samples", c.column), []).append(c)
    for (data, column), group in groups.items():
        for method in METHODS:
            rows.append({"data": data, "received": column, "method": method,
                         **measure(group, method, threshold if method == METHODS[0] else None)})
    a_groups: dict[str, list[Case]] = {}
    for c in active:
        a_groups.setdefault(c.column, []).append(c)
    for column, group in a_groups.items():
        rows.append({"data": "Kodak + Set14", "received": column, "method": ACTIVE, **measure(group, ACTIVE)})
    return rows


def passive_figure(cases: list[Case], path: Path) -> None:
    """Rows of examples: received photo, truth, PSCC-Net map, ELA, NOI1."""
    shown = [c for c in cases if c.photo is not None and c.truth.any()][:6]
    if not shown:
        return
    side = 192
    tiles = []
    for c in shown:
        def tile(a: np.ndarray) -> np.ndarray:
            a = a.astype(np.float32)
            if a.ndim == 2:
                a = (a - a.min()) / max(1e-6, float(a.max() - a.min())) * 255
                a = np.repeat(a[..., None], 3, 2)
            return np.asarray(Image.fromarray(a.clip(0, 255).astype(np.uint8)).resize((side, side)))
        row = [c.photo, c.truth.astype(np.float32), *[c.maps[m] for m in METHODS]]
        tiles.append(np.concatenate([tile(a) for a in row], 1))
    save_atomic(Image.fromarray(np.concatenate(tiles, 0)), path)


def run_passive(model, root: Path, columns: list[str] | None = None, seed: int = 0, limit: int | None = None,
                active: bool = True, progress: bool = True) -> tuple[list[dict[str, object]], list[Case], float]:
    """Rows of the study, the cases (for the figure) and the seconds it took."""
    t0 = time.time()
    columns = columns or COLUMNS
    bad = [c for c in columns if c not in REAL_ATTACKS]
    if bad:
        raise ValueError(f"unknown post-processing {bad[0]!r}; choose from: {', '.join(REAL_ATTACKS)}")
    for need in [root / "test" / s for s in SYNTHETIC]:
        if not need.is_dir():
            raise FileNotFoundError(f"{need}: missing (--data is the datasets root)")
    cases = synthetic_cases(root, columns, seed, limit, progress=progress)
    if (root / CASIA).is_dir():
        cases += casia_cases(root, progress=progress)
    act = active_cases(model, root, seed, limit, progress) if active else []
    return passive_table(cases, act, detector().threshold), cases, time.time() - t0
