"""`fer3d export --format onnx` on the models a tiny pipeline trains: every model exports, each
.onnx file is self-contained, onnxruntime gives the torch Classifier's probabilities on the
subset's real PrivateTest faces (stored crops and landmarks, fed as the evaluate stage feeds them),
`fer3d predict --backend onnx` equals `--backend torch` face by face (fusion rows included), the
ONNX path runs with torch made unimportable, and user mistakes get one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MODEL_NAMES, requires_data
from tests.integration.models_fixture import QUIET, fer3d_cli

pytestmark = [requires_data, pytest.mark.slow]
TOLERANCE = 1e-4  # max |probability difference| between the backends (torch in fp32, the graph's arithmetic)
ROWS = [*MODEL_NAMES, "fusion", "fusion_2d", "fusion_3d"]


@pytest.fixture(scope="module")
def exported(tiny_repo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "onnx"
    result = fer3d_cli(
        tiny_repo, "export", "--format", "onnx", "--models-dir", "models", "--out", str(out), timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in MODEL_NAMES:
        assert f"{out / name}.onnx:" in result.stdout
    return out


@pytest.fixture(scope="module")
def private_test(tiny_repo) -> dict[str, np.ndarray]:
    """The subset's PrivateTest rows as the evaluate stage scores them: crops, float32 points, found."""
    from fer3d.io import load_npz

    fer, lm = load_npz(tiny_repo / "data" / "fer2013.npz"), load_npz(tiny_repo / "data" / "landmarks.npz")
    rows = np.flatnonzero(fer["split"] == 2)
    return {
        "rows": rows,
        "crops": fer["images"][rows],
        "points": lm["landmarks"][rows].astype(np.float32),
        "found": lm["found"][rows],
    }


def test_every_model_and_the_fusion_file_are_exported(tiny_repo, exported):
    assert sorted(p.name for p in exported.iterdir()) == sorted([f"{n}.onnx" for n in MODEL_NAMES] + ["fusion.json"])
    assert (exported / "fusion.json").read_bytes() == (tiny_repo / "models" / "fusion.json").read_bytes()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_onnx_file_keeps_what_the_model_file_keeps(tiny_repo, exported, name):
    import onnx

    from fer3d.inference.onnx_runtime import decode_metadata
    from fer3d.models.model_file import read_model_file

    model = onnx.load(exported / f"{name}.onnx")
    meta = decode_metadata({p.key: p.value for p in model.metadata_props}, name)
    payload = read_model_file(tiny_repo / "models" / f"{name}.pt")
    for key in ("name", "family", "classes", "tta_flip", "landmarks"):
        assert meta[key] == payload[key], key
    assert meta["input"] == payload["input"]
    np.testing.assert_array_equal(np.float32(meta["prior"]), np.float32(payload["prior"]))
    stats = payload["input_stats"]
    for key in stats.keys() & {"mean", "std", "mean_face", "length_mean", "edge_length_lo", "grid", "extent"}:
        np.testing.assert_array_equal(np.asarray(meta["input_stats"][key]), np.asarray(stats[key]), err_msg=key)
    assert (meta["landmarks"] is None) == (payload["family"] == "2d")
    (graph_input,) = model.graph.input
    assert graph_input.name == meta["graph_input"]["name"]
    assert graph_input.type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch axis


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_onnx_gives_the_torch_probabilities_on_private_test(tiny_repo, exported, private_test, name):
    from fer3d.inference import Classifier, OnnxClassifier

    torch_model = Classifier.from_file(tiny_repo / "models" / f"{name}.pt", precision="fp32")
    onnx_model = OnnxClassifier.from_file(exported / f"{name}.onnx")
    assert (onnx_model.name, onnx_model.family, onnx_model.kind, onnx_model.classes, onnx_model.tta_flip) == (
        torch_model.name,
        torch_model.family,
        torch_model.kind,
        torch_model.classes,
        torch_model.tta_flip,
    )
    assert onnx_model.needs_mesh == torch_model.needs_mesh
    assert onnx_model.mesh_settings == torch_model.mesh_settings
    faces = {"crops": private_test["crops"], "points": private_test["points"]}
    # the stored `found`, and a copy with every third face meshless: those rows are the prior in both
    for has_mesh in (private_test["found"], private_test["found"] & (np.arange(len(faces["crops"])) % 3 > 0)):
        expected = torch_model.predict_proba(**faces, has_mesh=has_mesh)
        got = onnx_model.predict_proba(**faces, has_mesh=has_mesh)
        assert got.dtype == np.float32 and got.shape == expected.shape == (len(faces["crops"]), 7)
        assert np.abs(got - expected).max() <= TOLERANCE
        assert (got.argmax(1) == expected.argmax(1)).all()
        if onnx_model.needs_mesh:
            np.testing.assert_array_equal(got[~has_mesh], np.repeat(onnx_model.prior[None], (~has_mesh).sum(), 0))
    # a batch of one and batches that do not divide the rows give the same rows
    one = onnx_model.predict_proba(crops=faces["crops"][:1], points=faces["points"][:1])
    onnx_model.batch_size = 7
    np.testing.assert_allclose(onnx_model.predict_proba(**faces)[:1], one, atol=1e-6)


