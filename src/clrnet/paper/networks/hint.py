"""The thumbnail hint: a coarse copy of the whole photo, hidden in every part of it.

Recovering what a crop cut away needs information about the cut-away part in
the part that was kept. The hint layer hides the photo's ``cells`` x ``cells``
colour thumbnail (the mean of each cell, 3 cells^2 numbers) in the luminance,
as a weighted sum of fixed pseudo-random patterns in a mid-frequency band:

    y = x + s * sum_j (t_j(x) - 0.5) p_j.

Each pattern has zero mean in every cell, so the thumbnail of y equals that of
x and the layer is exactly invertible (``inverse`` recomputes t from y). After
a crop, every kept pixel still carries all the patterns: ``decode`` finds the
thumbnail by weighted least squares on the kept part (second differences
whiten the photo's content, calm regions weigh more, as in the ruler readout),
and ``fill`` paints the cut-away region from it, so that G's reverse pass
starts from a coarse picture of the missing part instead of zeros.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clrnet.recovery.paint import distance_to, harmonic_extension


def _laplacian(x: Tensor) -> Tensor:
    """Discrete Laplacian on the interior: (..., H, W) -> (..., H-2, W-2)."""
    return (x[..., 1:-1, 2:] + x[..., 1:-1, :-2] + x[..., 2:, 1:-1] + x[..., :-2, 1:-1]
            - 4 * x[..., 1:-1, 1:-1])


class ThumbnailHint(nn.Module):
    """Invertible additive layer hiding a ``cells`` x ``cells`` RGB thumbnail.

    Works on (B, C, N, N) in [0, 1]; the hidden signal is the same in every
    channel (luminance survives JPEG best).
    """

    def __init__(self, size: int, cells: int = 4, amplitude: float = 0.02,
                 band: tuple[int, int] = (12, 32), seed: int = 4321) -> None:
        super().__init__()
        if size % cells:
            raise ValueError(f"hint cells {cells} must divide the native size {size}")
        lo, hi = band
        if not 0 < lo <= hi < size / 2:
            raise ValueError(f"hint band {band} must satisfy 0 < lo <= hi < {size / 2}")
        self.size, self.cells = size, cells
        n_coef = 3 * cells * cells
        g = torch.Generator().manual_seed(seed)
        f = torch.fft.fftfreq(size) * size
        radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
        annulus = ((radius >= lo) & (radius <= hi)).float()
        noise = torch.randn(n_coef, size, size, generator=g)
        pats = torch.fft.ifft2(torch.fft.fft2(noise) * annulus).real
        c = size // cells
        cell_means = F.avg_pool2d(pats[:, None], c)[:, 0]  # zero mean per cell: exact inverse
        pats = pats - cell_means.repeat_interleave(c, 1).repeat_interleave(c, 2)
        pats = pats / pats.pow(2).mean((1, 2), keepdim=True).sqrt()
        self.register_buffer("patterns", pats)  # (J, N, N), unit rms
        # coefficients (t - 0.5) have rms ~0.25 on photos: the hidden signal has rms ~amplitude
        self.scale = amplitude / (math.sqrt(n_coef) * 0.25)
        # what decode fits against: the whitened patterns at their embedded strength
        self.register_buffer("_whitened", _laplacian(pats).flatten(1) * self.scale, persistent=False)

    def thumbnail(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.cells)  # (B, 3, T, T)

    def signal(self, thumb: Tensor) -> Tensor:
        """The hidden luminance signal (B, 1, N, N) of thumbnails (B, 3, T, T)."""
        coef = (thumb - 0.5).flatten(1)
        return self.scale * torch.einsum("bj,jhw->bhw", coef, self.patterns)[:, None]

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return x + self.signal(self.thumbnail(x))

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        return y - self.signal(self.thumbnail(y))

    @torch.no_grad()
    def decode(self, frame: Tensor, keep: Tensor, known: Tensor | None = None,
               prior_std: float = 0.2) -> Tensor:
        """Thumbnails (B, 3, T, T) from frames (B, 3, N, N) whose ``keep`` (B, 1, N, N)
        part holds the received pixels. ``known`` (1, 3, N, N) is any fixed code to
        remove first (the ruler). Each estimate is the posterior mean under a prior
        centred on the kept part's mean colour (std ``prior_std``), with the noise
        level measured from the fit's residual, so a photo whose content drowns the
        hint gets its kept colours rather than wild ones. Cells that are almost
        entirely kept are measured directly instead."""
        lum = frame.mean(1)
        if known is not None:
            lum = lum - known.mean(1)
        lap = _laplacian(lum)
        r = lap.flatten(1)  # (B, M)
        p = self._whitened  # (J, M)
        # stay 3 px away from the cut: the Laplacian and JPEG blocks smear the edge
        inner = 1 - F.max_pool2d(1 - keep, 7, 1, 3)
        power = F.avg_pool2d(lap[:, None] ** 2, 9, 1, 4, count_include_pad=False)
        w = (inner[..., 1:-1, 1:-1] / (power + 1e-4)).flatten(1)  # (B, M)
        n_coef = p.shape[0]
        eye = torch.eye(n_coef, dtype=p.dtype)
        kept_mean = (frame * keep).sum((2, 3)) / keep.sum((2, 3)).clamp_min(1)  # (B, 3)
        prior = (kept_mean[:, :, None].expand(-1, -1, self.cells ** 2).reshape(-1, n_coef) - 0.5)
        coefs = []
        for b in range(frame.shape[0]):
            pw = p * w[b]
            gram, rhs = pw @ p.T, pw @ r[b]
            fit = torch.linalg.solve(gram + 1e-6 * gram.diagonal().mean() * eye, rhs)
            resid = r[b] - fit @ p
            noise = float((w[b] * resid ** 2).sum() / (w[b] > 0).sum().clamp_min(1))
            a = gram + (noise / prior_std ** 2) * eye
            coefs.append(torch.linalg.solve(a, rhs + (noise / prior_std ** 2) * prior[b]))
        thumb = (torch.stack(coefs) + 0.5).clamp(0, 1).reshape(-1, 3, self.cells, self.cells)
        coverage = F.adaptive_avg_pool2d(keep, self.cells)
        denom = coverage.clamp_min(1e-6)
        measured = F.adaptive_avg_pool2d(frame * keep, self.cells) / denom
        return torch.where(coverage >= 0.9, measured, thumb)

    def fill(self, frame: Tensor, keep: Tensor, thumb: Tensor, known: Tensor | None = None,
             reach: float = 32.0) -> Tensor:
        """Paint the cut-away part (keep == 0) of ``frame``: the upsampled thumbnail,
        plus the kept part's detail relative to it, extended harmonically across
        the cut and fading over ``reach`` pixels (so edges continue, far regions
        keep the thumbnail's colours). The paint carries the hidden signal (and
        the ``known`` codes) as a protected photo would, so that G's reverse pass
        removes them exactly."""
        signal = self.signal(thumb)
        fixed = signal if known is None else signal + known
        up = F.interpolate(thumb, size=frame.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
        detail = harmonic_extension((frame - fixed - up) * keep, keep)
        fade = torch.exp(-distance_to(keep) / reach)
        painted = up + detail * fade + fixed
        return frame * keep + painted * (1 - keep)


