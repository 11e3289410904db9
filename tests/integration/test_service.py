"""`fer3d serve`: the real server (`python -m fer3d.app.cli serve` in the tiny pipeline's project
copy, its own process group) answering as `fer3d predict` does, refusing bad uploads with clear
JSON errors while it keeps serving, and its page driven in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import requires_data
from tests.integration.chromium import CHROMIUM, Chromium
from tests.integration.conftest import LocalServer, _start, free_port
from tests.integration.models_fixture import QUIET, fer3d_cli
from tests.integration.test_predict import sample_photo

pytestmark = [requires_data, pytest.mark.slow]
MAX_UPLOAD_MB = 1  # small, so an oversize image is cheap to make
ARTIFACTS = Path("/tmp/fer3d_artifacts")  # where the lead looks at the page's screenshots


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A real photo (one face), a picture without a face, a text file, an image over the upload limit."""
    import cv2

    d = tmp_path_factory.mktemp("service_inputs")
    photo = d / "grace_hopper.jpg"
    shutil.copy(sample_photo(), photo)
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    cv2.imwrite(str(d / "gradient.png"), np.dstack([ramp, ramp[::-1], ramp]))
    (d / "notes.txt").write_text("this is not an image\n")
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)  # PNG cannot compress it
    cv2.imwrite(str(d / "noise.png"), noise)
    assert (d / "noise.png").stat().st_size > MAX_UPLOAD_MB * 2**20
    return {"photo": photo, "no_face": d / "gradient.png", "text": d / "notes.txt", "big": d / "noise.png"}


@pytest.fixture(scope="module")
def server(tiny_repo):
    """The service on the tiny models, started as a user starts it, stopped (its whole group) at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "fer3d.app.cli", "serve", "--port", str(port), "--max-upload-mb", str(MAX_UPLOAD_MB)]
    started = _start("fer3d-serve", cmd, tiny_repo, f"{url}/health", timeout=180, env=QUIET, url=url)
    try:
        yield started
    finally:
        started.stop()


def call(url: str, data: bytes | None = None, content_type: str | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a GET (no data) or POST, errors included."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def multipart(path: Path, **fields: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the file in the field 'file', as `curl -F file=@PATH` sends it."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
    parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + path.read_bytes() + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(server: LocalServer, path: Path, endpoint: str = "/predict", query: str = "", **fields) -> tuple[int, dict]:
    body, content_type = multipart(path, **fields)
    return call(f"{server.url}{endpoint}{query}", body, content_type)


def chunked_post(server: LocalServer, path: str, content_type: str, body: bytes) -> tuple[int, dict]:
    """POST with Transfer-Encoding: chunked (no Content-Length), over a plain socket: the size is known
    only from what arrives. Sending errors are tolerated so the answer can still be read."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for i in range(0, len(body), 65536):
                chunk = body[i : i + 65536]
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before taking it all
        raw = b""
        while data := sock.recv(65536):
            raw += data
    status_line, _, rest = raw.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


