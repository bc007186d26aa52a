"""Training of the reconstruction network (``clrnet train --config refine``).

Each sample is what ``inspect`` would hand the network: a training photo
(192 x 192 crop: the network's processing size), a crop box keeping 25-95 % of it, the kept part after a
real JPEG (quality 70-95), the payload's thumbnail at one of the channel's
capacities (the very same codec; decoding always succeeds here, since the
channel is tested on its own), painted as ``reconstruction.paint`` does. The
loss is the mean squared error over the cut-away part (PSNR is what we
report). Resumable: ``RUN_DIR/last.pt`` holds the model, optimiser, step and
random state; ``RUN_DIR/log.csv`` the losses and validation PSNR;
``RUN_DIR/best.safetensors`` the best model on ``val/``.

Sampling: with ``sampling: per_sample`` sample j of step s is drawn from its own
generator seeded (seed, s, j), so N processes (``torchrun``, each taking its
slice of the global batch of ``batch_size x N``) see exactly the samples one
process with the N-fold batch sees, and the loss is normalised by the global
cut-away area: the two train the same weights. ``sampling: stream`` (one
generator for the whole run) is how the shipped weights were made, and stays
for reproducing them; it runs in one process only.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel
from safetensors.torch import save_file
from torch import Tensor

from clrnet.core.geometry import FULL_FRAME, box_mask, sample_crop_box
from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.files.datasets import default_data_root, list_images
from clrnet.payload import codec
from clrnet.recovery.paint import paint, upsample
from clrnet.recovery.refine import PROCESS_SIDE, RefineNet, coarseness_of, load_refine
from clrnet.training.checkpoint import checkpoint, cosine, resume
from clrnet.training.data import PhotoBank
from clrnet.training.distributed import World


def budgets() -> tuple[int, ...]:
    """Thumbnail bytes of the channel's working levels 256 ... 2048 (3:2 frames)."""
    from clrnet.models.designed import Protector
    from clrnet.sync.frame import LEVELS

    p = Protector()
    return tuple(p.thumbnail_budget(lv, round(lv * 2 / 3)) for lv in LEVELS)


BUDGETS = budgets()


class RefineConfig(BaseModel):
    name: str = "refine"
    width: int = 16
    batch_size: int = 8
    steps: int = 1500
    lr: float = 3e-4
    size: int = PROCESS_SIDE
    val_every: int = 250
    val_images: int = 32
    checkpoint_every: int = 250
    seed: int = 0
    threads: int = 2
    sampling: Literal["stream", "per_sample"] = "per_sample"
    init: str | None = None  # start from these weights ("shipped": the released network), not from zero


def make_sample(img: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor, Tensor, float]:
    """(painted, base, keep, coarseness) for a photo ``img`` (3, S, S)."""
    _, s, _ = img.shape
    while True:
        box = sample_crop_box(rng, s, s, 0.25, 0.95)
        if box != FULL_FRAME:
            break
    keep = box_mask(box, s, s)[None]
    budget = int(rng.choice(BUDGETS))
    message = codec.encode_message(tensor_to_pil(img), budget)
    thumb = codec.decode_message(message, budget, frame=(s, s))
    base = upsample(pil_to_tensor(thumb)[None], s, s)[0]
    buf = io.BytesIO()
    tensor_to_pil(img).save(buf, format="JPEG", quality=int(rng.integers(70, 96)))
    received = pil_to_tensor(Image.open(buf))
    painted = paint((received * keep)[None], keep[None], base[None])[0]
    return painted, base, keep, coarseness_of(s, codec.effective_side(message, thumb))


def make_batch(imgs: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    parts = [make_sample(im, rng) for im in imgs]
    return (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]),
            torch.stack([p[2] for p in parts]), torch.tensor([p[3] for p in parts]))


def cut_mse(out: Tensor, target: Tensor, keep: Tensor, world: World | None = None) -> Tensor:
    """Mean squared error over the cut-away pixels of the whole (global) batch; with
    N processes each returns N x its share, so DDP's mean of gradients is exact."""
    cut = 1 - keep
    total = (3 * cut.sum()).clamp_min(1)
    if world is None or world.size == 1:
        return ((out - target) ** 2 * cut).sum() / total
    return ((out - target) ** 2 * cut).sum() * world.size / world.all_sum(total).clamp_min(1)