@pytest.fixture(scope="module")
def crop_runs(tiny_repo, exported, private_test, tmp_path_factory) -> dict[str, dict]:
    """`fer3d predict --crops` on the PrivateTest rows as 48x48 PNGs, with each backend."""
    import cv2

    d = tmp_path_factory.mktemp("backends")
    crops = d / "crops"
    crops.mkdir()
    for r, crop in zip(private_test["rows"], private_test["crops"]):
        cv2.imwrite(str(crops / f"row{r:05d}.png"), crop)
    runs = {}
    for backend, models in (("torch", tiny_repo / "models"), ("onnx", exported)):
        out = d / f"{backend}.json"
        args = ["predict", "--crops", str(crops), "--models-dir", str(models), "--backend", backend, "--out", str(out)]
        args += ["--precision", "fp32"]  # both: the onnx backend accepts fp32 and auto, never bf16
        result = fer3d_cli(tiny_repo, *args)
        assert result.returncode == 0, result.stderr[-2000:]
        runs[backend] = json.loads(out.read_text())
    return runs


def test_predict_with_the_onnx_backend_equals_torch_face_by_face(crop_runs):
    torch_run, onnx_run = crop_runs["torch"], crop_runs["onnx"]
    assert sorted(onnx_run["models"]) == sorted(torch_run["models"]) == sorted(ROWS)
    assert onnx_run["fusions"] == torch_run["fusions"]
    classes = torch_run["classes"]
    assert len(torch_run["files"]) >= 40
    for t_file, o_file in zip(torch_run["files"], onnx_run["files"], strict=True):
        assert t_file["file"] == o_file["file"]
        (t_face,), (o_face,) = t_file["faces"], o_file["faces"]
        assert o_face["mesh_found"] == t_face["mesh_found"]
        for name in ROWS:
            t, o = t_face["predictions"][name], o_face["predictions"][name]
            diff = max(abs(t["probabilities"][c] - o["probabilities"][c]) for c in classes)
            assert diff <= TOLERANCE, (t_file["file"], name, diff)
            assert o["emotion"] == t["emotion"] and o.get("from_prior") == t.get("from_prior"), (t_file["file"], name)


NO_TORCH_SCRIPT = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
from fer3d.inference import Predictor
from fer3d.inference.onnx_runtime import OnnxClassifier

