"""Metadata round trips (EXIF, XMP, IPTC, ICC, orientation) and every output format."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from clrnet.cli.main import app
from clrnet.files.formats import OutputFormat, choose_format, format_of_input, save_photo, webp_is_lossless
from clrnet.files.imageio import read_photo
from clrnet.files.metadata import (
    EXIF_IFD,
    GPS_IFD,
    ORIENTATION,
    parse_png_raw_profile,
    photoshop_iptc_segment,
    png_raw_profile,
    reset_xmp_orientation,
)

runner = CliRunner()
IPTC = b"\x1c\x02\x00\x00\x02\x00\x04" + b"\x1c\x02\x74\x00\x0b(c) J. Doe" + b"\x1c\x02\x05\x00\x05Title"
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
       b'tiff:Orientation="6"><dc:creator>J. Doe</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>')
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def camera_exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x8298] = "Canon", "EOS R5", "(c) J. Doe"
    exif[ORIENTATION] = orientation
    exif.get_ifd(EXIF_IFD)[0x9003] = "2024:05:01 10:00:00"
    exif.get_ifd(GPS_IFD)[2] = (52.0, 31.0, 12.0)
    return exif


@pytest.fixture()
def camera_jpeg(tmp_path, photo):
    """A camera-like JPEG stored sideways (orientation 6) with EXIF, XMP, IPTC and sRGB ICC."""
    stored = photo.transpose(Image.Transpose.ROTATE_90)  # what a sensor held sideways stores
    path = tmp_path / "IMG_0001.jpg"
    stored.save(path, quality=95, exif=camera_exif(6).tobytes(), icc_profile=SRGB, xmp=XMP,
                extra=photoshop_iptc_segment(IPTC))
    return path


def test_reading_applies_orientation_once_and_keeps_every_block(camera_jpeg, photo):
    p = read_photo(camera_jpeg)
    assert p.image.size == photo.size  # turned upright
    assert p.metadata.present() == ["exif", "xmp", "iptc", "icc_profile"]
    assert p.metadata.iptc == IPTC and p.metadata.icc_profile == SRGB
    assert b'tiff:Orientation="1"' in p.metadata.xmp and b"J. Doe" in p.metadata.xmp


@pytest.mark.parametrize("fmt", [OutputFormat("jpeg"), OutputFormat("png"), OutputFormat("webp"),
                                 OutputFormat("webp", 95), OutputFormat("tiff")])
def test_metadata_round_trip_through_every_format(tmp_path, camera_jpeg, photo, fmt):
    p = read_photo(camera_jpeg)
    out = tmp_path / f"out{fmt.suffix}"
    warnings = save_photo(p.image, out, fmt, p.metadata)
    back = read_photo(out)
    assert back.image.size == photo.size  # not rotated a second time
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif[ORIENTATION] == 1
        assert (exif[0x010F], exif[0x0110], exif[0x8298]) == ("Canon", "EOS R5", "(c) J. Doe")
        assert exif.get_ifd(EXIF_IFD)[0x9003] == "2024:05:01 10:00:00"
        assert tuple(float(v) for v in exif.get_ifd(GPS_IFD)[2]) == (52.0, 31.0, 12.0)
    assert back.metadata.icc_profile == SRGB
    assert back.metadata.xmp == p.metadata.xmp
    if fmt.name == "webp":
        assert back.metadata.iptc is None and any("cannot carry iptc" in w for w in warnings)
    else:
        assert back.metadata.iptc == IPTC and warnings == []


def test_non_rgb_icc_profile_is_dropped_with_a_note(tmp_path, photo):
    grey = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    path = tmp_path / "lab-profile.png"
    photo.save(path, icc_profile=grey)
    p = read_photo(path)
    assert p.metadata.icc_profile is None and "ICC profile dropped" in p.metadata.notes[0]


def test_xmp_orientation_reset_in_both_forms():
    assert reset_xmp_orientation(b'<a tiff:Orientation="8"/>') == b'<a tiff:Orientation="1"/>'
    assert reset_xmp_orientation(b"<tiff:Orientation> 3 </tiff:Orientation>") == b"<tiff:Orientation>1</tiff:Orientation>"


def test_png_raw_profile_round_trip():
    data = bytes(range(256)) * 3
    assert parse_png_raw_profile(png_raw_profile("iptc", data)) == data


def test_output_format_follows_the_input(tmp_path, photo):
    photo.save(tmp_path / "a.webp", lossless=True)
    photo.save(tmp_path / "b.webp", quality=80)
    assert webp_is_lossless(tmp_path / "a.webp") and not webp_is_lossless(tmp_path / "b.webp")
    assert format_of_input(tmp_path / "a.webp") == OutputFormat("webp")
    assert format_of_input(tmp_path / "b.webp") == OutputFormat("webp", 95)
    assert format_of_input(tmp_path / "x.JPEG") == OutputFormat("jpeg", 95)
    assert format_of_input(tmp_path / "x.bmp") == OutputFormat("png")
    assert format_of_input(tmp_path / "x.tiff") == OutputFormat("tiff")
    assert choose_format(tmp_path / "x.png", "jpg", 85) == OutputFormat("jpeg", 85)
    assert OutputFormat("jpeg", 85).warning() is not None and OutputFormat("jpeg").warning() is None
    with pytest.raises(ValueError, match="quality applies"):
        OutputFormat("png", 90)
    with pytest.raises(ValueError, match="unknown format"):
        OutputFormat("gif")


def test_jpeg_output_is_444_at_quality_95(tmp_path, photo):
    out = tmp_path / "o.jpg"
    save_photo(photo, out, OutputFormat("jpeg"))
    from PIL import JpegImagePlugin

    with Image.open(out) as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
        # quality 95's luminance table starts with 2 (Pillow's scaled standard table)
        assert im.quantization[0][0] == 2


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "tiff"])
def test_shipped_model_protection_survives_each_output_format(tmp_path, photo, fmt):
    """The shipped default model, protected through the CLI in each format: the
    whole photo reads as protected and not cropped; a crop of it (JPEG 80) as cropped."""
    src = tmp_path / "photo.png"
    photo.save(src)
    out = tmp_path / "out"
    r = runner.invoke(app, ["protect", str(src), "-o", str(out), "--format", fmt])
    assert r.exit_code == 0, r.output
    (made,) = list(out.iterdir())
    assert made.suffix == OutputFormat(fmt).suffix
    w, h = photo.size
    crop = Image.open(made).convert("RGB").crop((w // 4, 0, w, h * 3 // 4))
    crop.save(tmp_path / "crop.jpg", quality=80)
    for received, cropped in ((made, False), (tmp_path / "crop.jpg", True)):
        rep = tmp_path / f"rep-{received.stem}"
        r = runner.invoke(app, ["inspect", str(received), "-o", str(rep)])
        assert r.exit_code == 0, r.output
        facts = json.loads((rep / "report.json").read_text())
        assert facts["protected"] is True and facts["cropped"] is cropped, facts


def test_cli_warns_when_the_format_weakens_the_protection(tmp_path, photo_png, tiny_model_path):
    r = runner.invoke(app, ["protect", str(photo_png), "-o", str(tmp_path / "o.jpg"), "-q", "75",
                            "--model", str(tiny_model_path)])
    assert r.exit_code == 0
    assert "weakens the protection" in r.output


def test_single_file_keeps_metadata_through_the_cli(tmp_path, camera_jpeg, tiny_model_path, photo):
    out = tmp_path / "protected.jpg"
    r = runner.invoke(app, ["protect", str(camera_jpeg), "-o", str(out), "--model", str(tiny_model_path)])
    assert r.exit_code == 0, r.output
    back = read_photo(out)
    assert back.image.size == photo.size
    assert back.metadata.iptc == IPTC and back.metadata.icc_profile == SRGB
    assert Image.open(out).getexif()[ORIENTATION] == 1


@pytest.fixture()
def photo_png(tmp_path, photo):
    p = tmp_path / "photo.png"
    photo.save(p)
    return p


def test_quality_rejected_for_lossless_format(tmp_path, photo_png, tiny_model_path):
    r = runner.invoke(app, ["protect", str(photo_png), "-o", str(tmp_path / "o"), "--format", "png", "-q", "90",
                            "--model", str(tiny_model_path)])
    assert r.exit_code != 0 and "quality applies to jpeg and webp" in r.output
    assert not (tmp_path / "o").exists()
