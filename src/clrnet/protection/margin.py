"""The payload's margin, checked at protect time: does it survive the usual path?

A large photo carries a long payload at the inner code's rate 1/2, one block per
coded bit. Where the photo's own texture fills the carrier's band everywhere (a
stony field, a gravel road in full sun), a crop of it reads more of its bits
wrong than the code corrects, and the payload is lost though the
pilots stand out clearly. The protector therefore tries its payload on the
path such a photo takes, the whole protected photo downscaled to its working
frame (a 2048 px long side) and through JPEG 85, read from the four corner
windows of a 40 % crop; if any fails, the photo is protected with the robust
layout instead (each coded bit in ``reps`` blocks: half the thumbnail, twice
the copies), which the decoder tries when the first fails.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

from PIL import Image
from torch import Tensor

from clrnet.core.image import luminance
from clrnet.payload import channel

PATH_QUALITY = 85  # the JPEG of the path the margin is checked on (issue 7: 75-90)
PATH_AREA = 0.40  # the crop's area the windows keep
# a window whose raw bit error rate is at most this decodes without trying: the inner code
# (rate 1/2, constraint length 7) corrects about 8 % (``payload.inner``)
SURE_BER = 0.03


def through_jpeg(image: Image.Image, quality: int = PATH_QUALITY) -> Tensor:
    """``image`` through Pillow's JPEG, back as (3, H, W) in [0, 1]."""
    from clrnet.core.image import pil_to_tensor

    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return pil_to_tensor(Image.open(buf).convert("RGB"))


def corner_windows(height: int, width: int, area: float = PATH_AREA) -> list[tuple[int, int, int, int]]:
    """(y0, x0, h, w) of the four corner windows of ``area`` of the frame, its aspect kept."""
    s = math.sqrt(area)
    h, w = max(1, round(height * s)), max(1, round(width * s))
    return [(y0, x0, h, w) for y0 in (0, height - h) for x0 in (0, width - w)]


def survives(protected: Tensor, layout: channel.Layout, bits: Tensor,
             decode: Callable[[channel.Soft, channel.Layout], bytes | None]) -> bool:
    """Whether the coded ``bits`` a photo was ``protected`` (3, H, W) with in ``layout``
    decode from each corner window after the path: downscaled to the working frame by
    Pillow's Lanczos filter, JPEG 85. ``decode`` is the protector's soft decoder.

    (Lanczos, as a real path would: the decoder's own triangle filter blurs the carrier
    more, and the check then failed photos whose crops decode.)"""
    from clrnet.core.image import tensor_to_pil

    small = tensor_to_pil(protected).resize((layout.width, layout.height), Image.Resampling.LANCZOS)
    received = through_jpeg(small)
    for soft in window_softs(layout, received):
        if float(((soft.sums > 0).to(bits.dtype) != bits).float().mean()) > SURE_BER and decode(soft, layout) is None:
            return False
    return True


def window_softs(layout: channel.Layout, received: Tensor, area: float = PATH_AREA) -> list[channel.Soft]:
    """The soft bits of each corner window of a received working frame (3, H, W): the
    whole frame demodulated once, each window's bits summed from its part of it (the
    filters' edges aside, what demodulating the window alone gives, in a quarter of
    the time)."""
    q = channel.demodulate(layout, luminance(received[None])[0, 0], 0, 0, received).block_scores
    return [channel.soft_bits(layout, q[y0:y0 + h, x0:x0 + w], y0, x0)
            for y0, x0, h, w in corner_windows(received.shape[-2], received.shape[-1], area)]
