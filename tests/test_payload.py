"""Payload of protection v2: codec, Reed-Solomon framing, the convolutional code and
the tiled channel, each as a round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clrnet.payload import avif, channel, codec, ecc, grid, inner


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


@pytest.mark.parametrize("budget", [3, 6, 9, 20, 29, 35, 84, 128, 129, 160, 640])
def test_message_fits_its_budget_and_decodes(picture, budget):
    msg = codec.encode_message(picture, budget)
    assert len(msg) <= budget
    if budget <= codec.TINY_MAX:  # the fixed-length grid fills its budget exactly
        assert len(msg) == budget
    thumb = codec.decode_message(msg, budget, frame=picture.size)
    assert thumb.mode == "RGB" and min(thumb.size) >= 1
    if budget > codec.TINY_MAX:  # WebP or AVIF from here on: a real thumbnail, not a few pixels
        assert msg[0] in (codec.WEBP, codec.AVIF) and max(thumb.size) >= 8
    if budget >= 640:
        assert max(thumb.size) >= 40


@pytest.mark.parametrize("size, quality", [((24, 24), 50), ((138, 92), 20), ((9, 255), 5), ((255, 170), 70)])
def test_avif_sends_only_the_av1_data_and_rebuilds_pillows_file(picture, size, quality):
    import io

    thumb = picture.resize(size)
    body = avif.encode(thumb, quality)
    whole = io.BytesIO()
    thumb.save(whole, format="AVIF", quality=quality, speed=6)
    assert len(body) == len(whole.getvalue()) - 275  # 267 bytes of boxes, mdat's 8 and the delimiter's 2 gone, w and h added
    assert avif.pack(size[0], size[1], body[2:]) == whole.getvalue()
    back = avif.decode(body)
    assert back.size == size
    expected = np.asarray(Image.open(whole).convert("RGB"), int)
    assert np.array_equal(np.asarray(back, int), expected)  # the very pixels Pillow's own file decodes to


def test_avif_refuses_what_it_cannot_rebuild(picture):
    with pytest.raises(ValueError):
        avif.encode(picture.resize((256, 100)), 30)  # a side over one byte
    for bad in (b"", b"\x05", b"\x05\x05", b"\x00\x05abc", b"\x05\x05" + b"\x00" * 40):
        with pytest.raises(ValueError):
            avif.decode(bad)


def test_the_larger_budgets_send_the_codec_closer_to_the_photo(picture):
    """From 129 bytes WebP and AVIF thumbnails both fit; the one sent is the one whose
    upsampled error against the photo is the smaller."""
    budget = 640
    msg = codec.encode_message(picture, budget)
    errs = {}
    for kind, enc, dec, top, final in codec.CODECS:
        errs[kind] = codec.encode_thumbnail(picture, budget - 1, enc, dec, max_side=top,
                                            qualities=codec.CODEC_QUALITIES[kind], final=final)[0]
    assert msg[0] == min(errs, key=errs.get)


def test_raw_thumbnail_is_exact_to_rgb565():
    arr = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    back = np.asarray(codec.decode_raw(codec.encode_raw(Image.fromarray(arr))), int)
    assert np.abs(back - arr).max() <= 8  # 5/6/5 bits per channel


@pytest.mark.parametrize("shape", [(256, 256), (384, 256), (256, 384)])
@pytest.mark.parametrize("budget", [5, 11, 17, 29])
def test_grid_plan_fills_the_budget_in_the_frames_shape(budget, shape):
    """Every bit of the budget is allocated, the grid has the frame's shape, and more
    bytes never give a coarser grid."""
    p = grid.plan(*shape, 8 * budget)
    assert p.bits == 8 * budget
    assert (p.width >= p.height) == (shape[0] >= shape[1]) or p.width == p.height
    assert abs(p.width / p.height - shape[0] / shape[1]) < 0.5
    assert {c.plane for c in p.coefficients} == {0, 1, 2}  # luma and both chroma planes get bits
    bigger = grid.plan(*shape, 8 * budget + 48)
    assert bigger.width * bigger.height >= p.width * p.height


def _cells(photo: Image.Image, p: grid.GridPlan) -> np.ndarray:
    return np.asarray(photo.resize((p.width, p.height), Image.Resampling.BOX), float)


@pytest.mark.parametrize("shape", [(256, 256), (384, 256), (256, 384)])
@pytest.mark.parametrize("budget", [5, 11, 17])
def test_grid_coefficients_lie_in_their_decoded_intervals(picture, budget, shape):
    """Each coded coefficient of the photo's YCbCr grid (its box means, through an
    orthonormal DCT) lies in the interval the decoder reads for it, and the decoded
    value lies in the interval too."""
    from scipy.fft import dctn

    photo = picture.resize(shape)
    reading = grid.read_grid(grid.encode_grid(photo, budget), *shape)
    ycc = np.moveaxis(_cells(photo, reading.plan) @ grid.YCC.T, -1, 0)
    true = np.stack([dctn(x, norm="ortho") for x in ycc])
    # the box means are taken from 8-bit cells: a rounding of half a level per cell
    slack = 0.5 * np.sqrt(reading.plan.width * reading.plan.height)
    assert np.all(true >= reading.low - slack) and np.all(true <= reading.high + slack)
    assert np.all(reading.values >= reading.low) and np.all(reading.values <= reading.high)
    coded = np.isfinite(reading.low) & np.isfinite(reading.high)
    assert coded.sum() >= 3  # at least the three DCs are bounded on both sides


@pytest.mark.parametrize("budget", [5, 11, 17])
def test_grid_beats_the_four_cells_it_replaces(picture, budget):
    """Upsampled, the grid comes closer to the photo than what 5 bytes carried before (a
    2 x 2 luma grid at 4 bits and the mean chroma at 4 bits), and closer with more bytes;
    from 11 bytes closer than the exact 2 x 2 RGB cells (96 bits)."""
    photo = picture.resize((256, 256))
    a = np.asarray(photo, float)

    def err(cells: np.ndarray) -> float:
        up = Image.fromarray(np.clip(np.round(cells), 0, 255).astype(np.uint8)).resize((256, 256),
                                                                                      Image.Resampling.BICUBIC)
        return float(np.mean((np.asarray(up, float) - a) ** 2))

    exact = np.asarray(photo.resize((2, 2), Image.Resampling.BOX), float)
    ycc = exact @ grid.YCC.T
    ycc[..., 0] = np.round(ycc[..., 0] / 17) * 17
    ycc[..., 1:] = np.round(ycc[..., 1:].mean((0, 1)) / (128 / 15)) * (128 / 15)
    before = ycc @ grid.RGB.T
    got = err(np.asarray(grid.decode_grid(grid.encode_grid(photo, budget), 256, 256), float))
    assert got < err(before)
    if budget > 5:
        assert got < err(exact)
        assert got < err(np.asarray(grid.decode_grid(grid.encode_grid(photo, 5), 256, 256), float))


@pytest.mark.parametrize("colour, tolerance", [((10, 10, 10), 8), ((128, 128, 128), 8), ((240, 240, 240), 8),
                                                ((120, 140, 100), 8), ((90, 160, 220), 8), ((200, 120, 40), 8)])
def test_grid_is_close_on_flat_colours(colour, tolerance):
    """A flat photo comes back within a few levels on average in 5 bytes (no cell more than
    25 off: a 1-bit coefficient is +-half its step, never zero), saturated ones too (a sky,
    an orange wall)."""
    photo = Image.new("RGB", (300, 200), colour)
    thumb = grid.decode_grid(grid.encode_grid(photo, 5), 300, 200)
    err = np.abs(np.asarray(thumb, int) - np.array(colour))
    assert err.mean() <= tolerance and err.max() <= 25


@pytest.mark.parametrize("budget", [5, 11, 17])
def test_a_grey_photo_keeps_a_grey_grid(picture, budget):
    """No colour cast: the chroma planes of a greyscale photo come back grey (chroma DCs
    are centred on grey, chroma coefficients get 2 bits or none)."""
    grey = picture.convert("L").convert("RGB").resize((384, 256))
    reading = grid.read_grid(grid.encode_grid(grey, budget), 384, 256)
    assert np.abs(reading.values[1:]).max() < 1e-9
    assert all(c.bits >= 2 for c in reading.plan.coefficients if c.plane > 0)


def test_grid_needs_the_frame_to_decode(picture):
    msg = codec.encode_message(picture.resize((256, 256)), 5)
    with pytest.raises(ValueError, match="frame"):
        codec.decode_message(msg, 5)


@pytest.mark.parametrize("bad, budget", [(b"", None), (b"\x07abc", 80), (b"\x01RIFFgarbage", 80), (b"\x02\x05\x05garbage", 200),
                                         (b"\x00\x05\x05\x00", 80), (b"\x00\x00\x00\x00", 6)])
def test_corrupt_messages_raise_value_error(bad, budget):
    with pytest.raises(ValueError):
        codec.decode_message(bad, budget)


@pytest.mark.parametrize("coded", [12, 84, 300, 700])
def test_reed_solomon_corrects_up_to_half_the_parity(coded):
    p = ecc.plan(coded, 0.2, short_max=0)
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
    p = ecc.plan(200, 0.2)
    msg = b"hello, cropped world"
    block = bytearray(ecc.frame(msg, p))
    erased = list(range(0, p.nsym))  # as many erasures as parity bytes: still decodable
    for i in erased:
        block[i] = 0
    assert ecc.unframe(bytes(block), p, erasures=erased) == msg
    noise = bytes(np.random.default_rng(1).integers(0, 256, 200, dtype=np.uint8))
    assert ecc.unframe(noise, p) is None


@pytest.mark.parametrize("coded", [6, 9, 22, 100, ecc.SHORT_MAX])
def test_short_plan_is_message_plus_crc24(coded):
    """Small channels: a fixed-length message and a 24-bit CRC, no Reed-Solomon; any
    flipped bit is rejected, never returned."""
    p = ecc.plan(coded, 0.12)
    assert p.short and p.message == coded - 3
    msg = bytes(np.random.default_rng(coded).integers(0, 256, p.message, dtype=np.uint8))
    block = ecc.frame(msg, p)
    assert len(block) == coded and ecc.unframe(block, p) == msg
    for bit in range(8 * coded):
        bad = bytearray(block)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert ecc.unframe(bytes(bad), p) is None
    with pytest.raises(ValueError):
        ecc.frame(msg[:-1], p)
    assert not ecc.plan(ecc.SHORT_MAX + 1, 0.12).short


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


def _path_metric(soft: torch.Tensor, bits: torch.Tensor, n_coded: int) -> float:
    """Correlation of a message's codeword with the decoder's scaled soft values."""
    r = inner._received(soft, bits.numel(), "1/2").reshape(-1)
    return float(((inner.encode(bits, n_coded).double() * 2 - 1)[:r.size].numpy() * r).sum())


def test_list_decoder_is_viterbi_first_and_ranks_by_metric():
    rng = np.random.default_rng(3)
    bits = torch.from_numpy(rng.integers(0, 2, 72).astype(np.uint8))
    coded = inner.encode(bits, 168)
    soft = (coded.double() * 2 - 1) + 1.1 * torch.from_numpy(rng.standard_normal(168))
    cands = list(inner.decode_list(soft, 72, "1/2", 16))
    assert len(cands) == 16 and torch.equal(cands[0], inner.decode(soft, 72))
    assert len({bytes(c.numpy()) for c in cands}) == 16  # distinct paths
    metrics = [_path_metric(soft, c, 168) for c in cands]
    assert all(a >= b - 1e-9 for a, b in zip(metrics, metrics[1:]))  # best first


def test_list_decoder_finds_what_the_best_path_misses():
    """At a noise where the single best path is often wrong, the true message is more
    often among the 16 best: the CRC then picks it (200 seeded trials)."""
    rng = np.random.default_rng(0)
    best = listed = 0
    for _ in range(200):
        bits = torch.from_numpy(rng.integers(0, 2, 72).astype(np.uint8))
        soft = (inner.encode(bits, 168).double() * 2 - 1) + 1.1 * torch.from_numpy(rng.standard_normal(168))
        cands = list(inner.decode_list(soft, 72, "1/2", 16))
        best += torch.equal(cands[0], bits)
        listed += any(torch.equal(c, bits) for c in cands)
    assert listed >= best + 30, (best, listed)


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
    dy, dx, prom = channel.pilot_shift(lay, channel.matched(lum[52:180, 43:171]), 50, 40, 6)
    assert abs(dy - 2) < 0.3 and abs(dx - 3) < 0.3 and prom > 8


def test_shift_correlation_equals_scipys_valid_correlation():
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(5)
    pattern = rng.standard_normal((83, 97)).astype(np.float32)
    window = rng.standard_normal((61, 70)).astype(np.float32)
    ref = fftconvolve(pattern.astype(np.float64), window[::-1, ::-1].astype(np.float64), mode="valid")
    got = channel.correlate_shifts(pattern, window)
    assert got.shape == ref.shape == (23, 28)
    np.testing.assert_allclose(got, ref, atol=1e-3 * np.abs(ref).max())


def test_a_region_of_the_pilot_pattern_equals_that_region_of_the_whole_frame_pattern():
    lay = channel.Layout(256, 192, 56)
    m = 40  # the whole frame and beyond its sides (a window may stick out of the frame)
    roles, _ = channel.block_grid(lay, -m, -m, 192 + 2 * m, 256 + 2 * m)
    whole = channel.whiten(channel.unit_pattern(lay, -m, -m, 192 + 2 * m, 256 + 2 * m)
                           * (roles == -1).float()).numpy()
    for y0, x0, h, w in [(30, 40, 100, 120), (0, 0, 17, 9), (-20, -30, 60, 70), (150, 200, 60, 80)]:
        region = channel.pilot_pattern(lay, y0, x0, h, w)
        assert region.shape == (h, w)
        # exact, edges included: the whitening blur sees the same neighbours as in the whole frame
        np.testing.assert_allclose(region, whole[y0 + m:y0 + m + h, x0 + m:x0 + m + w], atol=1e-6)


def test_block_signs_depend_only_on_position():
    lay_a, lay_b = channel.Layout(300, 200, 56), channel.Layout(301, 199, 56)
    _, sa = channel.block_grid(lay_a, 10, 20, 50, 60)
    _, sb = channel.block_grid(lay_b, 10, 20, 50, 60)
    assert torch.equal(sa, sb)  # a frame size off by a pixel reads the same signs


def commpy_trellis():
    """scikit-commpy's trellis of our code: the reference the encoder and decoder are checked on."""
    from commpy.channelcoding import Trellis

    return Trellis(np.array([inner.MEMORY]), np.array([list(inner.GENERATORS)]))


