"""The inner code: a rate-1/2 convolutional code, soft Viterbi (checked against scikit-commpy).

Reed-Solomon works on hard bytes; the channel gives soft bits whose
reliability varies (how many blocks fed each, how textured they were). A
convolutional code (constraint length 7, the (171, 133) octal generators of
CCSDS / 802.11) decoded on the soft sums turns a raw bit error rate of about
8 % into almost none; the outer Reed-Solomon code cleans up what is left. The
classic concatenation of deep-space links, here over a photo.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

MEMORY = 6  # constraint length 7
GENERATORS = (0o171, 0o133)
# puncturing patterns over the rate-1/2 stream (802.11's): 1 = sent, 0 = left out
PUNCTURE = {"1/2": (1, 1), "2/3": (1, 1, 1, 0), "3/4": (1, 1, 1, 0, 0, 1)}


def _branch(state: int, u: int) -> tuple[int, int]:
    """Next state and the two coded bits (as ``first * 2 + second``) from ``state`` on input
    ``u``, in commpy's numbering (the latest input in the state's top bit): its trellis
    tables, built here because importing commpy (it imports sympy) slowed every
    inspect's start."""
    older = int(format(state, f"0{MEMORY}b")[::-1], 2)  # bit i: the input i + 1 steps ago
    register = u | (older << 1)  # bit i: the input i steps ago, as the generators' bits
    first, second = (bin(g & register).count("1") & 1 for g in GENERATORS)
    return (u << (MEMORY - 1)) | (state >> 1), first * 2 + second


def _kept(n_mother: int, rate: str) -> np.ndarray:
    """Which of the first ``n_mother`` rate-1/2 coded bits a ``rate`` code sends."""
    pattern = np.array(PUNCTURE[rate], dtype=bool)
    return np.resize(pattern, n_mother)


def _kept_count(n_mother: int, rate: str) -> int:
    """How many of the first ``n_mother`` coded bits a ``rate`` code sends (``_kept(...).sum()``
    without building the mask: the plan of a large frame asks for it thousands of times)."""
    pattern = PUNCTURE[rate]
    whole, rest = divmod(n_mother, len(pattern))
    return whole * sum(pattern) + sum(pattern[:rest])


