"""What a photographer keeps: EXIF, XMP, IPTC and the ICC profile.

They are read from the input when it is opened and written into the protected
output. The pixels are protected in the orientation a viewer sees (EXIF
orientation is applied once, on reading), so the written EXIF and XMP say
orientation 1: a viewer must not rotate the photo a second time. Dates, camera
and copyright fields are copied unchanged.

Containers: JPEG carries all four (IPTC in a Photoshop APP13 segment, as
Photoshop and exiftool write it); TIFF all four (tags 33723 and 700); PNG EXIF,
XMP and ICC in their standard chunks and IPTC in a ``Raw profile type iptc``
text chunk (the ImageMagick / exiftool convention); WebP has no IPTC container
(see :func:`unsupported`).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from PIL import Image, PngImagePlugin

ORIENTATION = 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
TIFF_XMP, TIFF_IPTC = 700, 33723
PHOTOSHOP_IPTC = 0x0404
PNG_IPTC_KEY = "Raw profile type iptc"
PNG_XMP_KEY = "XML:com.adobe.xmp"
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation\s*=\s*["\'])\d(["\'])|(<tiff:Orientation>)\s*\d\s*(</tiff:Orientation>)')


@dataclass
class PhotoMetadata:
    """The metadata blocks of one photo, raw, ready to be written again."""

    exif: bytes | None = None  # EXIF (TIFF-structured, orientation reset to 1)
    xmp: bytes | None = None  # the XMP packet (orientation reset to 1)
    iptc: bytes | None = None  # IPTC-IIM records (the 8BIM 0x0404 resource's data)
    icc_profile: bytes | None = None  # an RGB profile only: the output is RGB
    notes: list[str] = field(default_factory=list)  # what was not kept, and why

    def present(self) -> list[str]:
        return [k for k in ("exif", "xmp", "iptc", "icc_profile") if getattr(self, k)]


def _exif_of(im: Image.Image) -> bytes | None:
    src = im.getexif()  # the image's own object: copied, never changed (orientation is applied later)
    if not len(src) and not src.get_ifd(EXIF_IFD) and not src.get_ifd(GPS_IFD):
        return None
    src.get_ifd(EXIF_IFD), src.get_ifd(GPS_IFD)  # load the sub-IFDs so they are written too
    exif = Image.Exif()
    exif.load(src.tobytes())
    exif.get_ifd(EXIF_IFD), exif.get_ifd(GPS_IFD)
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    return exif.tobytes()


def reset_xmp_orientation(xmp: bytes) -> bytes:
    """XMP with ``tiff:Orientation`` (attribute or element form) set to 1."""
    def repl(m: re.Match) -> bytes:
        return (m.group(1) + b"1" + m.group(2)) if m.group(1) else (m.group(3) + b"1" + m.group(4))

    return _XMP_ORIENTATION.sub(repl, xmp)


def _xmp_of(im: Image.Image) -> bytes | None:
    xmp = im.info.get("xmp")
    if xmp is None and isinstance(getattr(im, "text", None), dict):
        xmp = im.text.get(PNG_XMP_KEY)  # type: ignore[attr-defined]
    if not xmp:
        return None
    return reset_xmp_orientation(xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp))


def parse_png_raw_profile(text: str) -> bytes:
    """Bytes of an ImageMagick raw-profile text (``\\nname\\n  length\\nhex...``)."""
    parts = text.split()
    n = int(parts[1])
    return bytes.fromhex("".join(parts[2:]))[:n]


def png_raw_profile(name: str, data: bytes) -> str:
    hexed = data.hex()
    lines = "\n".join(hexed[i:i + 72] for i in range(0, len(hexed), 72))
    return f"\n{name}\n{len(data):8d}\n{lines}\n"


def _iptc_of(im: Image.Image) -> bytes | None:
    photoshop = im.info.get("photoshop")
    if isinstance(photoshop, dict) and photoshop.get(PHOTOSHOP_IPTC):
        data = photoshop[PHOTOSHOP_IPTC]
        return bytes(data["data"] if isinstance(data, dict) else data)
    tags = getattr(im, "tag_v2", None)
    if tags is not None and TIFF_IPTC in tags:
        value = tags[TIFF_IPTC]
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        endian = getattr(tags, "_endian", "<")
        return struct.pack(f"{endian}{len(value)}L", *value)
    text = getattr(im, "text", None) if im.format == "PNG" else None
    if isinstance(text, dict) and PNG_IPTC_KEY in text:
        try:
            return parse_png_raw_profile(text[PNG_IPTC_KEY])
        except (ValueError, IndexError):
            return None
    return None


def _safely(read, im: Image.Image, what: str, notes: list[str]):
    """A metadata block, or None and a note: a damaged block must not cost the photo."""
    try:
        return read(im)
    except Exception as e:  # corrupt EXIF and the like raise struct.error, TypeError, ...
        notes.append(f"{what} unreadable ({type(e).__name__}): not kept")
        return None


def metadata_of(im: Image.Image) -> PhotoMetadata:
    """Read the metadata of an opened (loaded, not yet transposed) image."""
    notes: list[str] = []
    meta = PhotoMetadata(_safely(_exif_of, im, "EXIF", notes), _safely(_xmp_of, im, "XMP", notes),
                         _safely(_iptc_of, im, "IPTC", notes), notes=notes)
    icc = im.info.get("icc_profile")
    if icc:
        space = bytes(icc[16:20])
        if space == b"RGB ":
            meta.icc_profile = bytes(icc)
        else:
            meta.notes.append(f"ICC profile dropped: it describes {space.decode(errors='replace').strip()} "
                              "data and the protected photo is RGB")
    return meta


def photoshop_iptc_segment(iptc: bytes) -> bytes:
    """A JPEG APP13 segment holding ``iptc`` as Photoshop's 8BIM 0x0404 resource."""
    resource = b"8BIM" + struct.pack(">H", PHOTOSHOP_IPTC) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    if len(iptc) % 2:
        resource += b"\x00"
    payload = b"Photoshop 3.0\x00" + resource
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("IPTC block too large for one JPEG segment")
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


