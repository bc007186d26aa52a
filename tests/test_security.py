"""The attacks of ``clrnet eval --security``: each does what it claims."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clrnet.api import get_model
from clrnet.core.image import pil_to_tensor
from clrnet.evaluation.security import normalised_residual, sort_by_variant, subtract_public
from clrnet.payload import channel
from clrnet.protection.key import ProtectionKey


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    from skimage import data

    imgs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    return [pil_to_tensor(Image.fromarray(a).convert("RGB").resize((384, 256))) for a in imgs]


def test_public_subtraction_removes_the_public_protection_but_not_a_keyed_one(photos):
    public = get_model("clrnet-v2")
    keyed = public.with_key(ProtectionKey(bytes(range(32))))
    x = photos[0]
    p = public.protect(x)
    attacked = subtract_public(public, p)
    assert not public.inspect(attacked).protected
    # the rebuilt change is the protection's own: the attacked photo is close to the original
    assert float((attacked - x).abs().mean()) < 0.5 * float((p - x).abs().mean())
    k = keyed.protect(x)
    assert keyed.inspect(subtract_public(public, k)).protected


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_averaging_estimates_the_keys_fixed_pattern(photos):
    """The averaged residuals of photos protected with one key correlate with that
    key's ruler, not with the public one: what the attacker subtracts is real."""
    public = get_model("clrnet-v2")
    keyed = public.with_key(ProtectionKey(bytes(range(32))))
    est = torch.stack([normalised_residual(keyed.protect(x), keyed) for x in photos]).mean(0)
    own = channel.whiten(keyed.embedder.ruler_pattern(384, 256))
    other = channel.whiten(public.embedder.ruler_pattern(384, 256))
    assert _corr(est, own) > 0.2 > abs(_corr(est, other))


def test_the_sorting_attacker_groups_photos_of_one_variant(photos):
    """Against a key of several variants the attacker first sorts the photos by the
    pattern their residuals share (``sort_by_variant``): each group holds one variant
    only, so averaging a group estimates that variant's ruler."""
    keyed = get_model("clrnet-v2").with_key(ProtectionKey(bytes(range(32)), 2))
    readers = keyed.readers()
    xs = [*photos, *(x.flip(-1) for x in photos), *(x.flip(-2) for x in photos)]
    truth = np.array([readers.index(keyed.for_photo(x)) for x in xs])
    assert set(truth) == {0, 1}
    res = torch.stack([normalised_residual(keyed.protect(x), keyed).flatten() for x in xs])
    labels = sort_by_variant(res, 2)
    for g in (0, 1):
        assert len(set(truth[labels == g])) == 1  # pure groups
    est = res[torch.from_numpy(labels == labels[0])].mean(0).view(256, 384)
    own = channel.whiten(readers[truth[0]].embedder.ruler_pattern(384, 256))
    other = channel.whiten(readers[1 - truth[0]].embedder.ruler_pattern(384, 256))
    assert _corr(est, own) > 0.2 > abs(_corr(est, other))
