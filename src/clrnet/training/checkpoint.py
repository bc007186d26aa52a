"""What a resumable training run keeps between sessions: ``RUN_DIR/last.pt``.

The network, the optimiser, the step, the best validation score so far, the seconds spent
in steps and the sampler's random state, written atomically, so a session that ends
abruptly loses at most the steps since the last checkpoint. Shared by the small trainers
(``reconstruction.train_refine``, ``tamper.train_segment``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def resume(last: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator,
           best: float) -> tuple[int, float, float]:
    """(step, best, elapsed) of the checkpoint ``last`` loaded into ``net``, ``opt`` and ``rng``,
    or (0, ``best``, 0.0) when there is none yet."""
    if not last.is_file():
        return 0, best, 0.0
    ck = torch.load(last, weights_only=False)
    net.load_state_dict(ck["net"])
    opt.load_state_dict(ck["opt"])
    rng.bit_generator.state = ck["rng"]
    return ck["step"], ck["best"], ck.get("elapsed", 0.0)


def cosine(opt: torch.optim.Optimizer, total: int, lr: float, step: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The cosine schedule from ``lr`` to ``lr / 20`` over ``total`` steps, at ``step``."""
    sched = torch.optim.lr_scheduler.CosineAnnealingLR
    return sched(opt, total, eta_min=lr / 20, last_epoch=step - 1) if step else sched(opt, total, eta_min=lr / 20)


def checkpoint(last: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, step: int, best: float,
               elapsed: float, rng: np.random.Generator, **extra: object) -> None:
    """Write ``last`` atomically (a temporary file, then renamed)."""
    tmp = last.with_name(last.name + ".tmp")
    torch.save(dict(net=net.state_dict(), opt=opt.state_dict(), step=step, best=best, elapsed=elapsed,
                    rng=rng.bit_generator.state, **extra), tmp)
    tmp.replace(last)


def resumable_loader(dataset: torch.utils.data.Dataset, batch_size: int, workers: int, step: int,
                     total: int) -> torch.utils.data.DataLoader:
    """Batches ``step`` to ``total`` of a dataset whose sample ``i`` depends on ``i`` alone, so a
    resumed run sees exactly the batches an unbroken one would."""
    live = step < total
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers if live else 0,
                                       sampler=range(step * batch_size, total * batch_size),
                                       persistent_workers=workers > 0 and live)


def save_weights(net: torch.nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """``net``'s weights as safetensors at ``path`` with ``metadata``, written atomically."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp), metadata=metadata)
    tmp.replace(path)
