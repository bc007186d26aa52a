"""Payload of protection v2: codec, Reed-Solomon framing, the convolutional code and
the tiled channel, each as a round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clrnet.payload import channel, codec, ecc, inner


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def test_webp_round_trip_drops_and_rebuilds_the_riff_header(picture):
    body = codec.encode_webp(picture.resize((24, 24)), 50)
    assert not body.startswith(b"RIFF")
    back = codec.decode_webp(body)
    assert back.size == (24, 24)
    err = np.abs(np.asarray(back, float) - np.asarray(picture.resize((24, 24)), float)).mean()
    assert err < 20


@pytest.mark.parametrize("budget", [3, 9, 20, 35, 84, 160, 640])
def test_message_fits_its_budget_and_decodes(picture, budget):
    msg = codec.encode_message(picture, budget)
    assert len(msg) <= budget
    thumb = codec.decode_message(msg)
    assert thumb.mode == "RGB" and min(thumb.size) >= 1
    if budget >= 84:  # WebP from here on: a real thumbnail, not a few pixels
        assert msg[0] == codec.WEBP and max(thumb.size) >= 8
    if budget >= 640:
        assert max(thumb.size) >= 40


def test_raw_thumbnail_is_exact_to_rgb565():
    arr = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    back = np.asarray(codec.decode_raw(codec.encode_raw(Image.fromarray(arr))), int)
    assert np.abs(back - arr).max() <= 8  # 5/6/5 bits per channel


@pytest.mark.parametrize("bad", [b"", b"\x07abc", b"\x01RIFFgarbage", b"\x00\x05\x05\x00"])
def test_corrupt_messages_raise_value_error(bad):
    with pytest.raises(ValueError):
        codec.decode_message(bad)


@pytest.mark.parametrize("coded", [12, 84, 300, 700])
def test_reed_solomon_corrects_up_to_half_the_parity(coded):
    p = ecc.plan(coded, 0.2)
    rng = np.random.default_rng(coded)
    msg = bytes(rng.integers(0, 256, p.message, dtype=np.uint8))
    block = bytearray(ecc.frame(msg, p))
    assert len(block) == coded
    assert ecc.unframe(bytes(block), p) == msg
    per_chunk = coded // p.chunks
    for c in range(p.chunks):  # nsym // 2 errors in every chunk
        for i in rng.choice(per_chunk, p.nsym // 2, replace=False):
            block[c * per_chunk + int(i)] ^= 0x5A
    assert ecc.unframe(bytes(block), p) == msg


def test_reed_solomon_uses_erasures_and_rejects_too_many_errors():
    p = ecc.plan(100, 0.2)
    msg = b"hello, cropped world"
    block = bytearray(ecc.frame(msg, p))
    erased = list(range(0, p.nsym))  # as many erasures as parity bytes: still decodable
    for i in erased:
        block[i] = 0
    assert ecc.unframe(bytes(block), p, erasures=erased) == msg
    noise = bytes(np.random.default_rng(1).integers(0, 256, 100, dtype=np.uint8))
    assert ecc.unframe(noise, p) is None


def test_frame_refuses_a_message_over_capacity():
    p = ecc.plan(40, 0.2)
    with pytest.raises(ValueError):
        ecc.frame(bytes(p.message + 1), p)


def test_convolutional_code_corrects_soft_noise():
    rng = np.random.default_rng(0)
    bits = torch.from_numpy(rng.integers(0, 2, 400).astype(np.uint8))
    coded = inner.encode(bits, 900)
    assert coded.numel() == 900 and int(coded[2 * (400 + inner.MEMORY):].sum()) == 0
    soft = (coded.float() * 2 - 1) + 0.6 * torch.from_numpy(rng.standard_normal(900)).float()
    raw_errors = int(((soft > 0).to(torch.uint8) != coded).sum())
    assert raw_errors > 20  # the channel does flip bits ...
    assert torch.equal(inner.decode(soft, 400), bits)  # ... and the code corrects them
    soft[::7] = 0  # unknown bits (never observed) are fine too
    assert torch.equal(inner.decode(soft, 400), bits)


def test_channel_round_trip_without_host_is_exact():
    lay = channel.Layout(200, 150, 56)
    bits = torch.from_numpy(np.random.default_rng(2).integers(0, 2, lay.n_bits).astype(np.uint8))
    pattern = channel.embed(lay, bits)
    assert pattern.shape == (150, 200)
    assert abs(float(pattern.pow(2).mean().sqrt()) - 1) < 0.2
    lum = 0.5 + 0.01 * pattern
    soft = channel.demodulate(lay, lum, 0, 0)
    got, erasures = channel.hard_bits(soft)
    assert torch.equal(got, bits) and not erasures
    assert soft.pilot > 10


@pytest.mark.parametrize("y0,x0", [(0, 0), (37, 61), (94, 143)])
def test_any_window_a_tile_wide_holds_every_bit(y0, x0):
    lay = channel.Layout(256, 200, 56)
    bits = torch.from_numpy(np.random.default_rng(3).integers(0, 2, lay.n_bits).astype(np.uint8))
    lum = 0.5 + 0.01 * channel.embed(lay, bits)
    win = lum[y0:y0 + 60, x0:x0 + 60]
    soft = channel.demodulate(lay, win, y0, x0)
    got, erasures = channel.hard_bits(soft)
    assert not erasures and torch.equal(got, bits)


def test_pilot_shift_finds_a_subpixel_offset():
    lay = channel.Layout(256, 256, 56)
    bits = torch.zeros(lay.n_bits, dtype=torch.uint8)
    lum = 0.5 + 0.02 * channel.embed(lay, bits)
    # the window we hand over starts 3 px right and 2 px below where we claim it does
    dy, dx, prom = channel.pilot_shift(lay, lum[52:180, 43:171], 50, 40, 6)
    assert abs(dy - 2) < 0.3 and abs(dx - 3) < 0.3 and prom > 8


def test_block_signs_depend_only_on_position():
    lay_a, lay_b = channel.Layout(300, 200, 56), channel.Layout(301, 199, 56)
    _, sa = channel.block_grid(lay_a, 10, 20, 50, 60)
    _, sb = channel.block_grid(lay_b, 10, 20, 50, 60)
    assert torch.equal(sa, sb)  # a frame size off by a pixel reads the same signs


def test_vectorised_viterbi_matches_commpys_decoder():
    """Our decoder (commpy's trellis, vectorised) against commpy's own soft Viterbi:
    exact without noise, and no more errors with it."""
    from commpy.channelcoding import viterbi_decode

    rng = np.random.default_rng(7)
    n = 400
    bits = torch.from_numpy(rng.integers(0, 2, n).astype(np.uint8))
    coded = inner.encode(bits, 2 * (n + inner.MEMORY))
    clean = coded.double() * 2 - 1
    assert torch.equal(inner.decode(clean, n), bits)
    ours = theirs = 0
    for _ in range(4):
        soft = clean + torch.from_numpy(rng.normal(0, 0.85, len(coded)))
        ours += int((inner.decode(soft, n) != bits).sum())
        s = soft.numpy()
        r = np.clip(s / np.sqrt(np.mean(s ** 2)), -4, 4)
        ref = np.asarray(viterbi_decode(r, inner._trellis(), tb_depth=35, decoding_type="unquantized"))[:n]
        theirs += int((torch.from_numpy(ref.astype(np.uint8)) != bits).sum())
    assert ours <= theirs
