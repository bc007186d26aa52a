"""The designed protection's constants, in one place (the parts read them as explicit values)."""

from __future__ import annotations

from pydantic import BaseModel


class ProtectionConfig(BaseModel):
    """Every constant of the designed protection (saved with a model)."""

    ruler_band: tuple[int, int] = (32, 80)  # cycles per frame; read at readout_size
    ruler_share: float = 0.6  # amplitude share of the ruler
    # amplitude share of the core (``payload.core``: low-frequency pilots that outlive a
    # downscale to 0.3 of the frame); the payload takes sqrt(1 - ruler^2 - core^2). 0: no core
    core_share: float = 0.35
    core_band: tuple[float, float] = (0.03, 0.09)  # cycles per working pixel
    core_cell: int = 64  # working pixels per cell of the core's keyed signs
    core_presence: float = 6.0  # the core's statistic (about a standard normal without it) that verifies a box
    # ... or at least core_joint where the ruler backs the box at least core_joint_strength (more
    # than any photo never protected shows): a crop of a smooth photo, where the core is faint
    core_joint_strength: float = 0.5
    core_joint: float = 4.0
    core_search: int = 12  # working pixels the core is searched around a box
    # working levels from which the core is drawn: below, a whole frame holds too few cells for
    # its statistic to stand out of chance, and the payload keeps the core's share
    core_from_level: int = 1024
    # the core is read down to copies of this share of the frame (it verifies alone there; the
    # pilots stop at ``downscaled_to``)
    core_downscaled_to: float = 0.25
    jnd_floor: float = 1.25  # levels of rms change in flat areas
    jnd_slope: float = 0.35
    jnd_cap: float = 10.0
    max_rms: float = 4.7  # levels of rms change at most: PSNR about 34.8 dB
    min_ssim: float = 0.952  # the change is scaled down on a photo it would take below this (0: off)
    block: int = 4
    rs_parity: float = 0.12
    readout_size: int = 256
    presence: float = 0.40  # ruler strength above which a photo counts as protected
    crop_margin: float = 0.03
    pilot_presence: float = 5.0
    pilot_prominence: float = 5.5  # peak prominence of the pilot search below which a box is dropped
    pilot_search_prominence: float = 6.0  # the same for the search over a whole frame
    # ... and how far it must also stand above the chance maximum of the positions searched,
    # sqrt(2 ln P) (``search_excess``): chosen on val between the highest chance peaks of
    # never-protected images and the lowest peaks of the crops the search found
    pilot_search_excess: float = 1.8
    # ruler strength that reads at chance: about what a single protection taken away leaves,
    # what a photo never protected shows, and what some earlier protections found beneath show
    beneath_min_strength: float = 0.30
    # look beneath every protection however weak the ruler left there; a layer found
    # where that ruler reads below beneath_min_strength then needs its payload's
    # checksum. False (``Protector.fast``): nothing is looked for there (fewer laundered crops
    # found, a much faster inspect)
    thorough: bool = True
    # the smallest share of its working frame a received copy is looked for at: a copy downscaled
    # below its frame implies a smaller one, so the levels above the implied one are tried too
    # (the pilots still verify there after the payload's carrier is lost); 1.0: not looked for
    downscaled_to: float = 0.3
    # a box the ruler backs at least this strongly is also taken when its pilots reach
    # joint_floor in both statistics and joint_sum together (``jointly_verified``)
    joint_strength: float = 0.35
    joint_floor: float = 4.0
    joint_sum: float = 9.0
    reps: dict[int, int] = {}  # blocks per coded bit in a tile by working level (else 1)
    # the robust layout (each coded bit in this many blocks of a tile), taken from this working
    # level where the payload fails its check at protect time (``margin``); 1: never
    robust_reps: int = 2
    robust_from_level: int = 1536
    # a higher rate tried first where the payload passes the same check (else the level's rate,
    # then the robust layout): at 2048 px rate 2/3 carries 855 bytes instead of 640
    margin_rate: dict[int, str] = {2048: "2/3"}
    code_rate: dict[int, str] = {256: "3/4"}  # punctured inner code by working level (else "1/2"):
    # chosen on val by the recovery it buys, not by how often the payload decodes; 2048 px keeps 1/2:
    # enlarged val photos are too smooth to choose a rate for real ones
    host_boost: float = 1.0  # informed embedding: extra amplitude where the photo opposes a bit
    refine: bool = True  # the learned reconstruction on top of the painted thumbnail (if shipped)
    # the learned reading of the presence evidence for edits (``tamper.segment``, if shipped);
    # False: the presence map's thresholds (``tamper.localize``)
    tamper_net: bool = True
    border: bool = True  # Telea's continuation of the kept part blended in near the crop's edge
    consistent: bool = True  # the recovery moved into agreement with the thumbnail's measurements
    readout_gain: bool = True  # weigh the ruler readout by the JND map (the ruler is shaped by it)

    def carries_core(self, level: int) -> bool:
        """Whether a working frame of long side ``level`` carries the core."""
        return self.core_share > 0 and level >= self.core_from_level
