"""Two classical passive maps the PSCC-Net paper compares with (its Table 2, type U).

- ELA, error level analysis: the photo saved again as JPEG; regions whose error level differs
  from the rest were compressed a different number of times or at another quality.
- NOI1 (Mahdian and Saic, 2009): the noise level of blocks, estimated from the finest diagonal
  wavelet band (Haar) by the median absolute deviation; a region pasted from elsewhere carries
  another noise level. The map is the block level's distance from the photo's median level.
Both give a per-pixel map in the photo's frame (larger: more likely edited) and, as the paper
does for methods without a detection head, the map's mean serves as the image score.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

ELA_QUALITY = 90
NOI_BLOCK = 8  # in the wavelet band: 16 x 16 pixels


def jpeg_error(photo: np.ndarray, quality: int = ELA_QUALITY) -> np.ndarray:
    """|photo - JPEG(photo)| averaged over channels, (H, W) float32: the error level."""
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=quality)
    again = np.asarray(Image.open(buf).convert("RGB")).astype(np.float32)
    return np.abs(photo.astype(np.float32) - again).mean(2)


def ela_map(photo: np.ndarray, quality: int = ELA_QUALITY) -> np.ndarray:
    """The error level averaged over a 7 x 7 window, (H, W) float32."""
    return cv2.blur(jpeg_error(photo, quality), (7, 7))


def haar_hh(gray: np.ndarray) -> np.ndarray:
    """The finest diagonal band of a one-level Haar transform."""
    h, w = gray.shape[0] // 2 * 2, gray.shape[1] // 2 * 2
    g = gray[:h, :w]
    return (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2


def noi1_map(photo: np.ndarray, block: int = NOI_BLOCK) -> np.ndarray:
    """Per-block noise level (MAD / 0.6745 of the HH band), its distance from the photo's
    median level, upsampled to the frame: (H, W) float32."""
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hh = np.abs(haar_hh(gray))
    bh, bw = max(1, hh.shape[0] // block), max(1, hh.shape[1] // block)
    blocks = hh[:bh * block, :bw * block].reshape(bh, block, bw, block).transpose(0, 2, 1, 3).reshape(bh, bw, -1)
    sigma = np.median(blocks, axis=2) / 0.6745
    dist = np.abs(sigma - np.median(sigma)).astype(np.float32)
    return cv2.resize(dist, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_NEAREST)
