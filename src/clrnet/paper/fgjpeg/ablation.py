"""Table IV's JPEG-simulator rows: the paper's model (``small`` config) trained once per
simulator of the attack layer on the same budget, each shipped compactly and read back.

A model's file keeps its parameters in float16 and only the buffers a fresh build of its config
would not reproduce (the ruler's and the hint's fixed patterns are rebuilt from the config),
so five models fit in a few MB.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from clrnet.paper.config import ModelConfig
from clrnet.paper.model import CLRNet

ABLATION = "paper-jpeg-ablation"  # weights/<ABLATION>/<simulator>.safetensors
ROWS = ("real", "diff", "mask", "mixup", "fg")  # the small config as shipped (ruler + thumbnail hint)
NOHINT_ROWS = ("diff", "fg")  # without the fixed hint G's learned part must carry the recovery
SETS = {"small": ("", ROWS), "small, no hint": ("nohint-", NOHINT_ROWS)}  # file prefix, simulators
# The paper's Table IV (MS-COCO / Flicker, JPEG 70, r_c = 0.7): F1, PSNR, SSIM; None where the
# text extraction lost the number.
PAPER_TABLE_IV = {
    "mask": ("A using JPEG-Mask", (None, 22.47, 0.678), (0.923, 23.07, 0.699)),
    "diff": ("A using Diff-JPEG", (0.958, 25.95, 0.814), (0.942, 26.37, 0.827)),
    "fg": ("CLR-Net (full, FG-JPEG)", (None, 27.02, 0.822), (0.958, 26.94, 0.820)),
}


def save_compact(model: CLRNet, path: Path, metadata: dict[str, str]) -> None:
    """``model``'s parameters (float16) and the buffers a fresh build differs in, atomically."""
    fresh = dict(CLRNet(model.cfg).named_buffers())
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.named_parameters()}
    for k, v in model.named_buffers():
        if k not in fresh or not torch.equal(fresh[k], v):
            state[k] = v.detach().contiguous()
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"config": model.cfg.model_dump_json(), **metadata})
    tmp.replace(path)


def load_compact(path: str | Path) -> CLRNet:
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    if "config" not in meta:
        raise ValueError(f"{path}: not a model file (no config in its metadata)")
    model = CLRNet(ModelConfig.model_validate_json(meta["config"]))
    state = {k: v.float() if v.dtype == torch.float16 else v for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    params = {k for k, _ in model.named_parameters()}
    if unexpected or params & set(missing):
        raise ValueError(f"{path}: weights do not fit the model of its config")
    return model.eval()


def shipped_ablation(name: str) -> Path:
    """``weights/paper-jpeg-ablation/<name>.safetensors`` (``name``: a prefix of ``SETS`` and a simulator)."""
    from importlib import resources

    res = resources.files("clrnet") / "weights" / ABLATION / f"{name}.safetensors"
    if not res.is_file():
        raise FileNotFoundError(f"{ABLATION}/{name}: not shipped")
    return Path(str(res))


def export(run_dir: Path, simulator: str, out_dir: Path, prefix: str = "") -> Path:
    """The run's last weights as ``out_dir/<prefix><simulator>.safetensors``: every model at the same
    step (its validation choice can fall in the first stage, before any attack was simulated)."""
    from safetensors import safe_open as _open

    src = run_dir / "last.safetensors"
    with _open(str(src), "pt") as fh:
        meta = fh.metadata() or {}
    model = CLRNet.load(src)
    if model.cfg.attack.jpeg != simulator:
        raise ValueError(f"{src}: trained with the {model.cfg.attack.jpeg} simulator, not {simulator}")
    fg = Path(model.cfg.attack.fg_weights)
    if simulator == "fg" and fg.is_file():  # trained before FG-JPEG shipped: name the shipped copy
        from clrnet.paper.fgjpeg.weights import shipped

        if fg.read_bytes() == shipped("fg-jpeg").read_bytes():
            model.cfg.attack.fg_weights = "fg-jpeg"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{prefix}{simulator}.safetensors"
    save_compact(model, path, {"simulator": simulator, "run": run_dir.name,
                               **{k: v for k, v in meta.items() if k != "config"}})
    return path


if __name__ == "__main__":  # python -m clrnet.paper.fgjpeg.ablation RUN_DIR SIMULATOR OUT_DIR [PREFIX]
    import sys

    print(export(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), *sys.argv[4:5]))
