"""`fer3d serve`: the models behind an HTTP API (FastAPI) and one offline web page.

  GET  /              the page (fer3d/app/static/index.html: upload or webcam, boxes, bars, Grad-CAM, 3D mesh)
  POST /predict       an image → the JSON `fer3d predict` writes for one file
  POST /explain       an image → per face, each 2D model's Grad-CAM overlay and the 3D mesh viewer page
  GET  /health        status, loaded models (with their family), classes, version, upload limit
  GET  /docs          Swagger UI from the swagger-ui-bundle package (FastAPI's default loads it from a CDN)
  GET  /openapi.json  the API's description

An image comes as the multipart field "file" (curl -F file=@face.jpg) or as the raw body with an
image/* or application/octet-stream Content-Type. Every error is {"error": "..."} with its status:
400 empty or malformed body, 413 too large, 415 not an image (or another Content-Type), 422 no
face or a bad option. The models and detectors are loaded once, by the caller of create_app."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..inference import Predictor
from .explain import explain_image
from .faces import FaceFinder, ImageTooLarge, InputError, check_image_size, decode_image, is_crop
from .predict import Run, predict_image, result_json

MEBIBYTE = 1 << 20
MULTIPART_SLACK = 64 * 1024  # room for the multipart part headers and option fields around the file
DRAINED = "fer3d.drained"  # request scope flag: this much of a refused body was read already
DRAIN_BYTES = 64 * MEBIBYTE  # a refused body up to this size is read (and dropped) before the error answer
PAGE = Path(__file__).parent / "static" / "index.html"
HOW_TO_SEND = (
    "send the image as the multipart field 'file' (curl -F file=@photo.jpg URL) or as the raw body "
    "with Content-Type image/* or application/octet-stream "
    "(curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' URL)"
)
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class ApiError(Exception):
    """A request the service refuses: sent as {"error": message} with `status`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    data: bytes
    name: str  # the multipart file name (no folders), else "upload"
    fields: dict[str, str]  # the multipart form's other fields


# ------------------------------------------------------------------------------ reading uploads


def _too_large(size: str, limit: int) -> ApiError:
    return ApiError(413, f"upload too large: {size} bytes, the limit is {limit:,} bytes (fer3d serve --max-upload-mb)")


async def _receive_body(request: Request, limit: int) -> tuple[bytes | None, int]:
    """(the body, its size), or (None, bytes seen) when it passes `limit`, whatever Content-Length said.
    The rest of a refused body is read and dropped, up to DRAIN_BYTES: most clients send the whole
    body before they read the answer, and a server that closes with unread data resets the
    connection, so the client would get a reset instead of the 413."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > max(limit, DRAIN_BYTES):
            request.scope[DRAINED] = True  # _error must not read another DRAIN_BYTES of it
            break
    return (b"".join(chunks), size) if size <= limit else (None, size)


async def _parse_multipart(request: Request, body: bytes) -> Upload:
    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=10)
    except StarletteHTTPException as e:  # python-multipart's parse errors, as Starlette reports them
        raise ApiError(400, f"malformed multipart body: {e.detail}") from None
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            found = "a text field" if file is not None else f"fields {sorted(form.keys()) or 'none'}"
            raise ApiError(422, f"the multipart form needs a file in the field 'file', found {found}; {HOW_TO_SEND}")
        data = await file.read()
        name = Path(file.filename or "upload").name[:200] or "upload"
        return Upload(data, name, {k: v for k, v in form.items() if isinstance(v, str)})
    finally:
        await form.close()


async def read_upload(request: Request, limit: int) -> Upload:
    """The uploaded image's bytes, whichever way it was sent; ApiError for what cannot be used."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = content_type == "multipart/form-data"
    if not (multipart or content_type.startswith("image/") or content_type == "application/octet-stream"):
        raise ApiError(415, f"unsupported Content-Type {content_type or '(none)'!r}; {HOW_TO_SEND}")
    body_limit = limit + (MULTIPART_SLACK if multipart else 0)
    declared = request.headers.get("content-length", "")
    cap = max(body_limit, DRAIN_BYTES)
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(f"{int(declared):,}", limit)  # too large even to read and drop
    body, size = await _receive_body(request, body_limit)
    if body is None:
        raise _too_large(f"{size:,}" if size <= cap else f"more than {cap:,}", limit)
    upload = await _parse_multipart(request, body) if multipart else Upload(body, "upload", {})
    if not upload.data:
        raise ApiError(400, f"empty upload: no image bytes came; {HOW_TO_SEND}")
    if len(upload.data) > limit:
        raise _too_large(f"{len(upload.data):,}", limit)
    return upload