folder, faces, out = sys.argv[1:4]
f = np.load(faces)
predictor = Predictor.from_dir(folder, backend="onnx")
assert all(isinstance(c, OnnxClassifier) for c in predictor.classifiers.values())
scores = predictor.predict_proba(f["crops"], f["points"], f["found"])
np.savez(out, **scores.probas)
loaded = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] == "torch" and mod is not None)
print("torch modules loaded:", loaded)
"""


def test_onnx_predictor_runs_without_torch(tiny_repo, exported, private_test, tmp_path):
    from fer3d.inference import Predictor

    faces = tmp_path / "faces.npz"
    found = private_test["found"] & (np.arange(len(private_test["found"])) % 4 > 0)  # some meshless faces too
    np.savez(faces, crops=private_test["crops"], points=private_test["points"], found=found)
    env = {**os.environ, **QUIET}
    env.pop("FER3D_ROOT", None)
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_SCRIPT, str(exported), str(faces), str(tmp_path / "out.npz")],
        cwd=tiny_repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch modules loaded: []" in result.stdout
    got = np.load(tmp_path / "out.npz")
    expected = Predictor.from_dir(tiny_repo / "models", precision="fp32").predict_proba(
        private_test["crops"], private_test["points"], found
    )
    assert sorted(got.files) == sorted(expected.probas) == sorted(ROWS)
    for name in ROWS:
        assert np.abs(got[name] - expected.probas[name]).max() <= TOLERANCE, name


def test_a_failed_export_leaves_the_folder_as_it_was(tiny_repo, exported, tmp_path):
    from fer3d.inference.onnx_export import export_models

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_repo / "models" / "cnn.pt", models / "cnn.pt")
    (models / "vgg.pt").write_bytes(b"not a model file")  # fails after cnn's graph was made
    before = shutil.copytree(exported, tmp_path / "onnx")
    state = {f.name: f.read_bytes() for f in before.iterdir()}
    with pytest.raises(ValueError, match="vgg.pt"):
        export_models(models, before, ["cnn", "vgg"])
    assert {f.name: f.read_bytes() for f in before.iterdir()} == state  # no new cnn beside the old vgg
    # a models folder without fusion.json: the older export's fusion rows go, they were fitted to other models
    export_models(models, before, ["cnn"])
    assert not (before / "fusion.json").exists() and (before / "cnn.onnx").read_bytes() != b""


def test_user_mistakes_get_one_line_errors(tiny_repo, exported, tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    cases = [
        (["--format", "tflite", "--out", str(tmp_path / "x")], 2, "invalid choice: 'tflite'"),
        (["--format", "onnx", "--models", "cnn,nope", "--out", str(tmp_path / "x")], 1, "unknown model ['nope']"),
        (["--format", "onnx", "--models", "cnn", "--out", str(a_file)], 1, f"--out {a_file} is a file"),
        (["--format", "onnx", "--models-dir", str(tmp_path), "--out", str(tmp_path / "x")], 1, "no trained model"),
    ]
    for args, code, message in cases:
        result = fer3d_cli(tiny_repo, "export", *args)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert not (tmp_path / "x").exists()  # nothing written by a refused export
    # predict's onnx backend on a folder of .pt files says where the .onnx files come from
    result = fer3d_cli(tiny_repo, "predict", "--crops", str(a_file), "--backend", "onnx", "--models-dir", "models")
    assert result.returncode == 1 and "run `fer3d export --format onnx` first" in result.stderr, result.stderr
    copy = shutil.copytree(exported, tmp_path / "onnx")
    (copy / "cnn.onnx").write_bytes(b"not a model")
    result = fer3d_cli(tiny_repo, "predict", "--crops", str(a_file), "--backend", "onnx", "--models-dir", str(copy))
    assert result.returncode == 1 and f"{copy / 'cnn.onnx'}: not a readable ONNX model" in result.stderr
    # the exported graphs are fp32: asking them for bf16 is refused, naming what was found
    args = ("--backend", "onnx", "--models-dir", str(exported), "--precision", "bf16")
    result = fer3d_cli(tiny_repo, "predict", "--crops", str(a_file), *args)
    assert result.returncode == 1 and "runs on the CPU in fp32" in result.stderr, result.stderr
    assert "precision='bf16'" in result.stderr and "Traceback" not in result.stderr
