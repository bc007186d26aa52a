"""The inner code: a rate-1/2 convolutional code decoded with soft Viterbi (scikit-commpy).

Reed-Solomon works on hard bytes; the channel gives soft bits whose
reliability varies (how many blocks fed each, how textured they were). A
convolutional code (constraint length 7, the (171, 133) octal generators of
CCSDS / 802.11) decoded on the soft sums turns a raw bit error rate of about
8 % into almost none; the outer Reed-Solomon code cleans up what is left. The
classic concatenation of deep-space links, here over a photo.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

MEMORY = 6  # constraint length 7
GENERATORS = (0o171, 0o133)


@lru_cache(maxsize=1)
def _trellis():
    from commpy.channelcoding import Trellis

    return Trellis(np.array([MEMORY]), np.array([list(GENERATORS)]))


def info_bits(coded_bits: int) -> int:
    """Information bits (a multiple of 8) that fit ``coded_bits`` with the zero tail."""
    return max(0, (coded_bits // 2 - MEMORY) // 8 * 8)


def encode(bits: Tensor, coded_bits: int) -> Tensor:
    """Convolutionally encode ``bits`` (0/1) with a zero tail, padded with zeros to
    ``coded_bits``."""
    from commpy.channelcoding import conv_encode

    msg = np.concatenate([bits.numpy().astype(np.int64), np.zeros(MEMORY, np.int64)])
    coded = conv_encode(msg, _trellis(), "cont")
    if len(coded) > coded_bits:
        raise ValueError(f"{len(bits)} bits need {len(coded)} coded bits, have {coded_bits}")
    out = np.zeros(coded_bits, np.uint8)
    out[:len(coded)] = coded
    return torch.from_numpy(out)


def decode(soft: Tensor, n_info: int) -> Tensor:
    """Soft Viterbi: ``soft`` (positive = 1, magnitude = confidence, 0 = unknown) of the
    coded bits -> ``n_info`` information bits."""
    from commpy.channelcoding import viterbi_decode

    n_coded = 2 * (n_info + MEMORY)
    s = soft[:n_coded].double().numpy()
    scale = np.sqrt(np.mean(s[s != 0] ** 2)) if np.any(s != 0) else 1.0
    r = np.clip(s / scale, -4, 4)
    out = viterbi_decode(r, _trellis(), tb_depth=5 * (MEMORY + 1), decoding_type="unquantized")
    return torch.from_numpy(np.asarray(out[:n_info], dtype=np.uint8))
