"""Training CLR-Net on a CPU: one ``Trainer`` with resumable checkpoints, a CSV
log of losses and validation metrics, and the paper's training mechanisms
(task decomposition, Siamese consistency, detached attacks, tamper
augmentation, PatchGAN discriminators), each switchable from the config."""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from clrnet.core.geometry import FULL_FRAME, Box, box_iou, box_mask, sample_crop_box, shift_to_box, soft_box_mask
from clrnet.files.datasets import default_data_root, list_images, load_square
from clrnet.paper.attacks import AttackLayer, draw_attack
from clrnet.paper.attacks.functional import quantize
from clrnet.paper.augment import tamper_augment
from clrnet.paper.config import ModelConfig, dump_config
from clrnet.paper.model import CLRNet
from clrnet.paper.networks import Localizer, PatchDiscriminator, coordinate_targets, lsgan_loss
from clrnet.training.data import PhotoBank
from clrnet.training.distributed import World


@dataclass
class StepResult:
    losses: dict[str, float]
    stage: int


@dataclass
class TrainState:
    step: int = 0
    stage: int = 1
    protect_weight: float = 1.0
    loc_ema: float = math.inf
    best_val: float = -math.inf
    history: list[dict] = field(default_factory=list)


def _box_list(t: Tensor) -> list[Box]:
    return [tuple(float(v) for v in row) for row in t.detach()]  # type: ignore[misc]


def _mean_iou(pred: Tensor, true: Tensor) -> float:
    return float(np.mean([box_iou(tuple(p.tolist()), tuple(t.tolist())) for p, t in zip(pred.detach(), true)]))


LOG_FIELDS = ["step", "stage", "total", "prt", "rec", "loc", "cons", "adv_a", "adv_b", "d", "psnr",
              "pw", "dense", "iou", "images_per_s", "val_psnr", "val_acc", "val_iou", "val_cut_psnr",
              "val_score"]


