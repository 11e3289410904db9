"""The predictor as an MLflow pyfunc model (`fer3d log-model`): logged and registered on a real local
MLflow server, loaded back it answers as `fer3d predict` does, one bad row does not fail a batch, and
`mlflow models serve` answers the same over HTTP, with the fer3d code logged in the model."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import requires_data
from tests.integration.conftest import BIN, _start, free_port
from tests.integration.models_fixture import fer3d_cli
from tests.integration.test_predict import sample_photo

pytestmark = [requires_data, pytest.mark.slow]
mlflow = pytest.importorskip("mlflow")
NAME = "fer3d-predictor-test"
SERVE_START_TIMEOUT = 240.0  # loading 8 models and mediapipe took 29 s alone, ~2 min with 4 jobs on 2 cores
REQUEST_TIMEOUT = 180


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_same_entry(got, expected, path="entry"):
    """Equal JSON, numbers within 1e-6 (probabilities are rounded to 6 decimals, head pose to 2)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), f"{path}: keys {sorted(got)} != {sorted(expected)}"
        for key in expected:
            assert_same_entry(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), f"{path}: {got} != {expected}"
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same_entry(g, e, f"{path}[{i}]")
    elif isinstance(expected, float) or isinstance(got, float):
        assert abs(got - expected) <= 1e-6 + 1e-12, f"{path}: {got} != {expected}"
    else:
        assert got == expected, f"{path}: {got!r} != {expected!r}"


@pytest.fixture(scope="module")
def photo() -> bytes:
    return sample_photo().read_bytes()


