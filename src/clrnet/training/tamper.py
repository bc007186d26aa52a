"""Training of the tamper network (``clrnet train --config tamper``).

Two phases, both resumable. First the evidence is collected: a training photo (256 x 256, or
its own size for a share of the samples) is protected, edited as ``clrnet eval --tamper``
edits (the same operations, masks and rates; a share left unedited: the false alarms),
attacked by one of the evaluation's attacks and inspected; the features the decoder read
(``segment.evidence``) and the true edited share of every block are written in shards to
``RUN_DIR/samples`` (a shard that exists is not made again). Then the network is fitted:
binary cross-entropy against the true share, batches of one frame shape; every
``val_every`` steps the threshold is chosen on the validation photos' cases, the one of best
mean F1 of the edited cases' block masks among those that call at most ``max_false_alarms``
of the unedited cases edited; it, that F1 and those false alarms are logged to
``RUN_DIR/log.csv``, and the step of the best such F1 is kept, with its threshold, as
``RUN_DIR/best.safetensors`` (a step that cannot stay within the budget only while none can).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel
from safetensors.torch import save_file

from clrnet.attacks.edits import EDITS, MASK_KINDS, apply_edit, make_mask
from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.files.datasets import default_data_root, list_images
from clrnet.tamper.localize import regions
from clrnet.tamper.segment import MIN_AREA, N_FEATURES, TamperNet, block_truth
from clrnet.training.checkpoint import checkpoint, cosine, resume

ATTACKS = ("none", "jpeg90", "jpeg80", "jpeg70", "jpeg50", "scale150", "scale70", "scale50", "gaussian", "median",
           "noise", "dropout")


class TamperConfig(BaseModel):
    name: str = "tamper"
    width: int = 16
    features: int = N_FEATURES  # the first ones of segment.evidence the network reads
    samples: int = 3000  # training cases collected from train/
    val_samples: int = 400  # validation cases from val/
    shard: int = 50
    native_share: float = 0.25  # cases at the photo's own size (else 256 x 256)
    unedited_share: float = 0.25
    rate: tuple[float, float] = (0.05, 0.40)
    # how often each of ATTACKS is drawn, relative to 1 (an attack not named: 1); none: all alike
    attack_weights: dict[str, float] | None = None
    # weight of the case-level term: the most edited-looking neighbourhood (5 x 5 blocks) of a
    # case against whether the case was edited at all: what a false alarm costs a user
    case_weight: float = 0.0
    batch_size: int = 16
    steps: int = 4000
    lr: float = 1e-3
    val_every: int = 250
    checkpoint_every: int = 250
    max_false_alarms: float = 0.02
    seed: int = 0
    threads: int = 2
    workers: int = 2  # processes collecting the evidence


def _case(paths: list[Path], k: int, seed: int, cfg: TamperConfig):
    """Case ``k``: (photo, donor, edit or "none", mask kind, rate, attack, rng), all drawn from (seed, k)."""
    from clrnet.files.datasets import bring_to

    rng = np.random.default_rng([seed, k])
    size = "native" if rng.random() < cfg.native_share else "256"
    photo = bring_to(Image.open(paths[int(rng.integers(len(paths)))]).convert("RGB"), size)
    donor = Image.open(paths[int(rng.integers(len(paths)))]).convert("RGB").resize(photo.size)
    edit = "none" if rng.random() < cfg.unedited_share else EDITS[int(rng.integers(len(EDITS)))]
    kind = MASK_KINDS[int(rng.integers(len(MASK_KINDS)))]
    rate = float(rng.uniform(*cfg.rate))
    if cfg.attack_weights is None:
        attack = ATTACKS[int(rng.integers(len(ATTACKS)))]
    else:
        p = np.array([cfg.attack_weights.get(a, 1.0) for a in ATTACKS], float)
        attack = ATTACKS[int(rng.choice(len(ATTACKS), p=p / p.sum()))]
    return photo, donor, edit, kind, rate, attack, rng


def collect(cfg: TamperConfig, folder: Path, out: Path, n: int, seed: int, progress: bool = True) -> None:
    """Cases 0 .. n - 1 of ``folder``'s photos as shards ``out/NNNN.pt`` of ``cfg.shard`` cases
    (``cfg.workers`` processes, each shard made by one of them, so the shards do not depend on
    how many); each shard a list of (features float16, truth float16, edited: bool), cases
    where no protection was read left out."""
    import multiprocessing as mp

    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    if not list_images(folder):
        raise FileNotFoundError(f"{folder}: no photos")
    todo = [(s, s * cfg.shard, min(n, (s + 1) * cfg.shard)) for s in range((n + cfg.shard - 1) // cfg.shard)]
    todo = [t for t in todo if not (out / f"{t[0]:04d}.pt").is_file()]
    jobs = [(cfg, folder, out, s, lo, hi, seed) for s, lo, hi in todo]
    bar = tqdm(total=n, initial=n - sum(hi - lo for _, lo, hi in todo), desc=f"collecting {out.name}",
               disable=not progress)
    if cfg.workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(cfg.workers) as pool:
            for done in pool.imap_unordered(_collect_shard, jobs):
                bar.update(done)
    else:
        for job in jobs:
            bar.update(_collect_shard(job))
    bar.close()


def _collect_shard(job: tuple) -> int:
    """One shard of :func:`collect`, written atomically; the number of cases it covers."""
    from clrnet.attacks.real import REAL_ATTACKS
    from clrnet.models.designed import Protector
    from clrnet.protection.config import ProtectionConfig

    cfg, folder, out, s, lo, hi, seed = job
    torch.set_num_threads(1 if cfg.workers > 1 else cfg.threads)
    paths = list_images(folder)
    # the evidence does not depend on the recovery, nor on what lies beneath the protection read
    model = Protector(ProtectionConfig(tamper_net=False, refine=False, border=False, consistent=False,
                                       thorough=False))
    cases = []
    for k in range(lo, hi):
        photo, donor, edit, kind, rate, attack, rng = _case(paths, k, seed, cfg)
        protected = np.asarray(tensor_to_pil(model.protect(pil_to_tensor(photo))))
        h, w = protected.shape[:2]
        mask = make_mask(kind, rng, h, w, rate) if edit != "none" else np.zeros((h, w), bool)
        edited = apply_edit(edit, protected, mask, rng, np.asarray(donor)) if edit != "none" else protected
        received = REAL_ATTACKS[attack](Image.fromarray(edited), int(rng.integers(1 << 30)))
        d = model.inspect(pil_to_tensor(received)).decoded
        if d is not None and d.evidence is not None:
            truth = block_truth(torch.from_numpy(mask), d.evidence)
            cases.append((d.evidence.features.half(), truth.half(), edit != "none"))
    path = out / f"{s:04d}.pt"
    tmp = path.with_name(path.name + ".tmp")
    torch.save(cases, tmp)
    tmp.replace(path)
    return hi - lo


def case_logit(logits: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) block logits -> (B,): the highest mean logit over 5 x 5 blocks (an edit
    smaller than that is dropped as a region anyway), the case's "edited at all"."""
    return F.avg_pool2d(logits, 5, stride=1, padding=2, count_include_pad=False).amax((1, 2, 3))