def per_sample_batch(bank: PhotoBank, cfg: RefineConfig, step: int, first: int, count: int
                     ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Samples first ... first + count - 1 of step ``step``, each from its own generator."""
    imgs, parts = [], []
    for j in range(first, first + count):
        r = np.random.default_rng([cfg.seed, step, j])
        img = bank.batch(1, r)[0]
        imgs.append(img)
        parts.append(make_sample(img, r))
    return torch.stack(imgs), (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]),
                               torch.stack([p[2] for p in parts]), torch.tensor([p[3] for p in parts]))


def validation_set(root: Path, cfg: RefineConfig) -> list[tuple[Tensor, ...]]:
    from clrnet.files.datasets import load_square

    rng = np.random.default_rng(12345)
    paths = list_images(root / "val")[:cfg.val_images]
    out = []
    for p in paths:
        img = load_square(p, cfg.size)
        painted, base, keep, c = make_sample(img, rng)
        out.append((img, painted, base, keep, torch.tensor([c])))
    return out


@torch.no_grad()
def validate(net: RefineNet, val: list[tuple[Tensor, ...]]) -> tuple[float, float]:
    """Mean cut-away PSNR of the painted frames and of the network's."""
    from clrnet.core.metrics import psnr

    a, b = [], []
    for img, painted, base, keep, c in val:
        out = net(painted[None], base[None], keep[None], c)[0]
        cut = 1 - keep[0]
        a.append(psnr(painted, img, cut))
        b.append(psnr(out, img, cut))
    return float(np.mean(a)), float(np.mean(b))


def save_refine(net: RefineNet, cfg: RefineConfig, path: Path, extra: dict[str, str] | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
              metadata={"refine_config": cfg.model_dump_json(), **(extra or {})})
    tmp.replace(path)


def train_refine(cfg: RefineConfig, run_dir: Path, data: Path | None = None, steps: int | None = None,
                 progress: bool = True, world: World | None = None) -> Path:
    """Train (or resume) the reconstruction network; with ``world`` of N processes,
    data-parallel (DDP): rank 0 validates and writes checkpoints and the log."""
    from tqdm import tqdm

    world = world or World()
    if world.size > 1 and cfg.sampling != "per_sample":
        raise ValueError(f"sampling: {cfg.sampling} runs in one process; use sampling: per_sample with torchrun")
    torch.set_num_threads(cfg.threads)
    root = Path(data) if data else default_data_root()
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = run_dir.parent / ".cache"
    if not world.main:
        world.barrier()  # rank 0 builds the photo cache first
    bank = PhotoBank([root / "train"], cfg.size, cache=cache, progress=progress and world.main)
    if world.main:
        world.barrier()
    val = validation_set(root, cfg) if world.main else []
    torch.manual_seed(cfg.seed)
    net = RefineNet(cfg.width)
    if cfg.init is not None:  # fine-tuning: a checkpoint below still takes precedence
        start = load_refine(None if cfg.init == "shipped" else cfg.init)
        if start is None:
            raise FileNotFoundError(f"init: no reconstruction weights at {cfg.init}")
        net.load_state_dict(start.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    last = run_dir / "last.pt"
    step, best, elapsed = resume(last, net, opt, rng, -1e9)
    model = torch.nn.parallel.DistributedDataParallel(net) if world.size > 1 else net
    target_steps = steps or cfg.steps
    sched = cosine(opt, cfg.steps, cfg.lr, step)
    log = run_dir / "log.csv"
    new_log = not log.is_file()
    bar = tqdm(total=target_steps, initial=step, desc="training refine", disable=not (progress and world.main))
    with open(log, "a", newline="") if world.main else open(os.devnull, "w") as fh:
        w = csv.writer(fh)
        if new_log:
            w.writerow(["step", "loss", "val_painted_psnr", "val_refined_psnr", "seconds"])
        while step < target_steps:
            t0 = time.time()
            if cfg.sampling == "per_sample":
                imgs, (painted, base, keep, c) = per_sample_batch(bank, cfg, step, world.rank * cfg.batch_size,
                                                                  cfg.batch_size)
            else:
                imgs = bank.batch(cfg.batch_size, rng)
                painted, base, keep, c = make_batch(imgs, rng)
            out = model(painted, base, keep, c)
            loss = cut_mse(out, imgs, keep, world)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            elapsed += time.time() - t0
            bar.update(1)
            vp = vr = float("nan")
            if world.main and (step % cfg.val_every == 0 or step == target_steps):
                net.eval()
                vp, vr = validate(net, val)
                net.train()
                if vr > best:
                    best = vr
                    save_refine(net, cfg, run_dir / "best.safetensors", {"step": str(step), "val_psnr": f"{vr:.3f}"})
            if world.main:
                w.writerow([step, f"{loss.item():.6f}", f"{vp:.3f}", f"{vr:.3f}", f"{elapsed:.1f}"])
                fh.flush()
            if world.main and (step % cfg.checkpoint_every == 0 or step == target_steps):
                checkpoint(last, net, opt, step, best, elapsed, rng, processes=world.size)
    bar.close()
    if world.main:
        save_refine(net, cfg, run_dir / "last.safetensors", {"step": str(step), "processes": str(world.size)})
    world.barrier()
    return run_dir / "best.safetensors"
