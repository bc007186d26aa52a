"""protect / inspect on photos of any size: the Python API the CLI wraps.

One path through the Model protocol (``models.base``): a model protects a photo tensor at
its own size and reads a received one in its own frame; here the reading becomes an
:class:`Inspection` at the original's size (given by the user, or estimated as received
size / box size: exact when the fragment was not rescaled) with its mask, recovered photo
and, where the model reads edits, the tamper maps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from torch import Tensor

from clrnet.core.geometry import Box, box_to_pixels, resize
from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.files.imageio import to_rgb
from clrnet.models.base import Model
from clrnet.models.zoo import DEFAULT_MODEL, as_model, load_model
from clrnet.passive.detect import MIN_SIDE as PASSIVE_MIN_SIDE
from clrnet.passive.detect import detector as passive_detector
from clrnet.protection.key import ProtectionKey, load_key
from clrnet.tamper.localize import tamper_score

MAX_OUTPUT_SIDE = 8192

_models: dict[str, Model] = {}


def get_model(model: "Model | str | None" = None) -> Model:
    """A model object, a shipped model by name or file, or (None) the default, cached."""
    if model is not None and not isinstance(model, (str, Path)):
        return as_model(model)
    name = str(model or DEFAULT_MODEL)
    if name not in _models:
        _models[name] = load_model(model or DEFAULT_MODEL)
    return _models[name]


def with_key(model: Model, key: "str | Path | ProtectionKey | None") -> Model:
    """``model`` with a secret key's patterns (a key file or a key; None: unchanged).
    Keys belong to protection v2: ValueError for the paper's model."""
    if key is None:
        return model
    return model.with_key(key if isinstance(key, ProtectionKey) else load_key(key))


def thorough(model: Model, on: bool | None = True) -> Model:
    """``model`` looking beneath every protection it takes away, however weak the ruler
    left there (v2's default); ``on=False``: only where that ruler reads above chance;
    ``None``: unchanged. Layers belong to protection v2: ValueError for the paper's
    model when asked to look beneath."""
    return model if on is None else model.looking_beneath(on)


class AlreadyProtectedError(ValueError):
    """The photo already carries a protection of this model (protect again with force)."""


def protect(image: Image.Image, model: "Model | str | None" = None, refuse_protected: bool = False) -> Image.Image:
    """Return the protected photo: same size as ``image``, visually identical.
    Save it losslessly (PNG): the protection is what later localises crops. With
    ``refuse_protected`` a photo that already carries the model's protection raises
    :class:`AlreadyProtectedError` (protecting a crop again would launder it)."""
    m = get_model(model)
    x = pil_to_tensor(to_rgb(image))
    if refuse_protected and m.carries_protection(x):
        raise AlreadyProtectedError(f"already carries a protection ({m.name}): "
                                    f"protecting it again hides where it came from (--force does it anyway)")
    return tensor_to_pil(m.protect(x))


@dataclass
class Inspection:
    """What ``inspect`` found. ``box`` is the kept part (x0, y0, x1, y1) in the
    original frame, normalised to [0, 1]; ``mask`` is 255 there."""

    cropped: bool
    score: float
    box: Box
    original_size: tuple[int, int]
    size_estimated: bool
    mask: Image.Image
    recovered: Image.Image
    recovered_native: Image.Image
    received_size: tuple[int, int]
    model: str
    protected: bool | None = None  # False: no protection found (a never-protected photo)
    protection: float | None = None  # strength of the protection signal, where measurable
    payload: bool | None = None  # protection v2: the thumbnail payload was decoded (checksum held)
    # protection v2, payload decoded: where the received part still carries the protection
    # ("L", original frame; 255 intact, 0 missing or cut away): the ground for tamper maps
    presence: Image.Image | None = None
    # protection v2: every protection found, newest first (cropped, score, box); two or
    # more when a protected photo (or a crop of one) was protected again
    layers: list[dict] | None = None
    # protection v2, payload decoded: where the received part was edited after protection
    # ("L", original frame; 255 edited), the share of the kept part that was, and the verdict
    tamper_mask: Image.Image | None = None
    tamper_score: float | None = None
    tampered: bool | None = None
    # the passive detector (PSCC-Net; run when no protection was found, or when asked): an
    # estimate from the pixels alone. Score 0-1, verdict at the shipped threshold, and the
    # per-pixel probability and its binary verdict ("L", the received photo's frame)
    passive_score: float | None = None
    passive_edited: bool | None = None
    passive_map: Image.Image | None = None
    passive_mask: Image.Image | None = None

    def overlay(self) -> Image.Image:
        """The recovered frame with the received fragment's box drawn on it (red) and
        the outline of edited regions (yellow)."""
        img = self.recovered.copy()
        w, h = img.size
        left, top, right, bottom = box_to_pixels(self.box, w, h)
        draw = ImageDraw.Draw(img)
        lw = max(2, round(min(w, h) / 150))
        draw.rectangle([left, top, right - 1, bottom - 1], outline=(255, 40, 40), width=lw)
        if self.tampered and self.tamper_mask is not None:
            edge = self.tamper_mask.filter(ImageFilter.MaxFilter(2 * lw + 1)).point(lambda v: 255 if v else 0)
            edge = ImageChops.subtract(edge, self.tamper_mask)
            img.paste((255, 220, 0), mask=edge)
        return img

    def to_dict(self) -> dict:
        w, h = self.original_size
        left, top, right, bottom = box_to_pixels(self.box, w, h)
        return {
            "cropped": self.cropped,
            "score": round(self.score, 4),
            "protected": self.protected,
            "protection": None if self.protection is None else round(self.protection, 4),
            "box": [round(v, 4) for v in self.box],
            "box_pixels": [left, top, right, bottom],
            "kept_area": round((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]), 4),
            "original_size": [w, h],
            "original_size_estimated": self.size_estimated,
            "received_size": list(self.received_size),
            "recovered_native_size": list(self.recovered_native.size),
            "payload_decoded": self.payload,
            "tampered": self.tampered,
            "tamper_score": None if self.tamper_score is None else round(self.tamper_score, 4),
            "passive_score": None if self.passive_score is None else round(self.passive_score, 4),
            "passive_edited": self.passive_edited,
            "protections": None if self.layers is None else len(self.layers),
            "layers": self.layers,
            "model": self.model,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def estimate_original_size(received_size: tuple[int, int], box: Box) -> tuple[int, int]:
    """Original (W, H) if the fragment kept its pixels: received side / box side."""
    w, h = received_size
    bw, bh = max(box[2] - box[0], 1e-3), max(box[3] - box[1], 1e-3)
    ow = min(MAX_OUTPUT_SIDE, max(w, round(w / bw)))
    oh = min(MAX_OUTPUT_SIDE, max(h, round(h / bh)))
    return ow, oh


