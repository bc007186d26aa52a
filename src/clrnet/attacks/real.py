"""The real operations behind every attack, on PIL images: what an attacker's
software does. Evaluation and tests use these, never the training simulator."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from ..geometry import Box, box_to_pixels


def crop(image: Image.Image, box: Box) -> Image.Image:
    left, top, right, bottom = box_to_pixels(box, *image.size)
    return image.crop((left, top, right, bottom))


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """Encode as JPEG at ``quality`` with Pillow and decode again."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out.convert("RGB")


def rescale(image: Image.Image, scale: float) -> Image.Image:
    w, h = image.size
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)


def gaussian_blur(image: Image.Image, sigma: float) -> Image.Image:
    from skimage.filters import gaussian

    arr = gaussian(np.asarray(image, dtype=np.float64) / 255, sigma=sigma, channel_axis=-1,
                   mode="mirror", truncate=3.0)
    return Image.fromarray((arr * 255).round().clip(0, 255).astype(np.uint8))


def median_blur(image: Image.Image, kernel_size: int = 3) -> Image.Image:
    return image.filter(ImageFilter.MedianFilter(kernel_size))


def awgn(image: Image.Image, sigma: float, seed: int = 0) -> Image.Image:
    from skimage.util import random_noise

    arr = random_noise(np.asarray(image), mode="gaussian", var=sigma ** 2, rng=seed)
    return Image.fromarray((arr * 255).round().astype(np.uint8))


def pixel_dropout(image: Image.Image, rate: float, seed: int = 0) -> Image.Image:
    """Black out a fraction ``rate`` of pixels (all channels of a pixel together)."""
    arr = np.asarray(image).copy()
    drop = np.random.default_rng(seed).random(arr.shape[:2]) < rate
    arr[drop] = 0
    return Image.fromarray(arr)


def contrast(image: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(factor)


def brightness(image: Image.Image, delta: int) -> Image.Image:
    """Add ``delta`` grey levels to every channel, clipped to [0, 255]."""
    arr = np.asarray(image).astype(np.int16) + int(delta)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))
