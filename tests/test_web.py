"""The JSON API behind the web page: protect, inspect, bad uploads, temporary files."""

from __future__ import annotations

import io
import json
import tempfile

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's test client) is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from clrnet.web.app import create_app


@pytest.fixture()
def scratch(tmp_path, monkeypatch):
    """Route the process's temporary folder to one we can watch."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


@pytest.fixture()
def client(tiny_model_path, scratch):
    return TestClient(create_app(str(tiny_model_path), max_upload_mb=1))


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and 'id="protect-input"' in r.text and 'id="inspect-input"' in r.text
    assert "1 MB" in r.text  # the limit is stated on the page


def test_protect_returns_the_protected_file(client, photo, scratch):
    r = client.post("/api/protect", files={"file": ("cat.png", png_bytes(photo), "image/png")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert 'filename="cat.protected.png"' in r.headers["content-disposition"]
    out = Image.open(io.BytesIO(r.content))
    assert out.size == photo.size and out.mode == "RGB"
    r = client.post("/api/protect", files={"file": ("cat.png", png_bytes(photo), "image/png")},
                    data={"format": "jpeg", "quality": "80"})
    assert r.headers["content-type"] == "image/jpeg" and "weakens" in r.headers["x-clrnet-warnings"]
    assert list(scratch.iterdir()) == []  # uploads and outputs removed


def test_inspect_returns_the_report_and_pictures(client, photo, scratch):
    w, h = photo.size
    crop = photo.crop((0, 0, w * 3 // 4, h))
    r = client.post("/api/inspect", files={"file": ("crop.png", png_bytes(crop), "image/png")},
                    data={"original_size": f"{w}x{h}"})
    assert r.status_code == 200, r.text
    facts = r.json()
    assert facts["file"] == "crop.png" and facts["original_size"] == [w, h]
    assert set(facts) >= {"cropped", "score", "box", "protected", "kept_area"} and "images" not in facts
    r = client.post("/api/inspect?images=true", files={"file": ("crop.png", png_bytes(crop), "image/png")})
    pics = r.json()["images"]
    assert set(pics) >= {"overlay", "mask", "recovered"}
    assert all(v.startswith("data:image/png;base64,") for v in pics.values())
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("endpoint", ["/api/protect", "/api/inspect"])
def test_bad_uploads_get_a_clear_message(client, endpoint, photo, scratch):
    cases = [
        (("notes.jpg", b"this is not an image", "image/jpeg"), 400, "notes.jpg: not an image"),
        (("empty.png", b"", "image/png"), 400, "empty.png: file is empty"),
        (("huge.png", b"\0" * (1024 * 1024 + 10), "image/png"), 413, "huge.png: file too large (limit 1 MB)"),
        (("tiny.png", png_bytes(photo.resize((10, 10))), "image/png"), 400, "tiny.png: image too small"),
    ]
    for upload, code, needle in cases:
        r = client.post(endpoint, files={"file": upload})
        assert r.status_code == code, r.text
        assert r.json()["error"].startswith(needle)  # the upload's name, not a server path
    assert list(scratch.iterdir()) == []


def test_bad_options_get_a_clear_message(client, photo):
    files = {"file": ("cat.png", png_bytes(photo), "image/png")}
    r = client.post("/api/protect", files=files, data={"format": "png", "quality": "90"})
    assert r.status_code == 400 and "quality applies" in r.json()["error"]
    r = client.post("/api/inspect", files=files, data={"original_size": "big"})
    assert r.status_code == 400 and "WIDTHxHEIGHT" in r.json()["error"]


def test_openapi_lists_the_endpoints(client):
    spec = json.loads(client.get("/openapi.json").text)
    assert {"/api/protect", "/api/inspect", "/api/health"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200