def _option(upload: Upload, key: str, query_value: bool) -> bool:
    """A boolean option: the form field when the form has one, else the query parameter."""
    if key not in upload.fields:
        return query_value
    value = upload.fields[key].strip().lower()
    if value not in TRUE + FALSE:
        raise ApiError(422, f"form field {key!r} must be one of {TRUE + FALSE}, found {upload.fields[key]!r}")
    return value in TRUE


# ------------------------------------------------------------------------------ the work


class Service:
    """The loaded models and face detectors, and the one lock every request's work holds."""

    def __init__(self, predictor: Predictor, finder: FaceFinder | None, max_upload_bytes: int):
        self.predictor = predictor
        self.finder = finder
        self.max_upload_bytes = max_upload_bytes
        # FastAPI runs this work in its thread pool, and MediaPipe's graphs (the FaceFinder's detectors,
        # the Predictor's FaceMesh) are stateful objects that must not be entered by two threads at once.
        # One request at a time also keeps two requests from splitting the CPU cores between them.
        self.lock = threading.Lock()

    def health(self) -> dict:
        families = {name: c.family for name, c in self.predictor.classifiers.items()}
        families.update({name: "fusion" for name in self.predictor.fusions})
        return {
            "status": "ok",
            "version": __version__,
            "models": self.predictor.names,
            "families": families,
            "classes": self.predictor.classes,
            "max_upload_bytes": self.max_upload_bytes,
        }

    def _image(self, upload: Upload, crops: bool) -> np.ndarray:
        try:
            check_image_size(upload.data, upload.name)
            image = decode_image(upload.data, upload.name)
        except ImageTooLarge as e:
            raise ApiError(413, str(e)) from None
        except InputError as e:
            raise ApiError(415, str(e)) from None
        if self.finder is None and not crops and not is_crop(image):  # a 48x48 image is a crop anyway
            raise ApiError(422, "this server has no face detector; send 48x48 face crops with crops=true")
        return image

    def predict(self, upload: Upload, crops: bool, align: bool) -> dict:
        image = self._image(upload, crops)
        with self.lock:
            start = time.perf_counter()
            try:
                entry = predict_image(image, self.predictor, self.finder, upload.name, crops, align)
            except InputError as e:
                raise ApiError(422, e.telling("crops=true")) from None
            seconds = time.perf_counter() - start
        return result_json(Run([entry], len(entry["faces"]), seconds), self.predictor, crops, align)

    def explain(self, upload: Upload, crops: bool, align: bool) -> dict:
        image = self._image(upload, crops)
        with self.lock:
            try:
                return explain_image(image, self.predictor, self.finder, upload.name, crops, align)
            except InputError as e:
                raise ApiError(422, e.telling("crops=true")) from None


# ------------------------------------------------------------------------------ the app

_BINARY = {"schema": {"type": "string", "format": "binary"}}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "the image: multipart field 'file' (with optional fields crops, align), or the raw body",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "crops": {"type": "boolean"},
                        "align": {"type": "boolean"},
                    },
                }
            },
            "image/*": _BINARY,
            "application/octet-stream": _BINARY,
        },
    }
}
_ERROR = {"content": {"application/json": {"example": {"error": "upload.jpg: no face found (640x480 image); ..."}}}}
ERRORS = {
    400: {"description": "empty or malformed body", **_ERROR},
    413: {"description": "larger than --max-upload-mb (or over 50 megapixels)", **_ERROR},
    415: {"description": "not an image, or a Content-Type other than multipart, image/* or octet-stream", **_ERROR},
    422: {"description": "no face found, or a bad option", **_ERROR},
}
CROPS = Query(False, description="the image is a face crop already: no detection (48x48 images always are)")
ALIGN = Query(True, description="rotate each face so its eyes are level before cropping")


