"""protect / inspect on photos of any size: the Python API the CLI wraps.

The networks work on an N x N native frame. ``protect`` embeds at native
resolution and carries the change (protected - original, upsampled) to the
photo's own resolution, so the output keeps the input's size and aspect.
``inspect`` brings any received image to the native frame, localises the crop,
recovers the whole original at native resolution and scales it to the
original size: given by the user, or estimated as received size / box size
(exact when the fragment was not rescaled).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from torch import Tensor

from clrnet.core.image import pil_to_tensor, tensor_to_pil
from clrnet.core.geometry import Box, box_to_pixels, resize
from clrnet.files.imageio import to_rgb
from clrnet.paper.model import CLRNet
from clrnet.models.zoo import DEFAULT_MODEL, load_model
from clrnet.reading.impulses import repair_impulses
from clrnet.protection.key import ProtectionKey, load_key
from clrnet.models.designed import Protector
from clrnet.tamper.localize import tamper_score
from clrnet.paper.inference import inspect_native, protect_tensor

MAX_OUTPUT_SIDE = 8192

_models: dict[str, "CLRNet | Protector"] = {}
Model = Union[CLRNet, Protector]


def get_model(model: "Model | str | None" = None) -> "Model":
    """A model object, a shipped model by name, or (None) the default, cached."""
    if isinstance(model, (CLRNet, Protector)):
        return model
    name = model or DEFAULT_MODEL
    if name not in _models:
        _models[name] = load_model(name)
    return _models[name]


def with_key(model: "Model", key: "str | Path | ProtectionKey | None") -> "Model":
    """``model`` with a secret key's patterns (a key file or a key; None: unchanged).
    Keys belong to protection v2: ValueError for a v1 model."""
    if key is None:
        return model
    if not isinstance(model, Protector):
        raise ValueError(f"--key needs protection v2 (--model clrnet-v2): {model.cfg.name} has no keyed patterns")
    return model.with_key(key if isinstance(key, ProtectionKey) else load_key(key))


def thorough(model: "Model", on: bool | None = True) -> "Model":
    """``model`` looking beneath every protection it takes away, however weak the ruler
    left there (``Protector.thorough``, v2's default); ``on=False``: only where that
    ruler reads above chance (``Protector.fast``); ``None``: unchanged. Layers belong
    to protection v2: ValueError for v1 when asked to look beneath."""
    if on is None:
        return model
    if not isinstance(model, Protector):
        if not on:
            return model  # v1 never looks beneath
        raise ValueError(f"--thorough needs protection v2 (--model clrnet-v2): {model.cfg.name} has one layer")
    return model.thorough() if on else model.fast()


class AlreadyProtectedError(ValueError):
    """The photo already carries a protection of this model (protect again with force)."""


def already_protected(x: Tensor, m: "Model") -> bool:
    """Does the photo (3, H, W) carry this model's protection? The quick test: the
    ruler's boxes verified (v2: by the pilots), no search over whole frames."""
    if isinstance(m, Protector):  # every variant of a key's patterns
        return bool(m.inspect(x, deep=False, min_strength=m.cfg.presence).protected)
    return bool(inspect_native(m, x).protected)


def protect(image: Image.Image, model: "Model | str | None" = None, refuse_protected: bool = False) -> Image.Image:
    """Return the protected photo: same size as ``image``, visually identical.
    Save it losslessly (PNG): the protection is what later localises crops. With
    ``refuse_protected`` a photo that already carries the model's protection raises
    :class:`AlreadyProtectedError` (protecting a crop again would launder it)."""
    m = get_model(model)
    x = pil_to_tensor(to_rgb(image))
    if refuse_protected and already_protected(x, m):
        raise AlreadyProtectedError(f"already carries a protection ({getattr(m, 'name', None) or m.cfg.name}): "
                                    f"protecting it again hides where it came from (--force does it anyway)")
    if isinstance(m, Protector):
        return tensor_to_pil(m.protect(x))
    return tensor_to_pil(protect_tensor(m, x))


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
            original_size: tuple[int, int] | None = None, paste_received: bool = True) -> Inspection:
    """Was ``image`` cropped from a protected photo, where, and what was cut away?

    ``original_size`` (W, H) sets the recovered image's size; without it the
    size is estimated from the received size and the box. With
    ``paste_received`` the received pixels fill the box at full resolution and
    the network's recovery (native resolution, upscaled) fills the rest.
    """
    m = get_model(model)
    rgb = to_rgb(image)
    received = pil_to_tensor(rgb)
    if isinstance(m, Protector):
        return _inspect_v2(m, rgb, received, original_size, paste_received)
    res = inspect_native(m, received)
    estimated = original_size is None
    ow, oh = original_size or estimate_original_size(rgb.size, res.box)
    full = resize(res.recovered[None], oh, ow)[0]
    left, top, right, bottom = box_to_pixels(res.box, ow, oh)
    if paste_received:
        full[:, top:bottom, left:right] = resize(received[None], bottom - top, right - left)[0]
    mask = Image.new("L", (ow, oh), 0)
    mask.paste(255, (left, top, right, bottom))
    name = model if isinstance(model, str) else (m.cfg.name if model is not None else DEFAULT_MODEL)
    return Inspection(res.cropped, res.score, res.box, (ow, oh), estimated, mask,
                      tensor_to_pil(full), tensor_to_pil(res.recovered), rgb.size, name,
                      res.protected, res.protection)