@lru_cache(maxsize=None)
def info_bits(coded_bits: int, rate: str = "1/2") -> int:
    """Information bits (a multiple of 8) that fit ``coded_bits`` with the zero tail."""
    n = max(0, (coded_bits // 2 - MEMORY) // 8 * 8)
    while rate != "1/2" and _kept_count(2 * (n + 8 + MEMORY), rate) <= coded_bits:
        n += 8
    return n


def _taps(generator: int) -> np.ndarray:
    """The generator's taps, delay 0 first (commpy's register order: its lowest bit)."""
    return np.array([(generator >> i) & 1 for i in range(MEMORY + 1)], dtype=np.int64)


def encode(bits: Tensor, coded_bits: int, rate: str = "1/2") -> Tensor:
    """Convolutionally encode ``bits`` (0/1) with a zero tail, punctured to ``rate``,
    padded with zeros to ``coded_bits``. Each output stream is the message convolved
    with its generator's taps, mod 2 (commpy's ``conv_encode`` bit for bit, tested; it
    steps the register in Python, slow for a large frame's payload)."""
    msg = np.concatenate([bits.numpy().astype(np.int64), np.zeros(MEMORY, np.int64)])
    streams = [np.convolve(msg, _taps(g))[:len(msg)] % 2 for g in GENERATORS]
    coded = np.stack(streams, 1).reshape(-1).astype(np.uint8)
    coded = coded[_kept(len(coded), rate)]
    if len(coded) > coded_bits:
        raise ValueError(f"{len(bits)} bits need {len(coded)} coded bits, have {coded_bits}")
    out = np.zeros(coded_bits, np.uint8)
    out[:len(coded)] = coded
    return torch.from_numpy(out)


@lru_cache(maxsize=1)
def _predecessors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every state, its two predecessor states, the input bit that leads from each,
    and the sign (+-1) of each of the two coded bits on that branch: read from
    the trellis, so the decoder follows exactly the encoder's tables."""
    n = 1 << MEMORY
    pred = [[] for _ in range(n)]
    for s in range(n):
        for u in range(2):
            nxt, o = _branch(s, u)
            pred[nxt].append((s, u, ((o >> 1) & 1) * 2 - 1, (o & 1) * 2 - 1))
    states = np.array([[p[0] for p in ps] for ps in pred])
    inputs = np.array([[p[1] for p in ps] for ps in pred], dtype=np.uint8)
    signs = np.array([[[p[2], p[3]] for p in ps] for ps in pred], dtype=np.float64)  # (n, 2, 2)
    return states, inputs, signs


def _received(soft: Tensor, n_info: int, rate: str) -> np.ndarray:
    """The soft values of the mother code's coded bits, (n_info + MEMORY, 2), scaled to unit
    rms and clipped to +-4; bits a punctured ``rate`` left out are 0 (unknown)."""
    n_coded = 2 * (n_info + MEMORY)
    kept = _kept(n_coded, rate)
    sent = soft[:int(kept.sum())].double().numpy()
    s = np.zeros(n_coded)
    s[np.flatnonzero(kept)[:len(sent)]] = sent
    scale = np.sqrt(np.mean(s[s != 0] ** 2)) if np.any(s != 0) else 1.0
    return np.clip(s / scale, -4, 4).reshape(-1, 2)


def decode_list(soft: Tensor, n_info: int, rate: str = "1/2", size: int = 16) -> Iterator[Tensor]:
    """The ``size`` most likely messages, best first, each traced back only when asked
    for (parallel list Viterbi: each state keeps its ``size`` best paths). With a
    checksum, the first candidate that passes is taken: a decoder that gives up only
    when none of them passes corrects noticeably more than one that stops at the single
    best path (CRC-aided list decoding, as in 5G's polar codes), at ``size`` times the
    (small) chance of a random word passing.
    ``size=1`` is :func:`decode`."""
    r = _received(soft, n_info, rate)
    states, inputs, signs = _predecessors()
    n_states, steps = states.shape[0], r.shape[0]
    metric = np.full((n_states, size), -np.inf)
    metric[0, 0] = 0.0
    back = np.zeros((steps, n_states, size), dtype=np.int32)  # 2 * place in the predecessor's list + branch
    for t in range(steps):
        cand = metric[states] + (signs @ r[t])[:, :, None]  # (n_states, 2, size)
        flat = cand.transpose(0, 2, 1).reshape(n_states, 2 * size)  # index: place * 2 + branch
        order = np.argpartition(-flat, size - 1, axis=1)[:, :size]  # each state's best, unordered
        back[t] = order
        metric = np.take_along_axis(flat, order, axis=1)
    for k0 in np.argsort(-metric[0], kind="stable"):
        if not np.isfinite(metric[0, k0]):
            return
        bits = np.zeros(steps, dtype=np.uint8)
        state, k = 0, int(k0)
        for t in range(steps - 1, -1, -1):
            idx = back[t, state, k]
            j, k = idx % 2, idx // 2
            bits[t] = inputs[state, j]
            state = states[state, j]
        yield torch.from_numpy(bits[:n_info].copy())


def decode(soft: Tensor, n_info: int, rate: str = "1/2") -> Tensor:
    """Soft Viterbi: ``soft`` (positive = 1, magnitude = confidence, 0 = unknown) of the
    coded bits -> ``n_info`` information bits. Maximum correlation over the trellis
    from and back to the zero state (the zero tail), vectorised over the 64 states
    (commpy's own decoder loops in Python: seconds for a 2048 px frame's payload).
    Bits a punctured ``rate`` left out are unknown (0)."""
    r = _received(soft, n_info, rate)
    states, inputs, signs = _predecessors()
    n_states = states.shape[0]
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    steps = r.shape[0]
    choice = np.zeros((steps, n_states), dtype=np.uint8)
    for t in range(steps):
        cand = metric[states] + signs @ r[t]  # (n_states, 2)
        j = np.argmax(cand, axis=1)
        choice[t] = j
        metric = cand[np.arange(n_states), j]
    bits = np.zeros(steps, dtype=np.uint8)
    state = 0
    for t in range(steps - 1, -1, -1):
        j = choice[t, state]
        bits[t] = inputs[state, j]
        state = states[state, j]
    return torch.from_numpy(bits[:n_info].copy())
