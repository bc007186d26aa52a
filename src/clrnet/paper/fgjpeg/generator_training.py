"""Training FG-JPEG's generator and controller on pairs (photo region, its real Pillow JPEG at a
random quality): ``clrnet train --config fg-jpeg`` (resumable; ``RUN_DIR/last.pt``, and
``best.safetensors`` at the best validation PSNR against the real JPEGs).

The loss is Eq. (10): L1 to the real JPEG plus ``epsilon`` x the shipped QF predictor's
cross-entropy on the output's tiles (the target spread over the two classes around a quality
between classes). The AWGN trick: half of the inputs carry Gaussian noise the target does not,
so the simulation also removes high-band detail it was not shown in the photo, as a protected
image's perturbation is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from clrnet.files.datasets import load_rgb
from clrnet.paper.attacks.functional import round_8bit
from clrnet.paper.fgjpeg.data import encode
from clrnet.paper.fgjpeg.generator import Base, Generator
from clrnet.paper.fgjpeg.predictor import QFS, TILE, QFPredictor
from clrnet.training.checkpoint import checkpoint, cosine, resumable_loader, resume, save_weights
from clrnet.training.runlog import RunLog, ema, start_run

VAL_QUALITIES = (10, 30, 50, 70, 80, 90)


class FGConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt setting is an error, not a default

    name: str = "fg-jpeg"
    base: Base = "codec"
    widths: tuple[int, int, int, int] = (24, 48, 72, 96)
    predictor: str = "qf-predictor"  # shipped name or a .safetensors path
    epsilon: float = 0.002  # weight of the predictor's cross-entropy (Eq. 10)
    noise: float = 0.25  # share of inputs with AWGN (the paper's trick)
    noise_sigma: float = 0.02  # its largest standard deviation, in [0, 1] units
    crop: int = 128
    quality: tuple[int, int] = (10, 100)
    batch_size: int = 8
    steps: int = 3000
    lr: float = 2e-4
    val_every: int = 250
    val_photos: int = 24
    checkpoint_every: int = 50
    seed: int = 0
    threads: int = 2
    workers: int = 1


def soft_target(quality: Tensor) -> Tensor:
    """(B, len(QFS)): a quality between two classes spread linearly over both."""
    qs = torch.tensor(QFS, dtype=torch.float32)
    q = quality.float().clamp(QFS[0], QFS[-1])
    hi = torch.searchsorted(qs, q).clamp(1, len(QFS) - 1)
    lo = hi - 1
    w = ((q - qs[lo]) / (qs[hi] - qs[lo])).clamp(0, 1)
    t = torch.zeros(len(q), len(QFS))
    t[torch.arange(len(q)), lo] = 1 - w
    t[torch.arange(len(q)), hi] += w
    return t



def make_pair(photo: np.ndarray, rng: np.random.Generator, quality: int, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """(region, its Pillow JPEG at ``quality``, 4:2:0): a ``crop`` square of ``photo``, downscaled
    first half of the time."""
    h, w = photo.shape[:2]
    if rng.random() < 0.5 or min(h, w) < crop:
        s = float(rng.uniform(0.5, 1.0)) if min(h, w) >= crop else 1.0
        s = max(s, crop / min(h, w))
        photo = np.asarray(Image.fromarray(photo).resize((max(crop, round(w * s)), max(crop, round(h * s))),
                                                         Image.Resampling.LANCZOS))
        h, w = photo.shape[:2]
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    region = np.ascontiguousarray(photo[y:y + crop, x:x + crop])
    return region, encode(region, quality)


class Pairs(torch.utils.data.Dataset):
    """Pair ``i`` of the run, seeded by (seed, salt, i): input (with AWGN or not), target, quality."""

    def __init__(self, photos: list[np.ndarray], cfg: FGConfig, salt: int = 0,
                 qualities: tuple[int, ...] | None = None) -> None:
        self.photos, self.cfg, self.salt, self.qualities = photos, cfg, salt, qualities

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        rng = np.random.default_rng([self.cfg.seed, self.salt, i])
        if self.qualities:
            photo, q = self.photos[(i // len(self.qualities)) % len(self.photos)], self.qualities[i % len(self.qualities)]
        else:
            photo = self.photos[int(rng.integers(len(self.photos)))]
            q = int(rng.integers(self.cfg.quality[0], self.cfg.quality[1] + 1))
        region, target = make_pair(photo, rng, q, self.cfg.crop)
        x = torch.from_numpy(region.copy()).permute(2, 0, 1).float() / 255
        if not self.qualities and rng.random() < self.cfg.noise:
            sigma = float(rng.uniform(0, self.cfg.noise_sigma))
            g = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
            x = (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)
        y = torch.from_numpy(target.copy()).permute(2, 0, 1).float() / 255
        return x, y, torch.tensor(float(q))


def predictor_loss(predictor: QFPredictor, out: Tensor, quality: Tensor) -> Tensor:
    """The predictor's cross-entropy on the centre tile of each output (one tile: the predictor
    costs as much as the generator per tile)."""
    h, w = out.shape[-2:]
    y, x = max(0, (h - TILE) // 2), max(0, (w - TILE) // 2)
    logits = predictor(out[:, :, y:y + TILE, x:x + TILE].clamp(0, 1))
    return -(soft_target(quality) * F.log_softmax(logits, 1)).sum(1).mean()


def _psnr(a: Tensor, b: Tensor) -> Tensor:
    mse = ((a - b) ** 2).mean((1, 2, 3)).clamp_min(1e-12)
    return -10 * torch.log10(mse)


@torch.no_grad()
def validate(net: Generator, cases: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[float, float]:
    """(mean PSNR of the 8-bit simulation against the real JPEG, the same for kornia's Diff-JPEG)."""
    from kornia.enhance import jpeg_codec_differentiable

    net.eval()
    ours, diff = [], []
    for k in range(0, len(cases), 16):
        x = torch.stack([c[0] for c in cases[k:k + 16]])
        y = torch.stack([c[1] for c in cases[k:k + 16]])
        q = torch.stack([c[2] for c in cases[k:k + 16]])
        ours.append(_psnr(round_8bit(net(x, q)), y))
        diff.append(_psnr(round_8bit(jpeg_codec_differentiable(x, q)), y))
    net.train()
    return float(torch.cat(ours).mean()), float(torch.cat(diff).mean())


def save_generator(net: Generator, cfg: FGConfig, path: Path, extra: dict[str, str]) -> None:
    save_weights(net, path, {"fg_config": cfg.model_dump_json(), **extra})


def _predictor(name: str) -> QFPredictor:
    from clrnet.paper.fgjpeg.weights import load_predictor, shipped

    net = load_predictor(shipped(name))
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def train_generator(cfg: FGConfig, run_dir: Path, data: Path | None = None, steps: int | None = None,
                    progress: bool = True) -> dict[str, float]:
    train_paths, val_paths = start_run(cfg.seed, cfg.threads, run_dir, data, cfg.val_photos)
    net = Generator(cfg.widths, cfg.base)
    predictor = _predictor(cfg.predictor)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    step, best, elapsed = resume(run_dir / "last.pt", net, opt, rng, -1.0)
    total = steps or cfg.steps
    sched = cosine(opt, cfg.steps, cfg.lr, step)
    vset = Pairs(load_rgb(val_paths), cfg, salt=1, qualities=VAL_QUALITIES)
    cases = [vset[i] for i in range(len(VAL_QUALITIES) * len(val_paths))]
    loader = resumable_loader(Pairs(load_rgb(train_paths), cfg), cfg.batch_size, cfg.workers, step, total)
    result: dict[str, float] = {"best": best}
    net.train()
    columns = ["step", "l1", "ce", "val_psnr", "val_psnr_diff_jpeg", "seconds"]
    with RunLog(run_dir, columns, total, step, "fg-jpeg", progress, elapsed) as log:
        l1_run = ce_run = 0.0
        for x, y, q in loader:
            out = net(x, q)
            l1 = (out - y).abs().mean()
            ce = predictor_loss(predictor, out, q)
            loss = l1 + cfg.epsilon * ce
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            l1_run, ce_run = ema(l1_run, l1.item()), ema(ce_run, ce.item())
            log.tick(l1=f"{l1_run * 255:.2f}/255", ce=f"{ce_run:.3f}")
            if step % cfg.val_every == 0 or step == total:
                ours, diff = validate(net, cases)
                log.write([step, f"{l1_run:.5f}", f"{ce_run:.4f}", f"{ours:.3f}", f"{diff:.3f}", f"{log.seconds():.0f}"])
                if ours > best:
                    best = ours
                    save_generator(net, cfg, run_dir / "best.safetensors", {"step": str(step), "val_psnr": f"{ours:.3f}"})
                result = {"best": best, "val_psnr": ours, "val_psnr_diff_jpeg": diff}
            if step % cfg.checkpoint_every == 0 or step == total:
                checkpoint(run_dir / "last.pt", net, opt, step, best, log.seconds(), rng)
            if step >= total:
                break
    return result
