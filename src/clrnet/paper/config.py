"""Typed configuration for the networks, the attack layer and training.

Defaults follow the CLR-Net journal paper (loss weights alpha=1.5, beta=0.1,
gamma=0.05, eta=0.01, Adam at 1e-4, batch 4); the YAML files in
``clrnet/configs`` override them for a given model size.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeneratorConfig(_Strict):
    """Invertible U-shaped generator G (Haar levels + affine couplings)."""

    levels: int = 3
    blocks_per_level: int | list[int] = 4  # couplings after each Haar step (per level if a list)
    hidden: list[int] = Field(default_factory=lambda: [32, 64, 128])
    clamp: float = 1.0
    coord_freqs: int = 3  # Fourier features of (x, y) fed to every coupling; 0 disables
    bottom_dilations: list[int] = Field(default_factory=lambda: [1, 2, 4])
    spectral_norm: bool = True
    position_code: Literal["none", "fourier", "random", "ruler"] = "none"  # additive code of pixel position
    position_code_amplitude: float = 0.02  # root-mean-square, in [0, 1] pixel units
    position_code_band: tuple[int, int] = (20, 48)  # ruler frequencies, cycles per frame
    position_code_learn: bool = False
    hint_cells: int = 0  # hide a cells x cells thumbnail for recovery (networks/hint.py); 0 = off
    hint_amplitude: float = 0.02  # rms of the hidden thumbnail signal
    hint_band: tuple[int, int] = (12, 32)  # its patterns' frequencies, cycles per frame


class LocalizerConfig(_Strict):
    """Localizer C: light 3-level U-Net flattened into a 4-layer MLP (``learned``, the
    paper's), or the matched-filter readout of the ruler code (``matched``, ours)."""

    kind: Literal["learned", "matched"] = "learned"
    presence: float = 0.47  # matched: ruler correlation below this = "not protected"
    crop_margin: float = 0.03  # matched: 1 - IoU(box, whole frame) above this = "cropped"

    channels: list[int] = Field(default_factory=lambda: [16, 32, 64])
    stem_stride: int = 1  # 2: the U-Net runs at half resolution (cheaper on a CPU)
    map_stride: int = 4
    mlp_hidden: list[int] = Field(default_factory=lambda: [512, 128, 32])
    dense_weight: float = 1.0  # deep supervision of the coordinate map (0 switches it off)
    detach_head: bool = False  # True: only the dense loss trains the U-Net; box/score losses train the MLP


class PreprocessorConfig(_Strict):
    """Pre-processor P: six conv blocks (conv, leaky-ReLU, instance norm)."""

    enabled: bool = True
    channels: int = 32
    siamese: bool = True  # two attacked views per step + consistency loss


class DiscriminatorConfig(_Strict):
    """PatchGAN discriminators D_A (protected) and D_B (recovered)."""

    enabled: bool = True
    channels: int = 32
    layers: int = 3


AttackName = Literal[
    "identity", "jpeg", "jpeg_diff", "resize", "gaussian_blur", "median_blur",
    "awgn", "dropout", "contrast", "brightness", "jpeg_resize",
]


class AttackConfig(_Strict):
    """The attack layer A: which post-processing attacks training samples from."""

    min_area: float = 0.25  # r_c: kept area of the crop, in [min_area, max_area]
    max_area: float = 1.0
    max_aspect: float = 2.0  # kept part's aspect ratio within [1/max_aspect, max_aspect]
    uncropped_fraction: float = 0.25
    attacks: list[AttackName] = Field(default_factory=lambda: [
        "identity", "jpeg", "resize", "gaussian_blur", "median_blur", "awgn", "dropout",
        "jpeg_resize",
    ])
    jpeg_quality: tuple[int, int] = (50, 95)
    resize_scale: tuple[float, float] = (0.5, 1.5)
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    median_kernel: list[int] = Field(default_factory=lambda: [3])
    noise_sigma: tuple[float, float] = (0.0, 0.03)
    dropout_rate: tuple[float, float] = (0.0, 0.1)
    contrast: tuple[float, float] = (0.7, 1.3)
    brightness: tuple[float, float] = (-0.1, 0.1)
    detach_attack: bool = True  # gradient stabilisation: attack difference is detached
    # The JPEG simulator of the jpeg attacks (paper/attacks/jpeg.py): real = Pillow with the gradient
    # straight through; diff / codec / mask / mixup / fg run forward and carry the gradient (never detached).
    jpeg: Literal["real", "diff", "codec", "mask", "mixup", "fg"] = "real"
    fg_weights: str = "fg-jpeg"  # FG-JPEG's generator: a shipped name or a .safetensors path


class LossConfig(_Strict):
    """Loss weights of Eq. (9): L = L_prt + alpha L_rec + beta L_loc + gamma L_cons."""

    alpha: float = 1.5
    beta: float = 0.1
    gamma: float = 0.05
    eta: float = 0.01
    protect_weight: float = 1.0
    psnr_target: float | None = None  # if set, the protection weight rises above protect_weight to hold this PSNR
    box_l1: float = 1.0  # extra L1 on box corners beside the mask BCE
    score: float = 1.0  # weight of the BCE on the crop score S


class TrainConfig(_Strict):
    batch_size: int = 4
    lr: float = 1e-4
    localizer_lr_scale: float = 1.0  # the localizer's learning rate = lr x this
    lr_decay_steps: list[int] = Field(default_factory=list)
    lr_decay: float = 0.5
    steps: int = 100_000
    stage1_steps: int = 2000  # task decomposition: ideal ZR box until this step
    stage1_loc_threshold: float = 0.0  # or until the localisation loss EMA drops below
    rec_warmup_steps: int = 0  # recovery weight ramps from 0 to alpha over these steps
    shift_target: bool = True  # stage 2: shift ground truth by the predicted-box affine map
    tamper_rate: float = 0.15  # r_aug
    grad_clip: float = 1.0
    val_every: int = 500
    val_images: int = 32
    checkpoint_every: int = 250
    threads: int = 2
    seed: int = 0


class ModelConfig(_Strict):
    name: str = "clrnet"
    size: int = 256  # native resolution (square)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    localizer: LocalizerConfig = Field(default_factory=LocalizerConfig)
    preprocessor: PreprocessorConfig = Field(default_factory=PreprocessorConfig)
    discriminator: DiscriminatorConfig = Field(default_factory=DiscriminatorConfig)
    attack: AttackConfig = Field(default_factory=AttackConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


def builtin_config_names() -> list[str]:
    """Names of the YAML configs shipped inside the package."""
    folder = resources.files("clrnet") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def override(data: dict, item: str) -> None:
    """Set ``a.b=value`` in ``data`` (the value read as YAML: ``attack.jpeg=fg``, ``train.steps=400``)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {item!r}: expected key.path=value")
    *parents, last = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {item!r}: {part} is not a section")
    node[last] = yaml.safe_load(value)


def load_config(path_or_name: str | Path, overrides: list[str] | None = None) -> ModelConfig:
    """Load a config from a YAML file, or a built-in one by name (e.g. ``small``), with
    ``overrides`` (``key.path=value``) applied."""
    path = Path(path_or_name)
    if path.is_file():
        text = path.read_text()
    else:
        res = resources.files("clrnet") / "configs" / f"{path_or_name}.yaml"
        if not res.is_file():
            raise FileNotFoundError(
                f"{path_or_name}: no such config file or built-in config "
                f"(built-in: {', '.join(builtin_config_names())})"
            )
        text = res.read_text()
    data = yaml.safe_load(text) or {}
    for item in overrides or []:
        override(data, item)
    return ModelConfig.model_validate(data)


def dump_config(cfg: ModelConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
