"""Using the trained models: `fer3d predict` on photos and crops (and that it reproduces the evaluate
stage's numbers), Grad-CAM, the 3D face viewer and the report, on models a tiny pipeline trains."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MODEL_NAMES, requires_data
from tests.integration.models_fixture import fer3d_cli

pytestmark = [requires_data, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")


def sample_photo() -> Path:
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A real photo (one face), a photo without a face, a file that is no image."""
    import cv2

    d = tmp_path_factory.mktemp("inputs")
    photo = d / "grace_hopper.jpg"
    shutil.copy(sample_photo(), photo)
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    cv2.imwrite(str(d / "gradient.png"), np.dstack([ramp, ramp[::-1], ramp]))
    (d / "broken.jpg").write_bytes(b"this is not a jpeg")
    image = cv2.imread(str(photo))
    cv2.imwrite(str(d / "pair.png"), np.hstack([image, cv2.flip(image, 1)]))  # two faces, side by side
    return {"photo": photo, "no_face": d / "gradient.png", "broken": d / "broken.jpg", "pair": d / "pair.png"}


@pytest.fixture(scope="module")
def photo_run(tiny_repo, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "predictions.json"
    result = fer3d_cli(
        tiny_repo,
        "predict",
        str(inputs["photo"]),
        str(inputs["no_face"]),
        str(inputs["broken"]),
        str(inputs["pair"]),
        "--out",
        str(out),
    )
    return result, json.loads(out.read_text()) if out.exists() else None


# ------------------------------------------------------------------ predict on photos


def test_photo_has_one_face_with_a_plausible_box(photo_run, inputs):
    result, data = photo_run
    assert result.returncode == 0, result.stderr[-2000:]
    entry = next(f for f in data["files"] if f["file"] == str(inputs["photo"]))
    assert entry["image_size"] == [512, 600]
    assert len(entry["faces"]) == 1
    x, y, w, h = entry["faces"][0]["box"]
    assert w == h and 150 <= w <= 350, entry["faces"][0]["box"]  # the face is about 200 px wide
    assert x >= 0 and y >= 0 and x + w <= 512 and y + h <= 600
    assert 200 <= x + w / 2 <= 330 and 170 <= y + h / 2 <= 320  # centred on the face, not the picture


def test_two_faces_in_one_photo_left_to_right(photo_run, inputs):
    _, data = photo_run
    faces = next(f for f in data["files"] if f["file"] == str(inputs["pair"]))["faces"]
    assert [f["index"] for f in faces] == [0, 1]
    (x0, _, w0, _), (x1, _, _, _) = faces[0]["box"], faces[1]["box"]
    assert x0 + w0 <= x1 and x0 < 512 <= x1  # one face in each half
    assert all(set(f["predictions"]) == set(data["models"]) for f in faces)


def test_head_pose_of_a_face_and_its_mirror_image(photo_run, inputs):
    """The pair is the photo beside its mirror image: same pitch, yaw and roll (in the photo's frame,
    after the crop was levelled) negated, within FaceMesh's few degrees of asymmetry."""
    _, data = photo_run
    single = next(f for f in data["files"] if f["file"] == str(inputs["photo"]))["faces"][0]["head_pose"]
    left, right = (f["head_pose"] for f in next(f for f in data["files"] if f["file"] == str(inputs["pair"]))["faces"])
    assert set(single) == {"yaw", "pitch", "roll"}
    assert all(abs(v) < 30 for v in single.values()), single  # she faces the camera
    assert left == pytest.approx(single, abs=2.0)  # the same face, found in a wider picture
    assert right["yaw"] == pytest.approx(-left["yaw"], abs=3) and right["roll"] == pytest.approx(-left["roll"], abs=3)
    assert right["pitch"] == pytest.approx(left["pitch"], abs=3)


def test_every_model_gives_7_probabilities_summing_to_1(photo_run, inputs):
    _, data = photo_run
    assert set(data["models"]) == set(MODEL_NAMES) | {"fusion", "fusion_2d", "fusion_3d"}
    face = next(f for f in data["files"] if f["file"] == str(inputs["photo"]))["faces"][0]
    assert face["mesh_found"] is True
    for name in data["models"]:
        p = face["predictions"][name]
        assert "from_prior" not in p, f"{name}: {face.get('note')}"
        probs = p["probabilities"]
        assert list(probs) == data["classes"] and len(probs) == 7
        assert abs(sum(probs.values()) - 1) < 1e-4 and min(probs.values()) >= 0
        assert p["emotion"] == max(probs, key=probs.get) and p["probability"] == pytest.approx(
            max(probs.values()), abs=1e-5
        )


def test_files_without_a_face_or_unreadable_get_a_clear_message(photo_run, inputs):
    result, data = photo_run
    by_file = {f["file"]: f for f in data["files"]}
    assert "no face found" in by_file[str(inputs["no_face"])]["error"]
    assert "not a readable image" in by_file[str(inputs["broken"])]["error"]
    assert by_file[str(inputs["no_face"])]["faces"] == [] == by_file[str(inputs["broken"])]["faces"]
    assert f"{inputs['no_face']}: no face found" in result.stderr
    assert f"{inputs['broken']}: not a readable image" in result.stderr
    assert "grace_hopper.jpg" in result.stdout and "s per face" in result.stdout


def test_nothing_usable_exits_nonzero(tiny_repo, inputs, tmp_path):
    result = fer3d_cli(
        tiny_repo,
        "predict",
        str(inputs["no_face"]),
        str(inputs["broken"]),
        str(tmp_path / "absent.png"),
        "--out",
        str(tmp_path / "p.json"),
    )
    assert result.returncode != 0
    assert f"{tmp_path / 'absent.png'}: no such file" in result.stderr


def test_missing_model_file_exits_nonzero_naming_it(tiny_repo, inputs, tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copy(tiny_repo / "models" / "cnn.pt", tmp_path / "models" / "cnn.pt")
    result = fer3d_cli(
        tiny_repo,
        "predict",
        str(inputs["photo"]),
        "--models",
        "cnn,mesh_gnn",
        "--models-dir",
        str(tmp_path / "models"),
        "--out",
        "-",
    )
    assert result.returncode != 0
    assert str(tmp_path / "models" / "mesh_gnn.pt") in result.stderr and "dvc pull" in result.stderr
    empty = fer3d_cli(tiny_repo, "predict", str(inputs["photo"]), "--models-dir", str(tmp_path / "none"), "--out", "-")
    assert empty.returncode != 0 and "no trained model files" in empty.stderr


# ------------------------------------------------------------------ predict = the evaluate stage


@pytest.fixture(scope="module")
def crop_run(tiny_repo, tmp_path_factory):
    """`fer3d predict --crops` on the subset's PrivateTest rows written as 48x48 PNGs, with the model
    folder copied away from the project: no params.yaml, data/ or metrics/ beside it."""
    import cv2

    from fer3d.io import load_npz

    away = tmp_path_factory.mktemp("away")
    models = shutil.copytree(tiny_repo / "models", away / "models", ignore=shutil.ignore_patterns("checkpoints"))
    crops = away / "crops"
    crops.mkdir()
    fer = load_npz(tiny_repo / "data" / "fer2013.npz")
    rows = np.flatnonzero(fer["split"] == 2)
    for r in rows:
        cv2.imwrite(str(crops / f"row{r:05d}.png"), fer["images"][r])
    out = away / "predictions.json"
    result = fer3d_cli(away, "predict", "--crops", str(crops), "--models-dir", str(models), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (away / "params.yaml").exists() and not (away / "data").exists()
    data = json.loads(out.read_text())
    assert [Path(f["file"]).name for f in data["files"]] == [f"row{r:05d}.png" for r in rows]
    return rows, data


ROWS = [*MODEL_NAMES, "fusion", "fusion_2d", "fusion_3d"]


@pytest.mark.parametrize("name", ROWS)
def test_predict_on_crops_matches_the_evaluate_stage_image_by_image(tiny_repo, crop_run, name):
    from fer3d.io import load_npz

    rows, data = crop_run
    assert len(rows) >= 40
    evaluated = load_npz(tiny_repo / "metrics" / "probabilities.npz")
    index = {int(r): i for i, r in enumerate(evaluated["rows"])}
    classes = data["classes"]
    for r, entry in zip(rows.tolist(), data["files"]):
        face = entry["faces"][0]
        assert face["box"] == [0, 0, 48, 48]
        assert face["mesh_found"] == bool(evaluated["has_mesh"][index[r]]), f"row {r}: FaceMesh differs"
        got = np.array([face["predictions"][name]["probabilities"][c] for c in classes])
        expected = evaluated[name][index[r]]
        assert got.argmax() == expected.argmax(), f"row {r}"
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"row {r}")
    # the accuracy predict gives is the evaluate stage's PrivateTest number for that row
    label = load_npz(tiny_repo / "data" / "fer2013.npz")["label"]
    predicted = [classes.index(f["faces"][0]["predictions"][name]["emotion"]) for f in data["files"]]
    accuracy = float(np.mean(np.array(predicted) == label[rows]))
    stage = json.loads((tiny_repo / "metrics" / "eval" / f"{name}.json").read_text())
    assert round(accuracy, 5) == pytest.approx(stage["scores"]["test"]["accuracy"], abs=1e-5)
    if name in MODEL_NAMES:  # both scored in the arithmetic the model file asks for here, as the stage records
        from fer3d.inference import Classifier

        assert stage["scoring_precision"] == Classifier.from_file(tiny_repo / "models" / f"{name}.pt").precision


def test_predict_reports_the_fusion_rows_of_fusion_json(tiny_repo, crop_run):
    _, data = crop_run
    saved = json.loads((tiny_repo / "models" / "fusion.json").read_text())["fusions"]
    assert data["fusions"] == {n: {"members": f["members"], "weights": f["weights"]} for n, f in saved.items()}
    assert {"cnn", "landmark_mlp"} <= set(saved["fusion"]["members"])  # `all`: 2D and 3D models together


# ------------------------------------------------------------------ Grad-CAM


def test_gradcam_map_is_a_nonnegative_48x48_heat_map(tiny_repo):
    from fer3d.inference import Classifier
    from fer3d.io import load_npz
    from fer3d.reporting import gradcam

    fer = load_npz(tiny_repo / "data" / "fer2013.npz")
    images = fer["images"][gradcam.sample_rows(fer["label"], fer["split"], 4)]
    for name in ("cnn", "resnet", "vgg"):
        classifier = Classifier.from_file(tiny_repo / "models" / f"{name}.pt")
        assert isinstance(gradcam.last_conv(classifier.model), __import__("torch").nn.Conv2d)
        for cam in gradcam.cams_for_images(classifier, images):  # the predicted class
            assert cam.map.shape == (48, 48) and cam.map.dtype == np.float32
            assert cam.map.min() >= 0 and cam.map.max() == pytest.approx(1, abs=1e-6)
            assert cam.map.std() > 0.01, f"{name}: constant map"
            assert cam.probability == pytest.approx(cam.probabilities.max())
        for cam in gradcam.cams_for_images(classifier, images, target=3):  # a chosen class
            assert cam.class_index == 3 and cam.map.shape == (48, 48) and cam.map.min() >= 0
        for cam in gradcam.cams_for_images(classifier, images, layer="conv"):  # the last Conv2d's output
            assert cam.map.shape == (48, 48) and cam.map.min() >= 0 and cam.map.max() <= 1 + 1e-6


def test_gradcam_command_writes_pngs(tiny_repo, inputs, tmp_path):
    result = fer3d_cli(
        tiny_repo,
        "gradcam",
        str(inputs["photo"]),
        str(inputs["no_face"]),
        "--model",
        "cnn,resnet",
        "--class",
        "happy",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no face found" in result.stderr
    for png in ("grace_hopper_cnn.png", "grace_hopper_resnet.png", "grid.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cnn happy" in result.stdout
    bad = fer3d_cli(tiny_repo, "gradcam", str(inputs["photo"]), "--class", "joy", "--out", str(tmp_path))
    assert bad.returncode != 0 and "class must be one of" in bad.stderr


def test_report_stage_wrote_gradcam_samples(tiny_repo):
    for name in ("cnn", "resnet", "vgg"):
        assert (tiny_repo / "reports" / "gradcam" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tiny_repo / "reports" / "gradcam" / "landmark_mlp.png").exists()


# ------------------------------------------------------------------ 3D viewer


def viewer_data(html: str) -> dict:
    return json.loads(re.search(r"const DATA = (\{.*?\});\n", html, re.S).group(1))


@pytest.fixture(scope="module")
def viewer_pages(tiny_repo, inputs, tmp_path_factory):
    d = tmp_path_factory.mktemp("viewer")
    pages = {}
    for color in ("displacement", "attention"):
        result = fer3d_cli(
            tiny_repo,
            "viewer",
            str(inputs["photo"]),
            "--out",
            str(d / f"{color}.html"),
            "--png",
            str(d / f"{color}.png"),
            "--color",
            color,
            "--model",
            "mesh_gnn",
        )
        assert result.returncode == 0, result.stderr[-2000:]
        pages[color] = d / f"{color}.html"
    return pages


@pytest.mark.parametrize("color", ["displacement", "attention"])
def test_viewer_html_is_self_contained_with_the_mesh(tiny_repo, viewer_pages, color):
    from fer3d.app.mesh_view import triangles
    from fer3d.io import load_npz

    html = viewer_pages[color].read_text()
    assert not re.search(r"https?://", html), "the viewer must open offline"
    data = viewer_data(html)
    # the meshes stage's triangles: the viewer draws the same mesh without the project's data/
    assert data["triangles"] == load_npz(tiny_repo / "data" / "mesh_topology.npz")["triangles"].tolist()
    assert data["triangles"] == triangles().tolist()
    assert len(data["faces"]) == 1 and len(data["faces"][0]["points"]) == 478
    values = np.array(data["faces"][0]["values"])
    assert values.shape == (478,) and values.min() == 0 and values.max() == 1
    assert viewer_pages[color].with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_viewer_attention_needs_a_landmark_model(tiny_repo, inputs, tmp_path):
    result = fer3d_cli(
        tiny_repo,
        "viewer",
        str(inputs["photo"]),
        "--color",
        "attention",
        "--model",
        "voxel_cnn",
        "--out",
        str(tmp_path / "x.html"),
    )
    assert result.returncode != 0 and "input 'landmarks'" in result.stderr
    result = fer3d_cli(tiny_repo, "viewer", str(inputs["no_face"]), "--out", str(tmp_path / "x.html"))
    assert result.returncode != 0 and "no face found" in result.stderr


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} not installed (apt-get install -y chromium): no headless screenshot of the viewer",
)
def test_viewer_renders_in_headless_chromium(viewer_pages, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=800,600",
            viewer_pages["displacement"].as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("RGB"), np.float32)
    assert pixels.std() > 20, "blank screenshot"
    coloured = np.abs(pixels - pixels.mean(axis=2, keepdims=True)).max(axis=2) > 20  # the viridis mesh
    assert coloured.mean() > 0.05, f"only {coloured.mean():.1%} of the page is coloured: the mesh was not drawn"


# ------------------------------------------------------------------ report


def test_report_markdown_has_the_table_and_figures(tiny_repo):
    md = (tiny_repo / "reports" / "report.md").read_text()
    assert (
        "| model | family | PrivateTest acc | macro-F1 | found-only acc | dedup acc | Public+Private acc | FER+ acc |"
        in md
    )
    for name in ROWS:
        assert f"\n| {name} |" in md
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    for expected in ("confusion.png", "per_class_recall.png", "training_curves.png", "gradcam/cnn.png"):
        assert expected in images
    for rel in images:
        assert (tiny_repo / "reports" / rel).read_bytes()[:4] == b"\x89PNG", rel
    for section in ("Per-class recall", "detection rates", "Timings"):
        assert section in md
    assert "| PrivateTest |" in md and "train samples/s" in md


def test_report_html_is_self_contained(tiny_repo):
    html = (tiny_repo / "reports" / "report.html").read_text()
    sources = re.findall(r"src='([^']+)'", html)
    assert len(sources) >= 6 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64decode(sources[0].split(",", 1)[1])[:4] == b"\x89PNG"
    assert not re.search(r"https?://", html)
    assert "<table>" in html and "PrivateTest acc" in html


def test_out_pointing_at_a_folder_or_a_file_gets_a_one_line_error(tiny_repo, inputs, tmp_path):
    folder, existing = tmp_path / "a_folder", tmp_path / "a_file.txt"
    folder.mkdir()
    existing.write_text("keep me")
    photo = str(inputs["photo"])
    for args, message in (
        (["predict", photo, "--out", str(folder)], f"--out {folder} is a folder"),
        (["gradcam", photo, "--out", str(existing)], f"--out {existing} is a file"),
        (["viewer", photo, "--out", str(folder)], f"--out {folder} is a folder"),
        (["viewer", photo, "--png", str(folder), "--out", str(tmp_path / "v.html")], f"--png {folder} is a folder"),
    ):
        result = fer3d_cli(tiny_repo, *args)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-1000:]
        assert "Traceback" not in result.stderr
    assert existing.read_text() == "keep me"
