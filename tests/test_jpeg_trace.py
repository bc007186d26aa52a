"""The JPEG trace read from a photo's own pixels (``tamper/jpeg_trace.py``) and the stricter
tamper thresholds it selects."""

from __future__ import annotations

import pytest
import torch
from helpers import jpeg
from PIL import Image, ImageFilter

from clrnet.core.image import pil_to_tensor
from clrnet.tamper.jpeg_trace import dc_step, jpeg_quality
from clrnet.tamper.localize import STRICT, TamperThresholds, thresholds_for


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.BICUBIC),
            Image.fromarray(data.coffee()).resize((384, 256), Image.Resampling.BICUBIC)]


@pytest.mark.parametrize("quality", [50, 60, 70, 75, 80, 90])
def test_the_quality_pillow_compressed_at_is_read_back(photos, quality):
    for im in photos:
        q = jpeg_quality(pil_to_tensor(jpeg(im, quality)))
        assert q is not None and abs(q - quality) <= 2, (quality, q)


def test_the_grid_is_found_where_a_crop_moved_it(photos):
    im = jpeg(photos[1], 70)
    shifted = im.crop((5, 3, im.width, im.height))  # the 8 x 8 grid now starts at (3, 5)
    assert dc_step(pil_to_tensor(shifted)) == 10  # Pillow's luminance DC step at quality 70


def test_no_trace_without_jpeg_or_after_what_erases_it(photos):
    im = photos[0]
    assert jpeg_quality(pil_to_tensor(im)) is None  # never compressed
    j = jpeg(im, 60)
    assert jpeg_quality(pil_to_tensor(j.resize((180, 180), Image.Resampling.BICUBIC))) is None
    assert jpeg_quality(pil_to_tensor(j.filter(ImageFilter.GaussianBlur(1.0)))) is None
    assert jpeg_quality(torch.zeros(3, 20, 20)) is None  # too small to read
    assert jpeg_quality(torch.ones(3, 64, 64)) is None  # all clipped: no block to read


def test_a_heavy_jpeg_selects_the_strict_thresholds_whatever_the_snr():
    assert thresholds_for(1.2, 70) == STRICT
    assert thresholds_for(1.2, 75) == STRICT
    assert thresholds_for(1.2, 80) == TamperThresholds()
    assert thresholds_for(1.2, None) == TamperThresholds()
    assert thresholds_for(0.5, None) == STRICT


@pytest.mark.parametrize("name", ["126007.jpg", "14037.jpg"])
def test_an_unedited_photo_after_jpeg_70_is_not_called_edited(name, datasets):
    """Two val photos (bsds500 at 256 px, the tamper evaluation's protocol) whose skies read as
    edited after JPEG 70 when the SNR alone chose the thresholds."""
    from clrnet.api import inspect, protect
    from clrnet.files.datasets import bring_to

    original = bring_to(Image.open(datasets / "val" / "bsds500" / name).convert("RGB"), "256")
    found = inspect(jpeg(protect(original, "clrnet-v2"), 70), "clrnet-v2", original_size=(256, 256))
    assert found.payload and found.tampered is False