def inspect(image: Image.Image, model: "Model | str | None" = None,
            original_size: tuple[int, int] | None = None, paste_received: bool = True,
            passive: bool | None = None) -> Inspection:
    """Was ``image`` cropped from a protected photo, where, and what was cut away?

    ``original_size`` (W, H) sets the recovered image's size; without it the size is
    estimated from the received size and the box. With ``paste_received`` the received
    pixels fill the box at full resolution (but where the model found edits) and the
    model's recovery (its working resolution, upscaled) fills the rest. ``passive``: run the
    passive detector (``passive_*``) always (True), never (False), or only when no protection
    was found (None).
    """
    m = get_model(model)
    rgb = to_rgb(image)
    r = m.read(pil_to_tensor(rgb))
    estimated = original_size is None
    ow, oh = original_size or estimate_original_size(rgb.size, r.box)
    full = resize(r.recovered[None], oh, ow)[0]
    left, top, right, bottom = box_to_pixels(r.box, ow, oh)
    inside = right > left and bottom > top
    edited = None  # (bottom - top, right - left) bool: edited pixels of the kept part
    if r.edited is not None and inside:
        edited = resize(r.edited[None, None].float(), bottom - top, right - left)[0, 0] > 0.5
    if paste_received and inside:
        keep = resize(r.source[None], bottom - top, right - left)[0]
        if edited is not None:  # edited regions keep the recovery, the rest the received pixels
            keep = torch.where(edited, full[:, top:bottom, left:right], keep)
        full[:, top:bottom, left:right] = keep
    mask = Image.new("L", (ow, oh), 0)
    mask.paste(255, (left, top, right, bottom))
    presence = tamper = score = tampered = None
    if r.presence is not None and edited is not None:
        pm = resize(r.presence[None, None], bottom - top, right - left)[0, 0].clamp(0, 1)
        presence = _frame_image(pm, (ow, oh), (left, top))
        tamper = _frame_image(edited.float(), (ow, oh), (left, top))
        score = tamper_score(r.edited)
        tampered = bool(r.edited.any())
    found = Inspection(r.cropped, r.score, r.box, (ow, oh), estimated, mask, tensor_to_pil(full),
                       tensor_to_pil(r.recovered), rgb.size, m.name, r.protected, r.protection, r.payload, presence,
                       r.layers, tamper, score, tampered)
    if (passive or (passive is None and r.protected is False)) and min(rgb.size) >= PASSIVE_MIN_SIDE:
        p = passive_detector()(np.asarray(rgb))
        found.passive_score, found.passive_edited = p.score, p.edited
        found.passive_map, found.passive_mask = p.map_image(), p.mask_image()
    return found


def _frame_image(values: Tensor, size: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    """An "L" image of the original frame ``size`` holding ``values`` (h, w in [0, 1]) at ``at``."""
    out = Image.new("L", size, 0)
    out.paste(Image.fromarray((values.numpy() * 255).round().astype("uint8"), "L"), at)
    return out
