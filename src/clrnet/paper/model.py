"""CLRNet: the networks bundled with their config, saved and loaded as
safetensors, and a small zoo of shipped models loaded by name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from clrnet.core.geometry import Box, box_mask, zero_pad_resize
from clrnet.paper.config import ModelConfig
from clrnet.paper.networks import InvertibleUNet, Localizer, Preprocessor
from clrnet.sync.ruler import Ruler, RulerReadout

if TYPE_CHECKING:
    pass


class CLRNet(nn.Module):
    """Generator G, localizer C and pre-processor P at a fixed native size.

    All tensors are (B, 3, N, N) in [0, 1], N = ``cfg.size``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.size = cfg.size
        self.generator = InvertibleUNet(cfg.generator, cfg.size)
        loc = cfg.localizer
        if loc.kind == "matched":
            gen = cfg.generator
            if gen.position_code != "ruler":
                raise ValueError("localizer.kind 'matched' reads the ruler: set generator.position_code: ruler")
            self.localizer: Localizer | RulerReadout = RulerReadout(
                Ruler(gen.position_code_band), cfg.size, presence=loc.presence, crop_margin=loc.crop_margin)
        else:
            self.localizer = Localizer(loc, cfg.size)
        self.preprocessor = Preprocessor(cfg.preprocessor) if cfg.preprocessor.enabled else None

    def protect(self, image: Tensor) -> Tensor:
        """f_prt: the protected image (unclipped, unquantised)."""
        return self.generator(image)

    def preprocess(self, received: Tensor) -> tuple[Tensor, list[Tensor]]:
        if self.preprocessor is None:
            return received, []
        return self.preprocessor(received)

    def localize(self, processed: Tensor) -> tuple[Tensor, Tensor]:
        """Boxes (B, 4) and crop-score logits (B,) of pre-processed received images."""
        return self.localizer(processed)

    def recover(self, processed: Tensor, boxes: list[Box]) -> Tensor:
        """f_rec: ZR each received image into the frame at its box (painting the cut-away
        part from the hidden thumbnail, if G hides one), then run G backwards."""
        frames = torch.cat([zero_pad_resize(p[None], b, self.size, self.size)
                            for p, b in zip(processed, boxes)])
        hint = self.generator.hint()
        if hint is not None:  # paint the cut-away part from the hidden thumbnail
            keep = torch.stack([box_mask(b, self.size, self.size) for b in boxes])[:, None]
            code = self.generator.position_code()
            thumb = hint.decode(frames.detach(), keep, code)
            frames = hint.fill(frames, keep, thumb, code)
        return self.generator.inverse(frames)

    def num_parameters(self) -> dict[str, int]:
        parts = {"generator": self.generator, "localizer": self.localizer}
        if self.preprocessor is not None:
            parts["preprocessor"] = self.preprocessor
        return {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}

    # -- persistence -------------------------------------------------------
    def save(self, path: str | Path, extra: dict[str, str] | None = None) -> None:
        """Write weights + config (and any ``extra`` metadata) to one safetensors file."""
        meta = {"config": self.cfg.model_dump_json(), **(extra or {})}
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        save_file(state, str(tmp), metadata=meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "CLRNet":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "config" not in meta:
            raise ValueError(f"{path}: not a clrnet model file (no config in its metadata)")
        model = cls(ModelConfig.model_validate_json(meta["config"]))
        model.load_state_dict(load_file(str(path)))
        return model.eval()