def _load(folder: Path) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    return [c for p in sorted(folder.glob("*.pt")) for c in torch.load(p, weights_only=False)]


def block_f1(prob: torch.Tensor, truth: torch.Tensor, t: float) -> float:
    pred, true = prob > t, truth > 0.5
    tp = float((pred & true).sum())
    denom = float(pred.sum() + true.sum())
    return 2 * tp / denom if denom else 1.0


@torch.no_grad()
def probabilities(net: TamperNet, cases: list) -> list[torch.Tensor]:
    return [torch.sigmoid(net(f.float()[None])[0, 0]) for f, _, _ in cases]


def scores(probs: list[torch.Tensor], cases: list, t: float) -> tuple[float, float]:
    """Mean F1 of the edited cases' block masks and the share of unedited cases called edited, as
    the protector calls them: blocks over ``t``, regions under ``MIN_AREA`` dropped."""
    masks = [regions(p > t, MIN_AREA) for p in probs]
    f1 = [block_f1(m.float(), c[1].float(), 0.5) for m, c in zip(masks, cases) if c[2]]
    fa = [float(bool(m.any())) for m, c in zip(masks, cases) if not c[2]]
    return float(np.mean(f1)) if f1 else float("nan"), float(np.mean(fa)) if fa else float("nan")


