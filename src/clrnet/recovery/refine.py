"""The learned reconstruction: a small U-Net that turns the painted frame into the cut-away content.

Input, at a processing size where the thumbnail is about as coarse (relative to
the frame) as in training: the painted frame (kept part + thumbnail + the
kept part's continued detail), the upsampled thumbnail alone, the keep mask,
and the coarseness of the thumbnail (frame pixels per thumbnail pixel, log2,
scaled). Output: a correction added to the cut-away part only, upsampled to
the working frame; the kept part stays the received pixels.

The kept part shows what the photo's texture and edges look like, the
thumbnail where its colours and large shapes lie; the network learns to put
the two together (plain upsampling and harmonic continuation do not).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clrnet.core.geometry import resize

PROCESS_SIDE = 192  # long side at which the network runs (the training frames' size)
# ... and on the smallest frames (long side up to SMALL_FRAME): half the frame, where the pass
# at 192 px cost a quarter of a 256² inspect and 128 px recovered as much on val
SMALL_FRAME, SMALL_SIDE = 256, 128


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(0.2, True))


class RefineNet(nn.Module):
    """A light U-Net: full, 1/2, 1/4 and 1/8 scales, a dilated bottleneck at 1/8 (the
    receptive field spans the processing frame); zero-initialised output layer, so
    an untrained net returns the painted frame unchanged."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        self.inc = _conv(8, c1)
        self.d1 = _conv(c1, c2, 2)
        self.d2 = _conv(c2, c3, 2)
        self.d3 = _conv(c3, c3, 2)
        self.mid = nn.Sequential(_conv(c3, c3, dilation=2), _conv(c3, c3, dilation=4), _conv(c3, c3, dilation=8))
        self.u3 = _conv(2 * c3, c3)
        self.u2 = _conv(c3 + c2, c2)
        self.u1 = _conv(c2 + c1, c1)
        self.out = nn.Conv2d(c1, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @staticmethod
    def _up(x: Tensor, like: Tensor) -> Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, painted: Tensor, base: Tensor, keep: Tensor, coarseness: Tensor) -> Tensor:
        """(B, 3, H, W) painted, (B, 3, H, W) thumbnail base, (B, 1, H, W) keep, (B,) coarseness ->
        refined frame (B, 3, H, W)."""
        b, _, h, w = painted.shape
        cz = coarseness.view(b, 1, 1, 1).expand(b, 1, h, w)
        e1 = self.inc(torch.cat([painted - 0.5, base - 0.5, keep, cz], 1))
        e2 = self.d1(e1)
        e3 = self.d2(e2)
        m = self.mid(self.d3(e3))
        x = self.u3(torch.cat([self._up(m, e3), e3], 1))
        x = self.u2(torch.cat([self._up(x, e2), e2], 1))
        x = self.u1(torch.cat([self._up(x, e1), e1], 1))
        return (painted + self.out(x) * (1 - keep)).clamp(0, 1)


def coarseness_of(frame_long_side: int, thumb_long_side: int) -> float:
    """log2(frame pixels per thumbnail pixel) / 8: 0 for no coarsening, ~1 for a 1x1 thumbnail of 256 px."""
    return math.log2(max(frame_long_side / max(thumb_long_side, 1), 1.0)) / 8


@torch.no_grad()
def refine_frame(net: RefineNet, painted: Tensor, base: Tensor, keep: Tensor, thumb_long_side: int) -> Tensor:
    """Run ``net`` on a working frame of any size (3, H, W): at ``PROCESS_SIDE`` on the long side
    (``SMALL_SIDE`` for the smallest frames; multiples of 4), the correction upsampled back; the
    kept part untouched."""
    _, h, w = painted.shape
    s = min(1.0, (SMALL_SIDE if max(h, w) <= SMALL_FRAME else PROCESS_SIDE) / max(h, w))
    ph, pw = max(4, round(h * s / 4) * 4), max(4, round(w * s / 4) * 4)
    p = resize(painted[None], ph, pw)
    bb = resize(base[None], ph, pw)
    k = (resize(keep[None], ph, pw) > 0.5).float()
    c = torch.tensor([coarseness_of(max(ph, pw), thumb_long_side)])
    out = net(p, bb, k, c)
    delta = resize(out - p, h, w)[0] if (ph, pw) != (h, w) else (out - p)[0]
    return (painted + delta * (1 - keep)).clamp(0, 1)


SHIPPED = "clrnet-v2-refine"  # weights/clrnet-v2/<name>.safetensors, its card beside it


def load_refine(path: str | None = None) -> RefineNet | None:
    """The reconstruction network from ``path`` or the shipped weights; None if absent."""
    import json
    from importlib import resources

    from safetensors import safe_open
    from safetensors.torch import load_file

    src = path or str(resources.files("clrnet") / "weights" / "clrnet-v2" / f"{SHIPPED}.safetensors")
    try:
        with safe_open(src, "pt") as f:
            cfg = json.loads((f.metadata() or {}).get("refine_config", "{}"))
        net = RefineNet(int(cfg.get("width", 16)))
        net.load_state_dict(load_file(src))
    except (FileNotFoundError, OSError):
        return None
    return net.eval()