def test_trellis_tables_equal_commpys():
    t = commpy_trellis()
    for s in range(t.number_states):
        for u in range(2):
            assert inner._branch(s, u) == (int(t.next_state_table[s, u]), int(t.output_table[s, u]))


@pytest.mark.parametrize("n", [1, 8, 333])
def test_convolutional_encoder_equals_commpys(n):
    from commpy.channelcoding import conv_encode

    bits = torch.from_numpy(np.random.default_rng(n).integers(0, 2, n).astype(np.uint8))
    msg = np.concatenate([bits.numpy().astype(np.int64), np.zeros(inner.MEMORY, np.int64)])
    ref = conv_encode(msg, commpy_trellis(), "cont").astype(np.uint8)
    got = inner.encode(bits, len(ref) + 5)
    assert np.array_equal(got[:len(ref)].numpy(), ref) and not got[len(ref):].any()


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
        ref = np.asarray(viterbi_decode(r, commpy_trellis(), tb_depth=35, decoding_type="unquantized"))[:n]
        theirs += int((torch.from_numpy(ref.astype(np.uint8)) != bits).sum())
    assert ours <= theirs


@pytest.mark.parametrize("rate", ["2/3", "3/4"])
def test_punctured_code_round_trips_and_corrects_mild_noise(rate):
    """Puncturing sends fewer coded bits for the same information: more bits fit, and
    mild soft noise is still corrected."""
    assert inner.info_bits(384, rate) > inner.info_bits(384, "1/2")
    n = inner.info_bits(384, rate)
    rng = np.random.default_rng(3)
    bits = torch.from_numpy(rng.integers(0, 2, n).astype(np.uint8))
    coded = inner.encode(bits, 384, rate)
    assert coded.numel() == 384
    assert torch.equal(inner.decode(coded.float() * 2 - 1, n, rate), bits)
    soft = (coded.float() * 2 - 1) + 0.45 * torch.from_numpy(rng.standard_normal(384)).float()
    assert int(((soft > 0).to(torch.uint8) != coded).sum()) > 0
    assert torch.equal(inner.decode(soft, n, rate), bits)


