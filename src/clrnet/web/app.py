"""The web page and its JSON API (``clrnet serve``): FastAPI over the Python API.

``GET /`` is one small page (no build step); ``POST /api/protect`` returns the
protected file, ``POST /api/inspect`` the report as JSON (with the pictures as
data URLs when asked); ``/docs`` is the OpenAPI page. Uploads go to a temporary
folder that is removed when the request ends; nothing is written elsewhere. A
bad or oversized upload gets a 400 / 413 answer with a one-line ``error``.
"""

from __future__ import annotations

import base64
import io
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image

from clrnet.api import Model, get_model, inspect, protect
from clrnet.core.geometry import parse_size
from clrnet.files.formats import OutputFormat, choose_format, save_photo
from clrnet.files.imageio import ImageInputError, Photo, read_photo

DEFAULT_MAX_UPLOAD_MB = 50
MEDIA_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png", "tiff": "image/tiff"}
CHUNK = 1 << 20


class UploadError(Exception):
    """A problem with an upload, answered with ``status`` and a one-line message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _parse_size(text: Optional[str]) -> tuple[int, int] | None:
    try:
        return parse_size(text)
    except ValueError as e:
        raise UploadError(f"original_size {e}") from None


def create_app(model: Model | str | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> FastAPI:
    """The application, with ``model`` loaded once and uploads capped at ``max_upload_mb``."""
    m = get_model(model)
    limit = int(max_upload_mb * CHUNK)
    lock = threading.Lock()  # one photo at a time through the model: bounded memory
    app = FastAPI(title="clrnet", version="0.1.0",
                  description="Protect photos against malicious cropping; inspect received copies.")
    page = (resources.files("clrnet.web") / "page.html").read_text(encoding="utf-8")
    page = page.replace("{{MAX_MB}}", f"{max_upload_mb:g}")

    def receive(upload: UploadFile, folder: Path) -> Path:
        """Store an upload in ``folder`` (refusing it beyond the limit)."""
        name = Path(upload.filename or "upload").name or "upload"
        path = folder / name
        size = 0
        with open(path, "wb") as f:
            while chunk := upload.file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadError(f"{name}: file too large (limit {max_upload_mb:g} MB)", 413)
                f.write(chunk)
        if size == 0:
            raise UploadError(f"{name}: file is empty")
        return path

    def read_upload(path: Path) -> Photo:
        """The uploaded photo; a problem is reported with the upload's own name, not our temp path."""
        try:
            return read_photo(path)
        except ImageInputError as e:
            raise UploadError(str(e).replace(str(path), path.name)) from None

    @app.exception_handler(UploadError)
    async def upload_error(_, exc: UploadError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/api/health")
    def health() -> dict:
        """The model in use and the upload limit."""
        return {"status": "ok", "model": m.name,
                "max_upload_mb": max_upload_mb}

    @app.post("/api/protect", responses={200: {"content": {"image/*": {}}}})
    def api_protect(file: UploadFile = File(..., description="The photo to protect."),
                    format: Optional[str] = Form(None, description="jpeg, webp, png or tiff (default: the upload's)"),
                    quality: Optional[int] = Form(None, description="JPEG / WebP quality")) -> Response:
        """The protected photo as a file (same size, metadata kept); warnings in ``X-Clrnet-Warnings``."""
        with tempfile.TemporaryDirectory(prefix="clrnet-web-") as tmp:
            src = receive(file, Path(tmp))
            try:
                fmt: OutputFormat = choose_format(src, format or None, quality)
            except ValueError as e:
                raise UploadError(str(e)) from None
            photo = read_upload(src)
            with lock:
                result = protect(photo.image, m)
            out = Path(tmp) / "out" / (src.stem + ".protected" + fmt.suffix)
            warnings = save_photo(result, out, fmt, photo.metadata)
            body = out.read_bytes()
        headers = {"Content-Disposition": f'attachment; filename="{out.name}"',
                   "X-Clrnet-Warnings": " | ".join(warnings).encode("ascii", "replace").decode()}
        return Response(body, media_type=MEDIA_TYPES[fmt.name], headers=headers)

    @app.post("/api/inspect")
    def api_inspect(file: UploadFile = File(..., description="The received photo."),
                    original_size: Optional[str] = Form(None, description="WIDTHxHEIGHT of the original, if known"),
                    images: bool = Query(False, description="Include recovered, mask, overlay (and presence) "
                                                            "as PNG data URLs")) -> dict:
        """Was the photo cropped from a protected one, where, and what was cut away (report.json's facts)."""
        size = _parse_size(original_size)
        with tempfile.TemporaryDirectory(prefix="clrnet-web-") as tmp:
            src = receive(file, Path(tmp))
            photo = read_upload(src)
        with lock:
            found = inspect(photo.image, m, original_size=size)
        out = {"file": src.name, **found.to_dict()}
        if images:
            pics = {"overlay": found.overlay(), "mask": found.mask, "recovered": found.recovered}
            if found.presence is not None:
                pics["presence"] = found.presence
            if found.tamper_mask is not None:
                pics["tamper_mask"] = found.tamper_mask
            if found.passive_map is not None and found.passive_mask is not None:
                pics["passive_map"] = found.passive_map
                pics["passive_mask"] = found.passive_mask
            out["images"] = {k: _data_url(v) for k, v in pics.items()}
        return out

    return app
