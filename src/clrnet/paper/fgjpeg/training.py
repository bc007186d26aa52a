"""Training the QF predictor on real Pillow JPEGs of ``train/`` photos:
``clrnet train --config qf-predictor`` (resumable; ``RUN_DIR/last.pt`` every
``checkpoint_every`` steps, ``best.safetensors`` at the best validation accuracy).

A sample: a random region of a random photo (downscaled first half of the time, as photos
usually are before they are sent), encoded at one of ``QFS`` (chroma 4:2:0, a quarter of the
time 4:4:4), decoded, and a ``tile`` square cut at a random offset (so the 8 x 8 grid falls
anywhere). Validation: 4 seeded samples of each val photo per class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clrnet.files.datasets import load_rgb
from clrnet.paper.fgjpeg.data import QFConfig, make_sample
from clrnet.paper.fgjpeg.predictor import QFS, QFPredictor
from clrnet.training.checkpoint import checkpoint, cosine, resumable_loader, resume, save_weights
from clrnet.training.runlog import RunLog, ema, start_run


class Samples(torch.utils.data.Dataset):
    """Sample ``i`` of the run (seeded by (seed, salt, i)); its class is ``i`` mod 6."""

    def __init__(self, photos: list[np.ndarray], cfg: QFConfig, salt: int = 0) -> None:
        self.photos, self.cfg, self.salt = photos, cfg, salt

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng([self.cfg.seed, self.salt, i])
        label = i % len(QFS)
        photo = self.photos[int(rng.integers(len(self.photos)))]
        x = make_sample(photo, rng, label, self.cfg.tile, self.cfg.gray, self.cfg.double)
        return torch.from_numpy(x.copy()).permute(2, 0, 1), label


@torch.no_grad()
def accuracy(net: QFPredictor, cases: list[tuple[torch.Tensor, int]]) -> float:
    net.eval()
    right = 0
    for k in range(0, len(cases), 64):
        xs = torch.stack([c[0] for c in cases[k:k + 64]]).float() / 255
        ys = torch.tensor([c[1] for c in cases[k:k + 64]])
        right += int((net(xs).argmax(1) == ys).sum())
    net.train()
    return right / len(cases)


def save_predictor(net: QFPredictor, cfg: QFConfig, path: Path, extra: dict[str, str]) -> None:
    save_weights(net, path, {"qf_config": cfg.model_dump_json(), "qfs": json.dumps(QFS), **extra})


def train_predictor(cfg: QFConfig, run_dir: Path, data: Path | None = None, steps: int | None = None,
                    progress: bool = True) -> dict[str, float]:
    train_paths, val_paths = start_run(cfg.seed, cfg.threads, run_dir, data, cfg.val_photos)
    net = QFPredictor(cfg.blocks)
    if cfg.init:
        from safetensors.torch import load_file

        from clrnet.paper.fgjpeg.weights import shipped

        try:
            net.load_state_dict(load_file(shipped(cfg.init)))
        except (OSError, RuntimeError) as e:
            raise ValueError(f"init {cfg.init!r}: not QF predictor weights of this network ({e})") from None
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    step, best, elapsed = resume(run_dir / "last.pt", net, opt, rng, -1.0)
    total = steps or cfg.steps
    sched = cosine(opt, cfg.steps, cfg.lr, step)
    vset = Samples(load_rgb(val_paths), cfg, salt=1)
    cases = [vset[i] for i in range(4 * len(QFS) * len(val_paths))]
    loader = resumable_loader(Samples(load_rgb(train_paths), cfg), cfg.batch_size, cfg.workers, step, total)
    result: dict[str, float] = {"best": best}
    net.train()
    with RunLog(run_dir, ["step", "loss", "val_accuracy", "seconds"], total, step, "qf-predictor", progress,
                elapsed) as log:
        running = 0.0
        for x, y in loader:
            loss = F.cross_entropy(net(x.float() / 255), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running = ema(running, loss.item())
            log.tick(loss=f"{running:.3f}")
            if step % cfg.val_every == 0 or step == total:
                acc = accuracy(net, cases)
                log.write([step, f"{running:.4f}", f"{acc:.4f}", f"{log.seconds():.0f}"])
                if acc > best:
                    best = acc
                    save_predictor(net, cfg, run_dir / "best.safetensors", {"step": str(step), "val_accuracy": f"{acc:.4f}"})
                result = {"best": best, "val_accuracy": acc}
            if step % cfg.checkpoint_every == 0 or step == total:
                checkpoint(run_dir / "last.pt", net, opt, step, best, log.seconds(), rng)
            if step >= total:
                break
    return result
