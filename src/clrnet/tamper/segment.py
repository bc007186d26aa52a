"""A learned reading of the presence evidence: where a protected photo was edited.

The thresholded presence map (:mod:`.localize`) sees one number per pixel: the protection's
agreement, averaged over 8 x 8 blocks. It cannot tell a region whose mark is missing
because it was repainted from one where the mark was always weak (a flat sky after JPEG),
and its averaging blurs every outline by half a window. A small U-Net reads, block by block,
the evidence the decoder already has: each block's correlation with the sign it should carry
(and whether that sign is known), the agreement at two scales, the thresholded map's own
input, how textured and how clipped the received photo is there, how far it is there from the
payload's thumbnail (when the payload decoded; read by networks trained with it, not by the
shipped one, which reads the first ten features), and three numbers about the whole window (the
map's SNR, the JPEG quality it was last saved at, and whether the codeword is the decoded
payload's or the best path of a failed checksum). It returns the probability that each block
was edited; an edit is where it exceeds the card's threshold, in regions of at least
``MIN_AREA`` of the window. Trained by ``clrnet train --config tamper`` on train photos with
the evaluation's own edits and attacks (``train_segment``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d
from PIL import Image
from torch import Tensor, nn

from clrnet.core.image import box_mean, local_std, pil_to_tensor
from clrnet.payload import channel

N_FEATURES = 11  # the last: the received photo against the payload's thumbnail (0 without one)
SHIPPED = "clrnet-v2-tamper"  # weights/clrnet-v2/<name>.safetensors, its card beside it
# the codeword the evidence is read against (feature 9): the decoded payload's, or a failed checksum's best path
EXACT, BEST_PATH = 1.0, 0.5
MIN_AREA = 0.02  # share of the window an edited region the network finds must cover


@dataclass
class Evidence:
    """Block-level features of a window (N_FEATURES, hb, wb) and where the block grid sits in the
    window: (oy, ox) pixels of offset, ``block`` pixels a block, over a window of ``size`` (h, w)
    at ``origin`` (y0, x0) of a working frame of ``frame`` (W, H)."""

    features: Tensor
    offset: tuple[int, int]
    block: int
    size: tuple[int, int]
    origin: tuple[int, int]
    frame: tuple[int, int]


def evidence(layout: channel.Layout, q: Tensor, y0: int, x0: int, bits: Tensor, window: Tensor,
             snr: float, jpeg: int | None, codeword: float, skip: Tensor) -> Evidence:
    """The features of a window (3, h, w) whose per-pixel products ``q`` (h, w) of
    ``channel.demodulate`` are read against the coded ``bits`` (of kind ``codeword``), ``skip``
    (h, w, bool) where it is too clipped to carry anything."""
    signed, known, local, (oy, ox, hb, wb) = channel._agreement(layout, q, y0, x0, bits, 8)
    b = layout.block
    scale = signed.abs()[known > 0].median().clamp_min(1e-12) if bool((known > 0).any()) else torch.tensor(1.0)
    a = (signed / scale).clamp(-4, 4)
    rel = (local / max(float(torch.quantile(local.flatten(), 0.75)), 1e-6)).clamp(0, 1)
    fine = box_mean((a * known)[None, None], 4)[0, 0] / box_mean(known[None, None], 4)[0, 0].clamp_min(1e-3)
    lum = window.float().mean(0)[None, None] * 255
    tex = local_std(lum, 7)[0, 0][oy:oy + hb * b, ox:ox + wb * b].reshape(hb, b, wb, b).mean((1, 3))
    clip = skip.float()[oy:oy + hb * b, ox:ox + wb * b].reshape(hb, b, wb, b).mean((1, 3))
    glob = [snr, 0.0 if jpeg is None else (100 - jpeg) / 100, codeword]
    feats = [a, known, local.clamp(-1, 1), rel, fine.clamp(-4, 4) / 4, torch.log1p(tex) / 3, clip]
    feats += [torch.full_like(a, float(g)) for g in glob] + [torch.zeros_like(a)]
    return Evidence(torch.stack(feats).float(), (oy, ox), b, (q.shape[0], q.shape[1]), (y0, x0),
                    (layout.width, layout.height))


def with_thumbnail(ev: Evidence, window: Tensor, thumb: Image.Image) -> Evidence:
    """``ev`` with its last feature: how far each block of the ``window`` (3, h, w) it was read
    from is from the payload's thumbnail of the whole frame, both at the thumbnail's
    resolution, relative to the window's median block. Without protection, a repainted region
    and a sky whose protection JPEG took out look alike; only the first also differs from what
    the photo showed when it was protected."""
    b, (oy, ox), (y0, x0), (fw, fh) = ev.block, ev.offset, ev.origin, ev.frame
    hb, wb = ev.features.shape[-2:]
    blocks = window.float()[:, oy:oy + hb * b, ox:ox + wb * b].reshape(3, hb, b, wb, b).mean((2, 4))
    t = pil_to_tensor(thumb)[None]
    ys = (y0 + oy + (torch.arange(hb) + 0.5) * b) / fh * 2 - 1  # block centres, as grid_sample reads them
    xs = (x0 + ox + (torch.arange(wb) + 0.5) * b) / fw * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[None].float()
    seen = F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    sigma = max(0.5 * fw / (thumb.size[0] * b), 0.3)  # half a thumbnail pixel, in blocks
    k = 2 * int(math.ceil(2 * sigma)) + 1
    low = gaussian_blur2d(blocks[None], (k, k), (sigma, sigma), border_type="replicate")[0]
    far = (low - seen).abs().mean(0) * 255
    far = far / far.median().clamp_min(0.5)
    features = ev.features.clone()
    features[N_FEATURES - 1] = torch.log1p(far) / 2
    return replace(ev, features=features)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(0.2, True))


class TamperNet(nn.Module):
    """Blocks, 1/2 and 1/4 scale, a dilated middle (the receptive field spans about 60 blocks:
    a 256 px window's whole width); one logit per block."""

    def __init__(self, width: int = 16, features: int = N_FEATURES) -> None:
        super().__init__()
        c1, c2 = width, 2 * width
        self.width, self.features = width, features
        self.inc = nn.Sequential(_conv(features, c1), _conv(c1, c1))
        self.d1 = _conv(c1, c2, 2)
        self.d2 = _conv(c2, c2, 2)
        self.mid = nn.Sequential(_conv(c2, c2, dilation=2), _conv(c2, c2, dilation=4), _conv(c2, c2, dilation=8))
        self.u2 = _conv(2 * c2, c2)
        self.u1 = _conv(c2 + c1, c1)
        self.out = nn.Conv2d(c1, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, N_FEATURES, H, W) -> (B, 1, H, W) logits (any H, W); a network of fewer
        features reads the first ones."""
        x = x[:, :self.features]
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        e1 = self.inc(x)
        e2 = self.d1(e1)
        m = self.mid(self.d2(e2))
        y = self.u2(torch.cat([F.interpolate(m, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        y = self.u1(torch.cat([F.interpolate(y, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        return self.out(y)[..., :h, :w]


@torch.no_grad()
def edited_probability(net: TamperNet, ev: Evidence) -> Tensor:
    """(h, w) over the window: the probability that each pixel was edited."""
    logit = net(ev.features[None])[0, 0]
    hb, wb = logit.shape
    b, (oy, ox), (h, w) = ev.block, ev.offset, ev.size
    up = F.interpolate(logit[None, None], size=(hb * b, wb * b), mode="bilinear", align_corners=False)
    up = F.pad(up, (ox, w - ox - wb * b, oy, h - oy - hb * b), mode="replicate")[0, 0]
    return torch.sigmoid(up)


def block_truth(mask: Tensor, ev: Evidence) -> Tensor:
    """The share of each block of the evidence that a true edit mask (H, W) of the whole original
    frame covers (brought to the working frame, the window cut out of it)."""
    b, (oy, ox), (y0, x0), (h, w) = ev.block, ev.offset, ev.origin, ev.size
    fw, fh = ev.frame
    hb, wb = ev.features.shape[-2:]
    m = F.interpolate(mask.float()[None, None], size=(fh, fw), mode="area")[0, 0]
    m = F.pad(m, (0, max(0, x0 + w - fw), 0, max(0, y0 + h - fh)))[max(y0, 0):, max(x0, 0):]
    m = F.pad(m, (max(0, -x0), 0, max(0, -y0), 0))[:h, :w]
    return m[oy:oy + hb * b, ox:ox + wb * b].reshape(hb, b, wb, b).mean((1, 3))


def load_tamper(path: str | None = None) -> tuple[TamperNet, float] | None:
    """The tamper network and its probability threshold (from the card's metadata), from
    ``path`` or the shipped weights; None if absent."""
    from importlib import resources

    from safetensors import safe_open
    from safetensors.torch import load_file

    src = path or str(resources.files("clrnet") / "weights" / "clrnet-v2" / f"{SHIPPED}.safetensors")
    try:
        with safe_open(src, "pt") as f:
            meta = json.loads((f.metadata() or {}).get("tamper_config", "{}"))
        net = TamperNet(int(meta.get("width", 16)), int(meta.get("features", 10)))
        net.load_state_dict(load_file(src))
    except (FileNotFoundError, OSError):
        return None
    return net.eval(), float(meta.get("threshold", 0.5))