def choose_threshold(probs: list[torch.Tensor], cases: list, max_fa: float) -> tuple[float, float, float]:
    """(threshold, F1, false alarms): the best mean F1 among thresholds whose false alarms stay
    within ``max_fa``; if none does, the one of fewest false alarms."""
    rows = [(t, *scores(probs, cases, t)) for t in np.arange(0.10, 0.96, 0.05)]
    ok = [r for r in rows if r[2] <= max_fa]
    return max(ok, key=lambda r: r[1]) if ok else min(rows, key=lambda r: (r[2], -r[1]))


def save_tamper(net: TamperNet, cfg: TamperConfig, path: Path, threshold: float, extra: dict[str, str]) -> None:
    meta = {"width": cfg.width, "features": cfg.features, "threshold": round(threshold, 3)}
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
              metadata={"tamper_config": json.dumps(meta), "train_config": cfg.model_dump_json(), **extra})
    tmp.replace(path)


def train_tamper(cfg: TamperConfig, run_dir: Path, data: Path | None = None, steps: int | None = None,
                 progress: bool = True) -> Path:
    """Collect (or finish collecting) the evidence, then train (or resume) the network."""
    from tqdm import tqdm

    torch.set_num_threads(cfg.threads)
    root = Path(data) if data else default_data_root()
    collect(cfg, root / "train", run_dir / "samples" / "train", cfg.samples, cfg.seed, progress)
    collect(cfg, root / "val", run_dir / "samples" / "val", cfg.val_samples, cfg.seed + 1000, progress)
    train, val = _load(run_dir / "samples" / "train"), _load(run_dir / "samples" / "val")
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, (f, _, _) in enumerate(train):
        by_shape.setdefault(tuple(f.shape[-2:]), []).append(i)
    shapes = list(by_shape)
    weights = np.array([len(by_shape[s]) for s in shapes], float)
    torch.manual_seed(cfg.seed)
    net = TamperNet(cfg.width, cfg.features)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    last = run_dir / "last.pt"
    step, best, elapsed = resume(last, net, opt, rng, -2.0)
    target = steps or cfg.steps
    sched = cosine(opt, cfg.steps, cfg.lr, step)
    log = run_dir / "log.csv"
    new_log = not log.is_file()
    bar = tqdm(total=target, initial=step, desc="training tamper", disable=not progress)
    with open(log, "a", newline="") as fh:
        w = csv.writer(fh)
        if new_log:
            w.writerow(["step", "loss", "val_threshold", "val_f1", "val_false_alarms", "seconds"])
        while step < target:
            t0 = time.time()
            shape = shapes[int(rng.choice(len(shapes), p=weights / weights.sum()))]
            idx = rng.choice(by_shape[shape], size=min(cfg.batch_size, len(by_shape[shape])), replace=False)
            x = torch.stack([train[i][0].float() for i in idx])
            y = torch.stack([train[i][1].float() for i in idx])[:, None]
            if rng.random() < 0.5:  # the evidence has no preferred direction
                x, y = x.flip(-1), y.flip(-1)
            logits = net(x)
            loss = F.binary_cross_entropy_with_logits(logits, y)
            if cfg.case_weight:
                edited = torch.tensor([float(train[i][2]) for i in idx])
                loss = loss + cfg.case_weight * F.binary_cross_entropy_with_logits(case_logit(logits), edited)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            elapsed += time.time() - t0
            bar.update(1)
            vt = vf = vfa = float("nan")
            if step % cfg.val_every == 0 or step == target:
                net.eval()
                vt, vf, vfa = choose_threshold(probabilities(net, val), val, cfg.max_false_alarms)
                net.train()
                score = vf if vfa <= cfg.max_false_alarms else vf - 1  # within the budget first
                if score > best:
                    best = score
                    save_tamper(net, cfg, run_dir / "best.safetensors", vt,
                                {"step": str(step), "val_f1": f"{vf:.4f}", "val_false_alarms": f"{vfa:.4f}"})
            w.writerow([step, f"{loss.item():.5f}", f"{vt:.2f}", f"{vf:.4f}", f"{vfa:.4f}", f"{elapsed:.1f}"])
            fh.flush()
            if step % cfg.checkpoint_every == 0 or step == target:
                checkpoint(last, net, opt, step, best, elapsed, rng)
    bar.close()
    return run_dir / "best.safetensors"