class Trainer:
    def __init__(self, cfg: ModelConfig, run_dir: str | Path, data_root: str | Path | None = None,
                 progress: bool = True, world: World | None = None) -> None:
        """With a ``world`` of N processes (torchrun), each draws its own photos, crops and
        attacks (rank 0 the one-process stream), gradients and the controllers' statistics
        are averaged, and rank 0 alone validates, logs and writes checkpoints."""
        self.world = world or World()
        self.cfg, self.progress = cfg, progress and self.world.main
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        rank = self.world.rank
        self.rng = np.random.default_rng(cfg.train.seed if rank == 0 else [cfg.train.seed, rank])
        self.gen = torch.Generator().manual_seed(cfg.train.seed + 7919 * rank)
        self.model = CLRNet(cfg)
        self.attack = AttackLayer(cfg.attack, cfg.size)
        self.d_a = PatchDiscriminator(cfg.discriminator) if cfg.discriminator.enabled else None
        self.d_b = PatchDiscriminator(cfg.discriminator) if cfg.discriminator.enabled else None
        loc_params = list(self.model.localizer.parameters())
        loc_ids = {id(p) for p in loc_params}
        self.opt = torch.optim.Adam([
            {"params": [p for p in self.model.parameters() if id(p) not in loc_ids], "lr_scale": 1.0},
            {"params": loc_params, "lr_scale": cfg.train.localizer_lr_scale},
        ], lr=cfg.train.lr)
        d_params = [p for d in (self.d_a, self.d_b) if d is not None for p in d.parameters()]
        self.opt_d = torch.optim.Adam(d_params, lr=cfg.train.lr) if d_params else None
        self.state = TrainState(protect_weight=cfg.loss.protect_weight)
        root = Path(data_root) if data_root else default_data_root()
        self.data_root = root
        if not self.world.main:
            self.world.barrier()  # rank 0 builds the photo cache first
        self.bank = PhotoBank([root / "train"], cfg.size, cache=Path(".cache"), progress=self.progress)
        if self.world.main:
            self.world.barrier()
        val_paths = list_images(root / "val")[: cfg.train.val_images] if self.world.main else []
        self.val_images = torch.stack([load_square(p, cfg.size) for p in val_paths]) if val_paths else None
        if self.world.main:
            (self.run_dir / "config.yaml").write_text(dump_config(cfg))
        self._resume()
        for net in (self.model, self.d_a, self.d_b):
            if net is not None:
                self.world.broadcast_(net)

    # -- checkpoints -------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "last.pt"

    def save_checkpoint(self) -> None:
        blob = {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "d_a": self.d_a.state_dict() if self.d_a else None,
            "d_b": self.d_b.state_dict() if self.d_b else None,
            "opt_d": self.opt_d.state_dict() if self.opt_d else None,
            "state": self.state.__dict__,
            "rng": self.rng.bit_generator.state,
            "gen": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        tmp = self.ckpt_path.with_suffix(".tmp")
        torch.save(blob, tmp)
        tmp.replace(self.ckpt_path)

    def _resume(self) -> None:
        if not self.ckpt_path.is_file():
            return
        blob = torch.load(self.ckpt_path, weights_only=False)
        self.model.load_state_dict(blob["model"])
        self.opt.load_state_dict(blob["opt"])
        if self.d_a is not None and blob["d_a"] is not None:
            self.d_a.load_state_dict(blob["d_a"])
            self.d_b.load_state_dict(blob["d_b"])  # type: ignore[union-attr]
            self.opt_d.load_state_dict(blob["opt_d"])  # type: ignore[union-attr]
        self.state = TrainState(**blob["state"])
        if self.world.rank == 0:
            self.rng.bit_generator.state = blob["rng"]
            self.gen.set_state(blob["gen"])
            torch.set_rng_state(blob["torch_rng"])
        else:  # rank 0's streams are in the checkpoint; the others start afresh from the step
            seed, rank, step = self.cfg.train.seed, self.world.rank, self.state.step
            self.rng = np.random.default_rng([seed, rank, step])
            self.gen = torch.Generator().manual_seed(seed + 7919 * rank + 104729 * step)

    # -- one optimisation step ----------------------------------------------
    def _lr(self) -> float:
        t = self.cfg.train
        return t.lr * t.lr_decay ** sum(self.state.step >= s for s in t.lr_decay_steps)

    def _draw_boxes(self, n: int) -> tuple[list[Box], Tensor]:
        a, size = self.cfg.attack, self.cfg.size
        boxes, cropped = [], []
        for _ in range(n):
            if self.rng.random() < a.uncropped_fraction:
                boxes.append(FULL_FRAME)
            else:
                boxes.append(sample_crop_box(self.rng, size, size, a.min_area, a.max_area, a.max_aspect))
            cropped.append(float(boxes[-1] != FULL_FRAME))
        return boxes, torch.tensor(cropped)

    def train_step(self) -> StepResult:
        cfg, st, m = self.cfg, self.state, self.model
        size, bsz = cfg.size, cfg.train.batch_size
        for g in self.opt.param_groups:
            g["lr"] = self._lr() * g["lr_scale"]
        m.train()
        images = self.bank.batch(bsz, self.rng)
        if cfg.train.tamper_rate > 0:
            images = tamper_augment(images, self.rng, cfg.train.tamper_rate)
        # The position code and the thumbnail hint are fixed, budgeted parts of the
        # perturbation: L_prt constrains the learned part only, so G is not pushed to cancel them.
        protected, learned = m.generator.forward_parts(images)
        protected_q = quantize(protected)
        l_prt = (learned - images).abs().mean()

        boxes, cropped = self._draw_boxes(bsz)
        masks = torch.stack([box_mask(b, size, size) for b in boxes])[:, None]
        box_t = torch.tensor(boxes, dtype=torch.float32)
        siamese = cfg.preprocessor.enabled and cfg.preprocessor.siamese
        views = 2 if siamese else 1
        outs = []
        for v in range(views):
            # Stage 1 trains the main stream without post-processing attacks (crop only).
            teacher_clean = v == 0 and st.stage == 1
            draws = [draw_attack(self.rng, cfg.attack, "identity" if teacher_clean else None)
                     for _ in range(bsz)]
            # In stage 1 the student view sees a detached input: it learns, G is not pushed by it.
            src = protected_q.detach() if (siamese and v == 1 and st.stage == 1) else protected_q
            received = self.attack(src, boxes, draws, self.gen)
            processed, feats = m.preprocess(received)
            if isinstance(m.localizer, Localizer):
                pboxes, logits, cmap = m.localizer.forward_dense(processed)
                soft = soft_box_mask(pboxes, size, size).clamp(1e-6, 1 - 1e-6)
                l_loc = (F.binary_cross_entropy(soft, masks)
                         + cfg.loss.box_l1 * (pboxes - box_t).abs().mean()
                         + cfg.loss.score * F.binary_cross_entropy_with_logits(logits, cropped))
                l_dense = (cmap - coordinate_targets(box_t, *cmap.shape[-2:])).abs().mean()
                if cfg.localizer.dense_weight > 0:
                    l_loc = l_loc + cfg.localizer.dense_weight * l_dense
            else:  # the matched-filter readout has nothing to learn
                with torch.no_grad():
                    pboxes, logits = m.localizer(processed)
                soft = soft_box_mask(pboxes, size, size)
                l_loc = l_dense = torch.zeros(())
            if st.stage == 1:
                used, target = boxes, images
            else:
                used = _box_list(pboxes)
                target = images
                if cfg.train.shift_target:
                    target = torch.cat([shift_to_box(images[i:i + 1], boxes[i], used[i])
                                        for i in range(bsz)])
            recovered = m.recover(processed, used)
            l_rec = (recovered - target).abs().mean()
            outs.append(dict(l_loc=l_loc, l_rec=l_rec, l_dense=l_dense, iou=_mean_iou(pboxes, box_t),
                             rec=recovered, soft=soft, feats=feats, pboxes=pboxes, logits=logits))

        l_loc = sum(o["l_loc"] for o in outs) / views
        l_rec = sum(o["l_rec"] for o in outs) / views
        l_cons = torch.zeros(())
        if views == 2:
            a, b = outs
            l_cons = (sum((fa - fb).abs().mean() for fa, fb in zip(a["feats"], b["feats"]))
                      + (a["soft"] - b["soft"]).abs().mean() + (a["rec"] - b["rec"]).abs().mean()
                      + (a["rec"] - images).abs().mean())
        l_adv_a = l_adv_b = torch.zeros(())
        if self.d_a is not None and self.d_b is not None:
            l_adv_a = lsgan_loss(self.d_a(protected), True)
            l_adv_b = lsgan_loss(self.d_b(outs[0]["rec"]), True)
        L = cfg.loss
        alpha = L.alpha * min(1.0, (st.step + 1) / max(1, cfg.train.rec_warmup_steps))
        total = (st.protect_weight * (l_prt + L.eta * l_adv_a)
                 + alpha * (l_rec + L.eta * l_adv_b) + L.beta * l_loc + L.gamma * l_cons)
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss is {float(total)} at step {st.step}")
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.world.average_gradients(m.parameters())
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(m.parameters(), cfg.train.grad_clip)
        self.opt.step()

        l_d = torch.zeros(())
        if self.opt_d is not None and self.d_a is not None and self.d_b is not None:
            l_d = (lsgan_loss(self.d_a(images), True) + lsgan_loss(self.d_a(protected.detach()), False)
                   + lsgan_loss(self.d_b(images), True) + lsgan_loss(self.d_b(outs[0]["rec"].detach()), False)) / 2
            self.opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            self.world.average_gradients([p for d in (self.d_a, self.d_b) for p in d.parameters()])
            self.opt_d.step()

        # Bookkeeping: protection-strength controller, stage switch.
        mse = float(self.world.all_sum(((protected_q.detach() - images) ** 2).mean())) / self.world.size
        batch_psnr = 10 * math.log10(1 / max(mse, 1e-12))
        if L.psnr_target is not None:
            st.protect_weight *= 1.05 if batch_psnr < L.psnr_target else 1 / 1.05
            # the configured weight is a floor: the controller only adds protection
            st.protect_weight = float(min(max(st.protect_weight, L.protect_weight), 1000.0))
        loc_val = float(self.world.all_sum(l_loc.detach())) / self.world.size
        st.loc_ema = loc_val if not math.isfinite(st.loc_ema) else 0.98 * st.loc_ema + 0.02 * loc_val
        if st.stage == 1 and (st.step + 1 >= cfg.train.stage1_steps
                              or st.loc_ema < cfg.train.stage1_loc_threshold):
            st.stage = 2
        st.step += 1
        val = lambda t: float(t.detach())  # noqa: E731
        losses = dict(total=val(total), prt=val(l_prt), rec=val(l_rec), loc=loc_val,
                      cons=val(l_cons), adv_a=val(l_adv_a), adv_b=val(l_adv_b), d=val(l_d),
                      psnr=batch_psnr, pw=st.protect_weight,
                      dense=sum(val(o["l_dense"]) for o in outs) / views,
                      iou=sum(o["iou"] for o in outs) / views)
        return StepResult(losses, st.stage)

    # -- validation ----------------------------------------------------------
    @torch.no_grad()
    def validate(self, quality: int = 80) -> dict[str, float]:
        """Protected PSNR, detection accuracy, box IoU and cut-away PSNR under real
        JPEG ``quality`` on the validation photos, with seeded crops."""
        from clrnet.paper.inference import inspect_native

        if self.val_images is None:
            return {}
        m, size = self.model.eval(), self.cfg.size
        rng = np.random.default_rng(1234)
        from clrnet.attacks.real import crop as real_crop
        from clrnet.attacks.real import jpeg
        from clrnet.core.image import pil_to_tensor, tensor_to_pil
        from clrnet.core.metrics import psnr

        psnrs, ious, correct, rec_psnr = [], [], [], []
        for i, img in enumerate(self.val_images):
            prot = tensor_to_pil(m.protect(img[None])[0])
            psnrs.append(psnr(pil_to_tensor(prot), img))
            is_crop = i % 2 == 1
            box = sample_crop_box(rng, size, size, self.cfg.attack.min_area, 1.0) if is_crop else FULL_FRAME
            received = jpeg(real_crop(prot, box), quality)
            res = inspect_native(m, pil_to_tensor(received))
            correct.append(float(res.cropped == is_crop))
            ious.append(box_iou(res.box, box))
            if is_crop:
                cut = 1 - box_mask(box, size, size)
                if cut.sum() > 0:
                    rec_psnr.append(psnr(res.recovered, img, cut))
        m.train()
        out = dict(val_psnr=float(np.mean(psnrs)), val_acc=float(np.mean(correct)),
                   val_iou=float(np.mean(ious)), val_cut_psnr=float(np.mean(rec_psnr)))
        out["val_score"] = out["val_iou"] + out["val_acc"] + out["val_cut_psnr"] / 20 \
            - max(0.0, 32 - out["val_psnr"])
        return out

    # -- loop ----------------------------------------------------------------
    def fit(self, steps: int | None = None) -> None:
        from tqdm import tqdm

        total = steps if steps is not None else self.cfg.train.steps
        log_path = self.run_dir / "log.csv"
        t = self.cfg.train
        bar = tqdm(total=total, initial=min(self.state.step, total), desc="training",
                   disable=not self.progress, dynamic_ncols=True)
        t0, n0 = time.time(), self.state.step
        while self.state.step < total:
            res = self.train_step()
            row: dict[str, float] = {"step": self.state.step, "stage": res.stage, **res.losses}
            s = self.state.step
            row["images_per_s"] = (s - n0) * t.batch_size * self.world.size / max(time.time() - t0, 1e-9)
            if s % t.checkpoint_every == 0 or s == total:
                self.world.check_in_step(self.model)
            if not self.world.main:
                continue
            if s % t.val_every == 0 or s == total:
                row.update(self.validate())
                if row.get("val_score", -math.inf) > self.state.best_val:
                    self.state.best_val = row["val_score"]
                    self.model.save(self.run_dir / "best.safetensors",
                                    {"step": str(s), "val": str({k: round(v, 4) for k, v in row.items()
                                                                 if k.startswith("val_")})})
            if s % 10 == 0 or "val_score" in row:
                new = not log_path.exists()
                with log_path.open("a", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
                    if new:
                        w.writeheader()
                    w.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()})
            if s % t.checkpoint_every == 0 or s == total:
                self.save_checkpoint()
                self.model.save(self.run_dir / "last.safetensors", {"step": str(s)})
            bar.update(1)
            bar.set_postfix(stage=res.stage, psnr=f"{res.losses['psnr']:.1f}",
                            rec=f"{res.losses['rec']:.3f}", loc=f"{res.losses['loc']:.3f}",
                            ips=f"{row['images_per_s']:.1f}")
        bar.close()
        self.world.barrier()