@pytest.mark.parametrize("shape", [(1536, 2048), (3, 40, 33), (2, 3, 5), (4, 2), (1, 1)])
def test_whitening_by_opencv_equals_the_5x5_binomial_convolution(shape):
    """``channel.whiten`` (OpenCV's separable filter on plain CPU tensors) against the
    5 x 5 binomial kernel applied by torch, reflected edges (replicated below 3 px), and
    the torch path itself where a gradient is needed."""
    import torch.nn.functional as F

    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    k = (k1[:, None] * k1[None, :]).view(1, 1, 5, 5)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    x4 = x.reshape(-1, 1, *shape[-2:])
    mode = "reflect" if min(shape[-2:]) > 2 else "replicate"
    ref = (x4 - F.conv2d(F.pad(x4, (2, 2, 2, 2), mode=mode), k)).reshape(shape)
    assert torch.allclose(channel.whiten(x), ref, atol=1e-6)
    g = x.clone().requires_grad_(True)
    out = channel.whiten(g)
    assert torch.allclose(out.detach(), ref, atol=1e-6)
    out.sum().backward()
    assert g.grad is not None


def test_soft_bits_of_a_slice_are_the_windows_own():
    """A window's soft bits summed from a slice of a larger window's products equal
    those of demodulating the window's products alone (the margin check reads four
    windows from one demodulation)."""
    layout = channel.Layout(512, 384, channel.tile_for_level(512))
    g = torch.Generator().manual_seed(3)
    bits = torch.randint(0, 2, (layout.n_bits,), generator=g, dtype=torch.uint8)
    lum = 0.5 + 0.02 * channel.embed(layout, bits) + 0.01 * torch.randn(384, 512, generator=g)
    whole = channel.demodulate(layout, lum, 0, 0)
    y0, x0, h, w = 37, 101, 250, 300
    part = channel.soft_bits(layout, whole.block_scores[y0:y0 + h, x0:x0 + w], y0, x0)
    own = channel.soft_bits(layout, channel.demodulate(layout, lum[y0:y0 + h, x0:x0 + w], y0, x0).block_scores, y0, x0)
    assert torch.equal(part.counts, own.counts)
    assert torch.corrcoef(torch.stack([part.sums, own.sums]))[0, 1] > 0.98
    assert bool(((part.sums > 0).to(torch.uint8) == bits).float().mean() > 0.99)
