"""The recovery made consistent with the thumbnail's measurements (reconstruction/consistency.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clrnet.core.geometry import box_mask
from clrnet.core.image import pil_to_tensor
from clrnet.core.metrics import psnr
from clrnet.payload import codec, grid
from clrnet.recovery.consistency import PlaneBounds, box_matrix, project, thumbnail_bounds
from clrnet.recovery.paint import paint, upsample


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS)


@pytest.mark.parametrize("n, cells", [(256, 4), (256, 3), (171, 4), (100, 7)])
def test_box_matrix_equals_pillows_box_resize(n, cells):
    """Rows average the pixels each cell covers, as Pillow's BOX filter does."""
    row = np.random.default_rng(n).integers(0, 256, (1, n)).astype(np.float32)
    want = np.asarray(Image.fromarray(row, mode="F").resize((cells, 1), Image.Resampling.BOX))[0]
    np.testing.assert_allclose(box_matrix(n, cells) @ row[0], want, atol=1e-3)


def _rgb_bounds(img: np.ndarray, cells: tuple[int, int], tol: float) -> list[PlaneBounds]:
    a = np.asarray(Image.fromarray(img).resize(cells, Image.Resampling.BOX), float)
    eye = np.eye(3)
    return [PlaneBounds(eye[k], eye[k], False, a[..., k] - tol, a[..., k] + tol) for k in range(3)]


def test_projection_meets_the_cell_means_and_leaves_the_kept_part(photo):
    """From a grey guess, the cut-away part is moved until every cell with a fair share
    cut away has the photo's mean (within the tolerance); kept pixels stay bit for bit."""
    img = np.asarray(photo)
    truth = pil_to_tensor(photo)
    keep = box_mask((0.3, 0.25, 0.8, 0.75), 256, 256)[None]
    guess = truth * keep + 0.5 * (1 - keep)
    bounds = _rgb_bounds(img, (8, 8), 2.0)
    out = project(guess, keep, bounds, iterations=40)
    k = keep.bool().expand_as(out)
    assert torch.equal(out[k], guess[k])
    means = np.asarray(Image.fromarray((out.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
                       .resize((8, 8), Image.Resampling.BOX), float)
    want = np.asarray(Image.fromarray(img).resize((8, 8), Image.Resampling.BOX), float)
    share = box_matrix(256, 8) @ (1 - keep[0].numpy()) @ box_matrix(256, 8).T
    ok = share > 0.3
    assert np.abs(means - want)[ok].max() <= 2.0 + 1.0  # tolerance + rounding
    assert psnr(out, truth, 1 - keep) > psnr(guess, truth, 1 - keep) + 3


def test_a_frame_inside_its_bounds_is_returned_unchanged(photo):
    truth = pil_to_tensor(photo)
    keep = box_mask((0.1, 0.1, 0.6, 0.6), 256, 256)[None]
    bounds = _rgb_bounds(np.asarray(photo), (6, 6), 3.0)
    assert torch.allclose(project(truth, keep, bounds), truth, atol=1e-6)


def test_nothing_cut_nothing_changed(photo):
    truth = pil_to_tensor(photo)
    keep = torch.ones(1, 256, 256)
    assert torch.equal(project(truth, keep, _rgb_bounds(np.asarray(photo), (4, 4), 0.0)), truth)


@pytest.mark.parametrize("budget", [5, 11])
def test_grid_bounds_correct_an_inpainting(photo, budget):
    """An inpainting of the kept part alone (harmonic continuation) does not know what the
    grid measured; moved into the grid's coefficient intervals its cut-away part comes
    closer to the photo. The plainly upsampled grid is inside them already."""
    truth = pil_to_tensor(photo)
    msg = codec.encode_message(photo, budget)
    bounds = thumbnail_bounds(msg, (256, 256))
    assert len(bounds) == 3 and all(b.dct for b in bounds)
    keep = box_mask((0.0, 0.0, 0.6, 0.7), 256, 256)[None]
    cut = 1 - keep
    inpainted = paint(truth[None] * keep[None], keep[None], None)[0]
    out = project(inpainted, keep, bounds)
    assert psnr(out, truth, cut) > psnr(inpainted, truth, cut) + 0.5
    thumb = codec.decode_message(msg, budget, frame=(256, 256))
    up = truth * keep + upsample(pil_to_tensor(thumb)[None], 256, 256)[0] * cut
    assert psnr(project(up, keep, bounds), truth, cut) >= psnr(up, truth, cut) - 0.05


def test_webp_and_avif_thumbnails_give_no_bounds_and_their_own_side(photo):
    msg = codec.encode_message(photo, 200)
    assert msg[0] in (codec.WEBP, codec.AVIF)
    thumb = codec.decode_message(msg, 200)
    assert thumbnail_bounds(msg, (256, 256)) == []
    assert codec.effective_side(msg, thumb) == max(thumb.size)
    assert grid.effective_side(40) == pytest.approx(np.sqrt(5))


def test_inspect_ends_with_the_consistency_step_and_the_switch_turns_it_off(photo):
    """At 256² (a 5-byte grid) `recover` returns the consistent frame; with
    ``ProtectionConfig(consistent=False)`` the border continuation's, as before the step."""
    from clrnet.models.designed import Protector
    from clrnet.protection.config import ProtectionConfig

    on = Protector()
    received = on.protect(pil_to_tensor(photo))[:, 40:220, 30:200]
    d = on.inspect(received).decoded
    assert d is not None and d.message is not None and len(d.message) <= codec.TINY_MAX
    v = on.recover_variants(d)
    assert torch.equal(on.recover(d), v["consistent"])
    off = Protector(ProtectionConfig(consistent=False))
    w = off.recover_variants(d)
    assert "consistent" not in w and torch.equal(off.recover(d), w["border"])
    assert torch.equal(w["border"], v["border"])