def _inspect_v2(m: Protector, rgb: Image.Image, received: Tensor, original_size: tuple[int, int] | None,
                paste_received: bool) -> Inspection:
    """``inspect`` for protection v2: the recovery is made at the working frame. Every
    protection is looked for; a crop found beneath a later protection (a protected
    crop protected again) is the verdict, with the earlier box and recovery."""
    received = repair_impulses(received)  # dropped pixels: read and pasted repaired
    found = m.inspect_layers(received)
    r = next((layer for layer in found[1:] if layer.cropped), found[0])
    layers = [{"cropped": layer.cropped, "score": round(layer.score, 4), "box": [round(v, 4) for v in layer.box]}
              for layer in found if layer.protected]
    estimated = original_size is None
    ow, oh = original_size or estimate_original_size(rgb.size, r.box)
    full = resize(r.recovered[None], oh, ow)[0]
    left, top, right, bottom = box_to_pixels(r.box, ow, oh)
    d = r.decoded
    payload = d is not None and d.message is not None
    edited = None  # (bottom - top, right - left) bool: edited pixels of the kept part
    # (read against the decoded payload's codeword, or, when its checksum failed but the
    # pilots hold, against the decoder's best guess of it)
    if d is not None and d.edited.numel() and right > left and bottom > top:
        edited = resize(d.edited[None, None].float(), bottom - top, right - left)[0, 0] > 0.5
    if paste_received and right > left and bottom > top:
        keep = resize(received[None], bottom - top, right - left)[0]
        if edited is not None:  # edited regions keep the recovery, the rest the received pixels
            keep = torch.where(edited, full[:, top:bottom, left:right], keep)
        full[:, top:bottom, left:right] = keep
    mask = Image.new("L", (ow, oh), 0)
    mask.paste(255, (left, top, right, bottom))
    presence = tamper = None
    score = tampered = None
    if d is not None and d.presence.numel() and right > left and bottom > top:
        pm = resize(d.presence[None, None], bottom - top, right - left)[0, 0].clamp(0, 1)
        presence = _frame_image(pm, (ow, oh), (left, top))
        tamper = _frame_image(edited.float(), (ow, oh), (left, top))
        score = tamper_score(d.edited)
        tampered = bool(d.edited.any())
    return Inspection(r.cropped, r.score, r.box, (ow, oh), estimated, mask, tensor_to_pil(full),
                      tensor_to_pil(r.recovered), rgb.size, m.name, r.protected, r.pilot, payload, presence, layers,
                      tamper, score, tampered)


def _frame_image(values: Tensor, size: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    """An "L" image of the original frame ``size`` holding ``values`` (h, w in [0, 1]) at ``at``."""
    out = Image.new("L", size, 0)
    out.paste(Image.fromarray((values.numpy() * 255).round().astype("uint8"), "L"), at)
    return out