async def _error(request: Request, status: int, message: str) -> JSONResponse:
    """The JSON error, after reading and dropping a body nobody read (a refused Content-Type, a bad
    option, a wrong path) up to DRAIN_BYTES, as _receive_body does for a 413: answering with the body
    unread resets the connection, and the client sees that instead of the message."""
    declared = request.headers.get("content-length", "")
    if not ((declared.isdigit() and int(declared) > DRAIN_BYTES) or request.scope.get(DRAINED)):
        with contextlib.suppress(RuntimeError, ClientDisconnect):  # RuntimeError: read already ("Stream consumed")
            await _receive_body(request, 0)  # keeps nothing, drops up to DRAIN_BYTES
    return JSONResponse({"error": message}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as {"error": "..."}: ours, Starlette's (404, 405) and FastAPI's option validation."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return await _error(request, e.status, e.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        return await _error(request, e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_option(request: Request, e: RequestValidationError):
        parts = [f"{'.'.join(map(str, err['loc']))}: {err['msg']} (found {err.get('input')!r})" for err in e.errors()]
        return await _error(request, 422, "; ".join(parts))


def _add_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files from the swagger-ui-bundle package, so it works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="fer3d API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _add_routes(app: FastAPI, service: Service, page: str) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", summary="status, loaded models (and their family), classes, version")
    async def health() -> JSONResponse:
        return JSONResponse(service.health())

    @app.post("/predict", summary="emotions of the faces in one image", openapi_extra=UPLOAD_BODY, responses=ERRORS)
    async def predict(request: Request, crops: bool = CROPS, align: bool = ALIGN) -> JSONResponse:
        """The JSON `fer3d predict` writes for one file: classes, models, fusions, and `files[0]` with
        each face's box, head pose and every model's and fusion row's probabilities."""
        upload = await read_upload(request, service.max_upload_bytes)
        options = _option(upload, "crops", crops), _option(upload, "align", align)
        return JSONResponse(await run_in_threadpool(service.predict, upload, *options))

    @app.post("/explain", summary="Grad-CAM and 3D mesh of each face", openapi_extra=UPLOAD_BODY, responses=ERRORS)
    async def explain(request: Request, crops: bool = CROPS, align: bool = ALIGN) -> JSONResponse:
        """Per face (found as /predict finds them): each 2D model's Grad-CAM overlay of the class it
        predicts (PNG, base64) and the face's FaceMesh as a self-contained 3D viewer page (HTML)."""
        upload = await read_upload(request, service.max_upload_bytes)
        options = _option(upload, "crops", crops), _option(upload, "align", align)
        return JSONResponse(await run_in_threadpool(service.explain, upload, *options))


def create_app(predictor: Predictor, finder: FaceFinder | None, max_upload_mb: float = 10.0) -> FastAPI:
    """The service around already loaded models and a face finder (None: crops only); closing them
    is the caller's business."""
    if not max_upload_mb > 0:
        raise ValueError(f"--max-upload-mb must be > 0, found {max_upload_mb}")
    app = FastAPI(
        title="fer3d",
        version=__version__,
        description=f"Facial emotions from FER2013-trained 2D image and 3D face-mesh models: {HOW_TO_SEND}.",
        docs_url=None,
        redoc_url=None,
    )
    service = Service(predictor, finder, int(max_upload_mb * MEBIBYTE))
    app.state.service = service
    _add_error_handlers(app)
    _add_docs(app)
    _add_routes(app, service, PAGE.read_text(encoding="utf-8"))
    return app