# which blocks each output container can hold
CARRIES = {
    "jpeg": {"exif", "xmp", "iptc", "icc_profile"},
    "tiff": {"exif", "xmp", "iptc", "icc_profile"},
    "png": {"exif", "xmp", "iptc", "icc_profile"},
    "webp": {"exif", "xmp", "icc_profile"},
}


def unsupported(meta: PhotoMetadata, fmt: str) -> list[str]:
    """The metadata blocks of ``meta`` that format ``fmt`` cannot carry."""
    return [k for k in meta.present() if k not in CARRIES[fmt]]


def save_params(meta: PhotoMetadata, fmt: str) -> dict:
    """Pillow ``save`` keyword arguments that write ``meta`` into format ``fmt``."""
    params: dict = {}
    if meta.icc_profile:
        params["icc_profile"] = meta.icc_profile
    if fmt == "tiff":  # Pillow takes one tag set for TIFF: EXIF with XMP and IPTC added
        tags = Image.Exif()
        if meta.exif:
            tags.load(meta.exif)
            tags.get_ifd(EXIF_IFD), tags.get_ifd(GPS_IFD)
        if meta.xmp:
            tags[TIFF_XMP] = meta.xmp
        if meta.iptc:
            tags[TIFF_IPTC] = meta.iptc
        if len(tags):
            params["tiffinfo"] = tags
        return params
    if meta.exif:
        params["exif"] = meta.exif
    if fmt == "jpeg":
        if meta.xmp:
            params["xmp"] = meta.xmp
        if meta.iptc:
            params["extra"] = photoshop_iptc_segment(meta.iptc)
    elif fmt == "webp":
        if meta.xmp:
            params["xmp"] = meta.xmp
    elif fmt == "png":
        chunks = PngImagePlugin.PngInfo()
        if meta.xmp:
            chunks.add_itxt(PNG_XMP_KEY, meta.xmp.decode("utf-8", errors="replace"))
        if meta.iptc:
            chunks.add_text(PNG_IPTC_KEY, png_raw_profile("iptc", meta.iptc), zip=True)
        if meta.xmp or meta.iptc:
            params["pnginfo"] = chunks
    return params


__all__ = ["PhotoMetadata", "metadata_of", "save_params", "unsupported", "reset_xmp_orientation"]