@pytest.fixture(scope="module")
def cli_result(tiny_repo, inputs, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("service_predict") / "predictions.json"
    result = fer3d_cli(tiny_repo, "predict", str(inputs["photo"]), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(out.read_text())


def assert_same_faces(got: list[dict], expected: list[dict]) -> None:
    """Same boxes, pose, mesh flags and every model's and fusion row's probabilities (<= 1e-6)."""
    assert len(got) == len(expected) >= 1
    for g, e in zip(got, expected):
        for key in ("index", "box", "rotation_degrees", "mesh_found", "detection_score"):
            assert g[key] == e[key], key
        assert (g["head_pose"] is None) == (e["head_pose"] is None)
        if e["head_pose"]:
            assert all(abs(g["head_pose"][k] - v) <= 1e-6 for k, v in e["head_pose"].items()), g["head_pose"]
        assert g["predictions"].keys() == e["predictions"].keys()
        for name, p in e["predictions"].items():
            q = g["predictions"][name]
            assert q["emotion"] == p["emotion"] and q.get("from_prior") == p.get("from_prior"), name
            diff = max(abs(q["probabilities"][c] - v) for c, v in p["probabilities"].items())
            assert diff <= 1e-6, f"{name}: probabilities differ by {diff}"


# ------------------------------------------------------------------ the API


def test_health_lists_models_classes_and_version(server, cli_result):
    status, health = call(f"{server.url}/health")
    assert status == 200 and health["status"] == "ok"
    assert health["models"] == cli_result["models"] and health["classes"] == cli_result["classes"]
    assert health["version"] and health["max_upload_bytes"] == MAX_UPLOAD_MB * 2**20
    assert {health["families"][n] for n in health["models"]} == {"2d", "3d", "fusion"}


def test_upload_gives_what_fer3d_predict_gives(server, inputs, cli_result):
    status, result = upload(server, inputs["photo"])
    assert status == 200, result
    for key in ("classes", "models", "fusions", "mode", "align_eyes", "faces"):
        assert result[key] == cli_result[key], key
    (entry,), (expected,) = result["files"], cli_result["files"]
    assert entry["file"] == "grace_hopper.jpg" and entry["image_size"] == expected["image_size"]
    assert_same_faces(entry["faces"], expected["faces"])
    assert entry["faces"][0]["head_pose"] is not None  # the tiny models found a mesh on this face


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/octet-stream"])
def test_raw_body_upload_gives_the_same_faces(server, inputs, cli_result, content_type):
    status, result = call(f"{server.url}/predict", inputs["photo"].read_bytes(), content_type)
    assert status == 200, result
    assert result["files"][0]["file"] == "upload"
    assert_same_faces(result["files"][0]["faces"], cli_result["files"][0]["faces"])


def test_options_by_query_and_form(server, inputs, cli_result):
    status, crops = upload(server, inputs["photo"], query="?crops=true")
    assert status == 200 and crops["mode"] == "crops"
    assert crops["files"][0]["faces"][0]["box"] == [0, 0, 512, 600]  # the whole picture is the face
    assert cli_result["files"][0]["faces"][0]["rotation_degrees"] != 0  # her head is tilted ...
    for query, fields in (("?align=false", {}), ("", {"align": "false"})):
        status, result = upload(server, inputs["photo"], query=query, **fields)
        assert status == 200 and result["align_eyes"] is False
        assert result["files"][0]["faces"][0]["rotation_degrees"] == 0  # ... and is no longer levelled


def test_explain_gives_gradcam_and_mesh_per_face(server, inputs, cli_result):
    from PIL import Image

    status, result = upload(server, inputs["photo"], "/explain")
    assert status == 200, result
    (face,), (expected,) = result["faces"], cli_result["files"][0]["faces"]
    assert face["box"] == expected["box"]
    two_d = [n for n in cli_result["models"] if n in ("cnn", "resnet", "vgg")]
    assert sorted(face["gradcam"]) == sorted(two_d)
    for name, cam in face["gradcam"].items():
        assert cam["emotion"] == expected["predictions"][name]["emotion"]  # the class /predict reports
        image = Image.open(io.BytesIO(base64.b64decode(cam["png_base64"])))
        assert image.size == (192, 192) and np.asarray(image).std() > 10
    html = face["mesh"]["html"]
    assert face["mesh"]["note"] is None and html.startswith("<!doctype html>")
    points = json.loads(html.split("const DATA = ", 1)[1].split(";\n", 1)[0])["faces"][0]["points"]
    assert np.asarray(points).shape == (478, 3) and "http" not in html  # the whole mesh, no CDN


def test_a_text_file_is_refused_with_json(server, inputs):
    status, body = upload(server, inputs["text"])
    assert status == 415 and body["error"].startswith("notes.txt: not a readable image"), body
    status, body = call(f"{server.url}/predict", b"hello", "text/plain")
    assert status == 415 and "unsupported Content-Type 'text/plain'" in body["error"] and "-F file=@" in body["error"]


def test_empty_and_malformed_uploads(server):
    assert call(f"{server.url}/predict", b"", "image/png")[0] == 400
    status, body = call(f"{server.url}/predict", b"--x\r\n", "multipart/form-data; boundary=x")
    assert status in (400, 422) and body["error"], body
    status, body = call(f"{server.url}/predict?crops=maybe", b"x", "image/png")
    assert status == 422 and "crops" in body["error"], body


def test_a_refused_body_is_read_before_the_answer(server):
    """A wrong Content-Type, a bad option or a wrong path is refused before the route reads the body;
    the body (8 MiB here, as a client sends it whole before reading) is still read and dropped, so the
    client gets the JSON answer instead of a connection reset."""
    body = bytes(8 * 2**20)
    status, answer = call(f"{server.url}/predict", body, "text/plain")
    assert status == 415 and "unsupported Content-Type 'text/plain'" in answer["error"], answer
    status, answer = call(f"{server.url}/predict?crops=maybe", body, "image/png")
    assert status == 422 and "crops" in answer["error"], answer
    status, answer = call(f"{server.url}/nowhere", body, "image/png")
    assert status == 404 and answer["error"] == "Not Found", answer
    assert call(f"{server.url}/health")[0] == 200


def test_oversize_uploads_get_413(server, inputs):
    status, body = upload(server, inputs["big"])  # Content-Length says it
    assert status == 413 and "upload too large" in body["error"] and "1,048,576" in body["error"], body
    data = inputs["big"].read_bytes()
    status, body = chunked_post(server, "/predict", "image/png", data)  # only the real size says it
    assert status == 413 and f"{len(data):,} bytes" in body["error"], body


def test_no_face_gets_422_with_the_message_predict_gives(server, tiny_repo, inputs):
    """... with the API's option for a face crop (crops=true) where the CLI names --crops."""
    status, body = upload(server, inputs["no_face"])
    assert status == 422, body
    result = fer3d_cli(tiny_repo, "predict", str(inputs["no_face"]), "--out", "-")
    cli_message = result.stderr.split(f"{inputs['no_face']}: ", 1)[1].splitlines()[0]
    assert cli_message.endswith("use --crops")
    assert body["error"] == f"gradient.png: {cli_message.removesuffix('--crops')}crops=true"
    assert "no face found (320x240 image)" in body["error"]


def test_still_serving_after_the_bad_uploads(server, inputs, cli_result):
    assert server.process.poll() is None
    assert call(f"{server.url}/health")[0] == 200
    status, result = upload(server, inputs["photo"])
    assert status == 200
    assert_same_faces(result["files"][0]["faces"], cli_result["files"][0]["faces"])


def test_openapi_and_offline_docs(server):
    status, spec = call(f"{server.url}/openapi.json")
    assert status == 200 and {"/predict", "/explain", "/health"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    with urllib.request.urlopen(f"{server.url}/docs", timeout=30) as response:
        page = response.read().decode()
    assert "/docs-assets/swagger-ui-bundle.js" in page and "cdn." not in page
    with urllib.request.urlopen(f"{server.url}/docs-assets/swagger-ui-bundle.js", timeout=30) as response:
        assert response.status == 200 and len(response.read()) > 100_000


def test_in_process_app_with_one_2d_model_and_no_detector(tiny_repo, inputs):
    """create_app around a Predictor the caller loaded: crops only (no face finder), no 3D model."""
    import cv2
    from fastapi.testclient import TestClient

    from fer3d.app.explain import NO_3D_MODEL
    from fer3d.app.faces import as_crop
    from fer3d.app.service import create_app
    from fer3d.inference import Classifier, Predictor

    predictor = Predictor.from_dir(tiny_repo / "models", ["cnn"])
    expected = Classifier.from_file(tiny_repo / "models" / "cnn.pt").predict_proba(
        crops=as_crop(cv2.imread(str(inputs["photo"])))[None]
    )[0]
    photo = {"file": ("face.jpg", inputs["photo"].read_bytes(), "image/jpeg")}
    with TestClient(create_app(predictor, None, max_upload_mb=0.5)) as client:
        assert client.get("/health").json()["models"] == ["cnn"]
        response = client.post("/predict?crops=true", files=photo)
        assert response.status_code == 200, response.text
        probabilities = response.json()["files"][0]["faces"][0]["predictions"]["cnn"]["probabilities"]
        assert np.allclose(list(probabilities.values()), expected, atol=1e-6)
        explained = client.post("/explain?crops=true", files=photo).json()["faces"][0]
        assert list(explained["gradcam"]) == ["cnn"] and explained["mesh"] == {"html": None, "note": NO_3D_MODEL}
        response = client.post("/predict", files=photo)  # a photo, but no detector to find its faces
        assert response.status_code == 422 and "crops=true" in response.json()["error"]


# ------------------------------------------------------------------ the page, in a real browser


def _page_facts(page) -> dict:
    return page.evaluate(
        """(() => {
          const q = (s) => [...document.querySelectorAll(s)];
          const bars = (m) => q(`.prob-row[data-model="${m}"] .bar`)
            .map((b) => [b.dataset.class, parseFloat(b.style.width)]);
          return {
            boxes: q('.face-box').length, headline: document.querySelector('#headline').firstChild.textContent,
            fusion: bars('fusion'), cnn: bars('cnn'), mesh3d: bars('landmark_mlp'),
            families: q('tr.group').map((g) => g.dataset.family), pose: q('#pose span').map((s) => s.textContent),
            cams: q('#cams figure img').filter((i) => i.complete && i.naturalWidth === 192).length,
            mesh: (document.querySelector('#mesh') || {}).srcdoc?.length || 0,
            error: document.querySelector('#error').textContent,
          };
        })()"""
    )


def _mesh_is_drawn(page, shot: Path) -> float:
    """The share of coloured (viridis) pixels inside the mesh iframe, from a screenshot of it."""
    from PIL import Image

    page.evaluate("document.querySelector('#mesh').scrollIntoView()")
    time.sleep(0.5)  # let the iframe paint
    rect = page.evaluate(
        "(({x, y, width, height}) => [x, y, width, height])(document.querySelector('#mesh').getBoundingClientRect())"
    )
    page.screenshot(shot)
    x, y, w, h = (round(v) for v in rect)
    pixels = np.asarray(Image.open(shot).convert("RGB"), np.float32)[max(y, 0) : y + h, x : x + w]
    return float((np.abs(pixels - pixels.mean(axis=2, keepdims=True)).max(axis=2) > 30).mean())


def _full_page_screenshot(page, path: Path) -> Path:
    """The whole page in one PNG: the viewport made as tall as the page, so the iframe is drawn too."""
    height = page.evaluate("document.documentElement.scrollHeight")
    page.send(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False}
    )
    page.evaluate("window.scrollTo(0, 0)")
    time.sleep(0.5)
    page.screenshot(path)
    page.send(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
    )
    return path


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install -y chromium): no browser test of the page"
)
def test_page_in_headless_chromium(server, inputs, cli_result, tmp_path):
    expected = cli_result["files"][0]["faces"][0]["predictions"]
    shots = {name: tmp_path / f"{name}.png" for name in ("service_page", "service_page_full", "service_page_error")}
    with Chromium(tmp_path / "chromium") as browser:
        page = browser.new_page(1280, 800)
        page.goto(f"{server.url}/")
        page.wait_for("document.querySelector('#server').textContent.includes('models')", 30, "the /health line")
        page.set_files("#file", [inputs["photo"]])
        page.wait_for("['done', 'error'].includes(document.body.dataset.state)", 120, "the result")
        facts = _page_facts(page)
        assert facts["error"] == "" and facts["boxes"] == 1
        assert facts["headline"] == expected["fusion"]["emotion"]
        assert facts["families"] == ["2d", "3d", "fusion"] and len(facts["pose"]) == 3
        for name, key in (("fusion", "fusion"), ("cnn", "cnn"), ("landmark_mlp", "mesh3d")):
            widths = dict(facts[key])
            assert widths.keys() == expected[name]["probabilities"].keys(), name
            assert all(abs(widths[c] - 100 * p) < 1e-3 for c, p in expected[name]["probabilities"].items()), name
        assert facts["cams"] == 3 and facts["mesh"] > 10_000
        page.screenshot(shots["service_page"])
        assert _mesh_is_drawn(page, tmp_path / "mesh.png") > 0.1, "the 3D mesh iframe shows no coloured mesh"
        _full_page_screenshot(page, shots["service_page_full"])
        assert not page.events("Runtime.exceptionThrown"), page.events("Runtime.exceptionThrown")
        urls = {e["request"]["url"] for e in page.events("Network.requestWillBeSent")}
        assert all(u.startswith((server.url, "data:", "blob:")) for u in urls), urls  # no CDN, nothing outside

        page.set_files("#file", [inputs["text"]])  # the API's error, shown to the person
        page.wait_for("document.body.dataset.state === 'error'", 60, "the error message")
        error = page.evaluate("document.querySelector('#error').textContent")
        assert "HTTP 415" in error and "notes.txt: not a readable image" in error, error
        page.screenshot(shots["service_page_error"])

        page.goto(f"{server.url}/docs")  # Swagger UI from the package's files, offline
        assert page.wait_for("document.querySelectorAll('.opblock').length >= 3", 30, "Swagger UI's operations")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in shots.values():
        shutil.copy(shot, ARTIFACTS / shot.name)
    print(f"screenshots: {', '.join(map(str, shots.values()))} (copies in {ARTIFACTS})")
