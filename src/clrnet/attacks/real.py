"""The real operations behind every attack, on PIL images: what an attacker's
software does. Evaluation and tests use these, never the training simulator."""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from clrnet.attacks import real
from clrnet.core.geometry import Box, box_to_pixels


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


AttackFn = Callable[[Image.Image, int], Image.Image]


def _via_format(image: Image.Image, fmt: str, **params) -> Image.Image:
    """Save in a real file format and read back, as a recipient would receive it."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out.convert("RGB")


def _jpeg(q: int) -> AttackFn:
    return lambda im, seed: _via_format(im, "JPEG", quality=q)


def _png(fn: Callable[[Image.Image, int], Image.Image]) -> AttackFn:
    return lambda im, seed: _via_format(fn(im, seed), "PNG")


# The real post-processing operations of the evaluation, by name.
REAL_ATTACKS: dict[str, AttackFn] = {
    "none": _png(lambda im, s: im),
    "jpeg90": _jpeg(90),
    "jpeg80": _jpeg(80),
    "jpeg70": _jpeg(70),
    "jpeg50": _jpeg(50),
    "jpeg10": _jpeg(10),
    "scale150": _png(lambda im, s: real.rescale(im, 1.5)),
    "scale125": _png(lambda im, s: real.rescale(im, 1.25)),
    "scale75": _png(lambda im, s: real.rescale(im, 0.75)),
    "scale70": _png(lambda im, s: real.rescale(im, 0.70)),
    "scale50": _png(lambda im, s: real.rescale(im, 0.50)),
    "median": _png(lambda im, s: real.median_blur(im, 3)),
    "gaussian": _png(lambda im, s: real.gaussian_blur(im, 1.0)),
    "noise": _png(lambda im, s: real.awgn(im, 0.02, seed=s)),
    "dropout": _png(lambda im, s: real.pixel_dropout(im, 0.05, seed=s)),
    "contrast": _png(lambda im, s: real.contrast(im, 1.3)),
    "brightness": _png(lambda im, s: real.brightness(im, 20)),
    "jpeg80+resize": lambda im, s: _via_format(real.rescale(im, 0.8), "JPEG", quality=80),
}
