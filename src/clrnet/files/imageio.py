"""Reading users' photos safely and writing outputs atomically.

Every problem with an input becomes one :class:`ImageInputError` whose message
names the file and the problem. Documented conversions: greyscale, palette,
CMYK and 16-bit images become 8-bit RGB; transparency is flattened onto white;
EXIF orientation is applied.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clrnet.files.metadata import PhotoMetadata, metadata_of

MIN_SIDE = 32
MAX_PIXELS = 100_000_000  # refuse decompression bombs beyond 100 megapixels


class ImageInputError(ValueError):
    """A user-facing problem with an input image (message: '<file>: <problem>')."""


class OutputExistsError(FileExistsError):
    """Refusing to overwrite a file (pass force=True / --force to allow it)."""


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (see module docstring for the rules)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image).astype(np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = Image.fromarray((arr / peak * 255).round().clip(0, 255).astype(np.uint8))
        return grey.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def upright(im: Image.Image) -> Image.Image:
    """The image as a viewer shows it (EXIF orientation applied), even when Pillow cannot
    rewrite a damaged EXIF block (its exif_transpose then raises)."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:
        try:
            orientation = int(im.getexif().get(0x0112, 1))
        except Exception:
            orientation = 1
        method = _TRANSPOSE.get(orientation)
        return im.transpose(method) if method is not None else im


@dataclass
class Photo:
    """A photo as read from a file: 8-bit RGB pixels (orientation applied) and its metadata."""

    image: Image.Image
    metadata: PhotoMetadata
    path: Path


def open_image(path: str | Path, min_side: int = MIN_SIDE) -> Image.Image:
    """Open a photo as 8-bit RGB, or raise ImageInputError naming the file and problem."""
    return read_photo(path, min_side).image


def read_photo(path: str | Path, min_side: int = MIN_SIDE) -> Photo:
    """Open a photo as 8-bit RGB with its EXIF, XMP, IPTC and ICC profile, or raise
    ImageInputError naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise ImageInputError(f"{path}: no such file")
    if path.is_dir():
        raise ImageInputError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageInputError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on odd tags: not the user's business
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                with Image.open(path) as im:
                    w, h = im.size
                    if w * h > MAX_PIXELS:
                        raise ImageInputError(
                            f"{path}: image too large ({w}x{h} = {w * h:,} pixels; limit {MAX_PIXELS:,})")
                    im.load()
                    meta = metadata_of(im)
                    im = upright(im)
                    rgb = to_rgb(im)
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageInputError(f"{path}: image too large, refused as a possible decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{path}: not an image file (format not recognised)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(f"{path}: truncated or corrupt image data ({e})") from None
    w, h = rgb.size
    if min(w, h) < min_side:
        raise ImageInputError(f"{path}: image too small ({w}x{h}); need at least {min_side} px on each side")
    return Photo(rgb, meta, path)


def check_writable(target: str | Path, inputs: list[str | Path] = (), force: bool = False) -> Path:
    """Refuse to write over an input file, or over any existing file unless ``force``."""
    target = Path(target)
    for inp in inputs:
        if Path(inp).exists() and target.exists() and target.resolve() == Path(inp).resolve():
            if not force:
                raise OutputExistsError(f"{target}: refusing to overwrite the input (use --force)")
    if target.exists() and not force:
        raise OutputExistsError(f"{target}: already exists (use --force to overwrite)")
    return target


def _publish(tmp: str, path: Path, replace: bool) -> None:
    """Move a finished temporary file into place: ``os.replace``, or, when the target
    must not be replaced, a hard link (which fails if the name exists, atomically:
    of several processes racing for one name exactly one wins, none overwrites)."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path}: already written (by another process)") from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise OutputExistsError(f"{path}: already written (by another process)") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def save_atomic(image: Image.Image, path: str | Path, replace: bool = True, **params) -> Path:
    """Save via a temporary file in the same folder, then rename: never a half-written file.
    The format is ``params["format"]`` if given, else the suffix's. With ``replace=False``
    an existing ``path`` is never overwritten (:class:`OutputExistsError`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = params.pop("format", None) or Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageInputError(f"{path}: unknown output image format (use .png, .jpg, ...)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format=fmt, **params)
        _publish(tmp, path, replace)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text_atomic(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