@pytest.fixture(scope="module")
def predict_entry(tiny_repo, tmp_path_factory) -> dict:
    """`fer3d predict` on the photo: its per-file entry."""
    out = tmp_path_factory.mktemp("predict") / "p.json"
    result = fer3d_cli(tiny_repo, "predict", str(sample_photo()), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    (entry,) = json.loads(out.read_text())["files"]
    return entry


@pytest.fixture(scope="module")
def logged(tiny_repo, mlflow_server) -> dict:
    """`fer3d log-model` against the server, registered: the URIs it printed."""
    result = fer3d_cli(
        tiny_repo, "log-model", "--tracking-uri", mlflow_server, "--registered-model-name", NAME, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    uris = dict(re.findall(r"^(model|registered): (\S+)$", result.stdout, re.MULTILINE))
    assert uris.keys() == {"model", "registered"}, result.stdout
    return uris


@contextlib.contextmanager
def tracking(uri: str):
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def model(logged, mlflow_server):
    with tracking(mlflow_server):
        return mlflow.pyfunc.load_model(logged["registered"])


def test_logged_with_code_models_requirements_and_registered(logged, mlflow_server, tiny_repo, tmp_path):
    run_id = re.fullmatch(r"runs:/(\w+)/fer3d", logged["model"]).group(1)
    assert logged["registered"] == f"models:/{NAME}/1"
    client = mlflow.MlflowClient(mlflow_server)
    version = client.get_model_version(NAME, "1")
    assert version.run_id == run_id and version.status == "READY"
    with tracking(mlflow_server):  # the runs:/ URI of an MLflow 3 logged model resolves through the global URI
        local = mlflow.artifacts.download_artifacts(logged["model"], dst_path=str(tmp_path))
    files = {os.path.relpath(os.path.join(d, f), local) for d, _, fs in os.walk(local) for f in fs}
    models = {f.name for f in (tiny_repo / "models").glob("*.pt")} | {"fusion.json"}
    assert {f"artifacts/models/{m}" for m in models} <= files
    assert {"code/fer3d/inference/predictor.py", "code/fer3d/app/pyfunc.py"} <= files
    assert not any("__pycache__" in f for f in files)
    requirements = Path(local, "requirements.txt").read_text().split()
    pins = dict(line.split("==") for line in requirements)
    for dist in ("torch", "numpy", "mediapipe", "opencv-contrib-python-headless", "mlflow"):
        assert pins.get(dist), f"{dist} not pinned in {requirements}"
    inputs = {c["name"]: c for c in json.loads(mlflow.models.Model.load(local).signature.inputs.to_json())}
    assert inputs["image"]["required"] and not inputs["crops"]["required"]


def test_pyfunc_gives_what_fer3d_predict_gives(model, photo, predict_entry):
    (entry,) = model.predict(_frame([{"image": b64(photo), "name": predict_entry["file"]}]))
    assert_same_entry(json.loads(json.dumps(entry)), predict_entry)
    assert entry["faces"][0]["head_pose"] is not None and entry["faces"][0]["mesh_found"] is True


def test_bad_rows_get_errors_while_good_rows_work(model, photo, predict_entry):
    import cv2

    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    no_face = cv2.imencode(".png", np.dstack([ramp, ramp[::-1], ramp]))[1].tobytes()
    flat = cv2.imencode(".png", np.zeros((7200, 7200), np.uint8))[1].tobytes()  # 52 MP in ~100 KB
    sky = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 20000 +X 20000\n"  # OpenCV would start on 1.6 GB
    rows = [
        {"image": "%% not base64 %%", "name": "junk"},
        {"image": b64(b"this is not a jpeg"), "name": "broken.jpg"},
        {"image": b64(no_face), "name": "gradient.png"},
        {"image": "data:image/jpeg;base64," + b64(photo), "name": predict_entry["file"]},
        {"image": b64(photo)},
        {"image": b64(flat), "name": "flat.png"},
        {"image": b64(sky), "name": "sky.hdr"},
        {"image": "  ", "name": "blank"},
        {"name": "no image"},
    ]
    out = model.predict(_frame(rows))
    assert [e["file"] for e in out] == [
        *("junk", "broken.jpg", "gradient.png", predict_entry["file"], "row 4"),
        *("flat.png", "sky.hdr", "blank", "no image"),
    ]
    assert "junk: 'image' is not valid base64" in out[0]["error"]
    assert "broken.jpg: not a readable image" in out[1]["error"]
    assert out[2]["error"].startswith("gradient.png: no face found")
    assert out[2]["error"].endswith("use a 'crops' column of true")  # the pyfunc's input, not the CLI's --crops
    assert all(e["faces"] == [] for e in out[:3] + out[5:])
    assert_same_entry(out[3], predict_entry)
    assert_same_entry(out[4], {**predict_entry, "file": "row 4"})
    assert out[5]["error"] == "flat.png: 7200x7200 image (52 megapixels); the limit is 50 megapixels"
    assert out[6]["error"].startswith("sky.hdr: not a readable image (expected one of .jpg")
    assert out[7]["error"] == "blank: 'image' is empty; expected a base64-encoded image file"
    assert out[8]["error"] == "no image: 'image' is missing; expected a base64-encoded image file"


def test_crops_and_align_columns_are_used(model, photo, predict_entry):
    import cv2

    x, y, w, h = predict_entry["faces"][0]["box"]
    face = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)[y : y + h, x : x + w]
    crop = b64(cv2.imencode(".png", face)[1].tobytes())
    as_crop, unaligned = model.predict(_frame([{"image": crop, "crops": True}, {"image": b64(photo), "align": False}]))
    assert as_crop["faces"][0]["box"] == [0, 0, w, h] and as_crop["faces"][0]["detection_score"] is None
    assert unaligned["faces"][0]["rotation_degrees"] == 0.0 != predict_entry["faces"][0]["rotation_degrees"]


def test_served_model_answers_like_in_process(logged, model, mlflow_server, photo, tmp_path):
    rows = [{"image": b64(photo), "name": "photo.jpg"}, {"image": b64(b"nope"), "name": "bad.png"}]
    expected = json.loads(json.dumps(model.predict(_frame(rows))))
    port = free_port()
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", logged["registered"], "--env-manager", "local"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the server execs `uvicorn` from PATH
        "OMP_NUM_THREADS": "1",
        "GLOG_minloglevel": "2",
    }
    url = f"http://127.0.0.1:{port}"
    server = _start("mlflow-serve", cmd, tmp_path, f"{url}/ping", SERVE_START_TIMEOUT, env, url)
    try:
        split = {"dataframe_split": {"columns": ["image", "name"], "data": [[r["image"], r["name"]] for r in rows]}}
        for body in (split, {"dataframe_records": rows}):
            request = urllib.request.Request(
                f"{url}/invocations", json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                answer = json.load(response)
            assert list(answer) == ["predictions"]
            assert_same_entry(answer["predictions"], expected)
        # the served model imports the fer3d code logged with it, not the project's
        assert re.search(r"fer3d pyfunc: .* code from \S+/code/fer3d\b", server.log_tail(20000)), server.log_tail()
    finally:
        server.stop()


def test_server_without_logged_model_api_gets_it_as_run_artifacts(
    tiny_repo, mlflow_server, photo, predict_entry, capsys
):
    """MLflow 2.x servers (DagsHub's) answer 404 on the logged-model API: the model goes in as run
    artifacts, registers and loads all the same. Also a subset of the models (--models)."""
    from fer3d.app.pyfunc import log_predictor
    from tests.integration.mlflow_proxy import OLD_SERVER, MlflowProxy

    proxy = MlflowProxy(mlflow_server, refused=OLD_SERVER)
    try:
        logged = log_predictor(tiny_repo / "models", ["cnn", "landmark_mlp"], f"{NAME}-old", tracking_uri=proxy.url)
    finally:
        proxy.close()
    assert f"{proxy.url} has no logged-model API; logging the model as run artifacts" in capsys.readouterr().out
    client = mlflow.MlflowClient(mlflow_server)
    listed = {a.path for a in client.list_artifacts(logged.run_id, "fer3d/artifacts/models")}
    assert listed == {"fer3d/artifacts/models/cnn.pt", "fer3d/artifacts/models/landmark_mlp.pt"}
    assert logged.registered_uri == f"models:/{NAME}-old/1"
    with tracking(mlflow_server):
        (entry,) = mlflow.pyfunc.load_model(logged.registered_uri).predict(_frame([{"image": b64(photo)}]))
    assert set(entry["faces"][0]["predictions"]) == {"cnn", "landmark_mlp"}
    for name in ("cnn", "landmark_mlp"):
        assert_same_entry(entry["faces"][0]["predictions"][name], predict_entry["faces"][0]["predictions"][name])


def test_log_model_without_model_files_says_so(tiny_repo, tmp_path):
    result = fer3d_cli(tiny_repo, "log-model", "--models-dir", str(tmp_path), "--tracking-uri", "sqlite:///x.db")
    assert result.returncode == 1
    assert re.search(rf"fer3d log-model: error: {re.escape(str(tmp_path))}: no .*model files", result.stderr)
    assert "Traceback" not in result.stderr
    assert not (tiny_repo / "x.db").exists()


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)
