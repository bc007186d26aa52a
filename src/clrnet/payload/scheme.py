"""The payload scheme: where the coded bits sit (layouts), at which rate, how a message
is framed, coded and whitened, and how soft bits are decoded back to a message.

Everything here takes explicit inputs (seeds and layout constants, not a key or a model
config), so the protector and the reader share one description of the channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from clrnet.core.image import tensor_to_pil
from clrnet.payload import channel, codec, ecc, inner
from clrnet.payload.size_field import pack_size, pack_size_short, size_field_bytes, unpack_size
from clrnet.sync.frame import working_size

# candidates of the list Viterbi decoder a short (CRC-24) payload is checked against: a
# random word passes one of them about once in 500 000 tries
LIST_SIZE = 32


@dataclass(frozen=True)
class PayloadScheme:
    """The channel's constants: blocks, repetitions and rates by working level, Reed-Solomon
    parity, and the seeds of the layout and of the key's whitening (None: no key)."""

    block: int = 4
    rs_parity: float = 0.12
    reps: dict[int, int] = field(default_factory=dict)  # blocks per coded bit by working level (else 1)
    robust_reps: int = 2  # the robust layout's blocks per bit (1: never)
    robust_from_level: int = 1536
    margin_rate: dict[int, str] = field(default_factory=dict)  # a higher rate tried first, by level
    code_rate: dict[int, str] = field(default_factory=dict)  # the inner code's rate by level (else "1/2")
    layout_seed: int = channel.Layout.seed
    whiten_seed: int | None = None

    # -- layouts ---------------------------------------------------------------
    def layout(self, width: int, height: int, robust: bool = False) -> channel.Layout:
        """Where the coded bits sit; ``robust``: the layout a photo whose payload failed its
        check at protect time carries (``protection.margin``): the same pilots, each bit in
        ``robust_reps`` blocks."""
        level = max(width, height)
        reps = self.robust_reps if robust else self.reps.get(level, 1)
        return channel.Layout(width, height, channel.tile_for_level(level, self.block), block=self.block,
                              reps=reps, seed=self.layout_seed)

    def has_robust(self, level: int) -> bool:
        """Whether photos worked at ``level`` may carry the robust layout."""
        return self.robust_reps > self.reps.get(level, 1) and level >= self.robust_from_level

    def layouts(self, width: int, height: int) -> list[channel.Layout]:
        """The layouts a photo of this working frame may carry, most capacity first: the
        level's higher rate (``margin_rate``), its own, the robust layout. The protector
        takes the first whose payload passes its check; the decoder tries them in this order."""
        level = max(width, height)
        first = self.layout(width, height)
        out = [replace(first, rate=self.margin_rate[level])] if level in self.margin_rate else []
        out.append(first)
        if self.has_robust(level):
            out.append(self.layout(width, height, robust=True))
        return out

    def rate(self, layout: channel.Layout) -> str:
        """The inner code's rate in this layout (by default, its working level's)."""
        return layout.rate or self.code_rate.get(max(layout.width, layout.height), "1/2")

    def plan(self, layout: channel.Layout) -> ecc.Plan:
        return ecc.plan(inner.info_bits(layout.n_bits, self.rate(layout)) // 8, self.rs_parity)

    def capacity(self, width: int, height: int) -> int:
        """Message bytes a photo of this size carries."""
        return self.plan(self.layout(*working_size(width, height))).message

    def thumbnail_budget(self, width: int, height: int) -> int:
        """Bytes of the message the thumbnail gets (the rest: the frame's size)."""
        n = self.capacity(width, height)
        return n - size_field_bytes(n)

    # -- encoding ----------------------------------------------------------------
    def whitening(self, n_bits: int) -> Tensor | None:
        """The key's stream (0/1) XORed onto the coded payload bits (None: no key)."""
        if self.whiten_seed is None:
            return None
        g = torch.Generator().manual_seed(self.whiten_seed)
        return torch.randint(0, 2, (n_bits,), generator=g, dtype=torch.uint8)

    def coded_bits(self, work: Tensor, layout: channel.Layout) -> Tensor:
        """The coded bits carrying a working-frame photo (3, h, w): its exact size first (if
        there is room: it fixes the box's normalisation), then its thumbnail."""
        p = self.plan(layout)
        _, h, w = work.shape
        k = size_field_bytes(p.message)
        size = pack_size(w, h) if k == 2 else pack_size_short(w, h)
        # the thumbnail is planned for the size the decoder reads (1 byte: the shape to 1/127)
        thumb = codec.encode_message(tensor_to_pil(work), p.message - k, frame=unpack_size(size, max(w, h)))
        message = size + thumb
        if p.short:  # a short plan carries exactly its capacity
            message += bytes(p.message - len(message))
        return self.encode_message(message, layout)

    def encode_message(self, message: bytes, layout: channel.Layout) -> Tensor:
        """The coded bits (n_bits of 0/1) a framed ``message`` is sent as: Reed-Solomon
        or CRC framing, the inner code, the key's whitening."""
        return self.encode_framed(channel.bytes_to_bits(ecc.frame(message, self.plan(layout))), layout)

    def encode_framed(self, bits: Tensor, layout: channel.Layout) -> Tensor:
        """Framed message bits through the inner code and the key's whitening."""
        coded = inner.encode(bits, layout.n_bits, self.rate(layout))
        mask = self.whitening(layout.n_bits)
        return coded if mask is None else coded ^ mask

    # -- decoding ----------------------------------------------------------------
    def soft_values(self, soft: channel.Soft, layout: channel.Layout) -> Tensor:
        """Each coded bit's combined soft value (positive: 1), the key's whitening undone."""
        values = soft.sums / soft.counts.clamp_min(1).sqrt()
        mask = self.whitening(layout.n_bits)
        return values if mask is None else values * (1 - 2 * mask.double())

    def best_codeword(self, soft: channel.Soft, layout: channel.Layout) -> Tensor:
        """The coded bits of the inner decoder's best path, checksum or not."""
        bits = inner.decode(self.soft_values(soft, layout).float(), self.plan(layout).coded * 8, self.rate(layout))
        return self.encode_framed(bits, layout)

    def best_codeword_of(self, soft: channel.Soft, fw: int, fh: int) -> Tensor:
        """:meth:`best_codeword` in whichever of the frame's layouts of ``soft``'s number of
        bits (the rates of :meth:`layouts`) it agrees with best: a payload that failed its
        checksum does not say which rate it was sent at."""
        best: tuple[float, Tensor] | None = None
        for layout in self.layouts(fw, fh):
            if layout.n_bits != soft.sums.numel():
                continue
            code = self.best_codeword(soft, layout)  # as sent: the key's whitening on
            agree = float((soft.sums / soft.counts.clamp_min(1).sqrt() * (2 * code.double() - 1)).sum())
            if best is None or agree > best[0]:
                best = (agree, code)
        assert best is not None
        return best[1]

    def decode_soft(self, soft: channel.Soft, layout: channel.Layout, listed: bool = True) -> bytes | None:
        """The framed message from soft bits (key whitening undone), or None if its checksum
        fails. A short (CRC-24) message that the best path does not give is looked for among
        the list decoder's ``LIST_SIZE`` best if ``listed`` (the pilots say a protection is
        there: the list costs too much for every box a never-protected photo is tried at)."""
        p = self.plan(layout)
        values = self.soft_values(soft, layout)
        n_info, rate = p.coded * 8, self.rate(layout)
        message = ecc.unframe(channel.bits_to_bytes(inner.decode(values.float(), n_info, rate)), p)
        if message is not None or not (p.short and listed):  # found, or no list to try (a Reed-Solomon
            return message  # plan has corrected what it can)
        for bits in inner.decode_list(values.float(), n_info, rate, LIST_SIZE):
            message = ecc.unframe(channel.bits_to_bytes(bits), p)
            if message is not None:
                return message
        return None
