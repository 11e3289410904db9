"""The parts of predict / Grad-CAM / report that need no data and no trained model."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib.cbook
import numpy as np
import pytest
import torch

from fer3d.app import faces, predict
from fer3d.config import EMOTIONS, Paths
from fer3d.inference import Classifier
from fer3d.models import build_model
from fer3d.reporting import gradcam, report
from tests.conftest import ROOT
from tests.unit.model_files import make_model_file, mean_face


def detection(x, y, w, h, eyes=((0, 0), (10, 0)), score=0.9, sel=0) -> faces.Detection:
    return faces.Detection((x, y, w, h), np.array(eyes, float), score, sel)


def test_square_box_is_fer_framed_and_clamped_to_the_image():
    left, top, side = faces.square_box(detection(100, 100, 100, 100), 1000, 1000)
    assert side == round(faces.FRAME_SCALE * 100)
    assert abs(left + side / 2 - 150) <= 1 and abs(top + side / 2 - (150 + faces.FRAME_SHIFT_Y[0] * 100)) <= 1
    # near the corner: moved inside; larger than the image: shrunk to it
    assert faces.square_box(detection(-20, -10, 100, 100), 1000, 1000)[:2] == (0, 0)
    left, top, side = faces.square_box(detection(0, 0, 300, 300), 200, 150)
    assert side == 150 and 0 <= left <= 200 - side and top == 0


def test_overlapping_detections_merge_and_faces_go_left_to_right():
    a, b = detection(300, 0, 100, 100, score=0.8), detection(305, 2, 100, 100, score=0.9, sel=1)
    c = detection(0, 0, 50, 50, score=0.6)
    merged = faces._merge([a, b, c])
    assert merged == [c, b]


def test_eye_alignment_levels_a_tilted_line():
    import cv2

    image = np.full((200, 200), 255, np.uint8)
    cv2.line(image, (60, 80), (140, 120), 0, 3)  # a dark "eye line" tilted by atan(40/80)
    det = detection(50, 50, 100, 100, eyes=((60, 80), (140, 120)))
    assert faces.eye_angle(det) == pytest.approx(np.degrees(np.arctan2(40, 80)))
    crop = faces.crop_face(image, det, align=True).crop
    rows = np.flatnonzero((crop < 128).any(axis=1))
    assert rows.max() - rows.min() <= 3  # level: the line covers a few rows only
    tilted = faces.crop_face(image, det, align=False).crop
    rows = np.flatnonzero((tilted < 128).any(axis=1))
    assert rows.max() - rows.min() > 10


def test_inputs_and_read_errors(tmp_path):
    import cv2

    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "b.png"), np.zeros((48, 48), np.uint8))
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((60, 80, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.png").write_bytes(b"no png")
    listed = faces.list_inputs([tmp_path, tmp_path / "missing.jpg"])
    assert [p.name for p in listed] == ["a.jpg", "broken.png", "b.png", "missing.jpg"]
    assert faces.read_image(listed[0]).shape == (60, 80, 3)
    assert faces.is_crop(faces.read_image(listed[2]))
    with pytest.raises(faces.InputError, match="broken.png: not a readable image"):
        faces.read_image(listed[1])
    with pytest.raises(faces.InputError, match="missing.jpg: no such file"):
        faces.read_image(listed[3])
    assert faces.as_crop(np.zeros((96, 96, 3), np.uint8)).shape == (48, 48)


def png_header_only(width: int, height: int) -> bytes:
    """A valid little PNG whose header asks for width x height gray pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_a_file_that_is_no_image_is_named_with_what_its_bytes_are(tmp_path):
    """A 128-byte PNG asking for 2.5 gigapixels (OpenCV raises on it) is a per-file error, not a crash;
    the others say what the file was instead of listing the suffix it already has."""
    photo = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()
    cases = {
        "bomb.png": (
            png_header_only(50_000, 50_000),
            r"bomb.png: too large to decode \(Image size \(2500000000 pixels\)",
        ),
        "empty.jpg": (b"", r"empty.jpg: not a readable image \(the file is empty; expected one of .jpg"),
        "cut.jpg": (photo[:300], r"cut.jpg: not a readable image \(its 300 bytes look like a JPEG that is damaged"),
        "clip.jpg": (b"\0\0\0\x18ftypmp42" + bytes(200), r"clip.jpg: .* look like an MP4/MOV video .*rename it"),
        "notes.png": (b"hello\n", r"notes.png: .*its 6 bytes look like text"),
        "noise.png": (bytes(range(256)), r"noise.png: .*its 256 bytes decode with neither OpenCV nor Pillow"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(faces.InputError, match=message):
            faces.read_image(tmp_path / name)
    assert faces.read_image(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))).shape == (
        600,
        512,
        3,
    )


def test_a_float_tiff_with_nan_and_an_unreadable_path_fail_alone(tmp_path):
    from PIL import Image

    pixels = np.linspace(0, 2, 48 * 48, dtype=np.float32).reshape(48, 48)
    pixels[0, :5] = np.nan
    pixels[1, :5] = np.inf
    Image.fromarray(pixels, mode="F").save(tmp_path / "depth.tif")
    image = faces.read_image(tmp_path / "depth.tif")  # was: ValueError, cannot convert float NaN to integer
    assert image.dtype == np.uint8 and image.shape == (48, 48)
    assert (image[:2, :5] == 0).all() and image.max() == 255  # NaN and inf black, the finite range spread
    (tmp_path / "folder.png").mkdir()  # an OSError of its own (permissions do not stop root)
    with pytest.raises(faces.InputError, match=r"folder.png: cannot be read \(Is a directory\)"):
        faces.read_image(tmp_path / "folder.png")


def test_table_shows_faces_priors_and_errors():
    files = [
        {
            "file": "a.jpg",
            "faces": [
                {
                    "index": 0,
                    "box": [1, 2, 3, 3],
                    "predictions": {
                        "cnn": {"emotion": "happy", "probability": 0.81},
                        "landmark_mlp": {"emotion": "happy", "probability": 0.25, "from_prior": True},
                    },
                }
            ],
        },
        {"file": "b.jpg", "error": "b.jpg: no face found", "faces": []},
    ]
    text = predict.table(files, ["cnn", "landmark_mlp"])
    assert "happy 0.81" in text and "happy 0.25*" in text and "b.jpg  error: no face found" in text


def test_gradcam_on_an_untrained_net():
    torch.manual_seed(0)
    for name in ("cnn", "resnet", "vgg"):
        model = build_model(name).eval()
        x = torch.randn(3, 1, 48, 48)
        cams = gradcam.gradcam(model, x)
        assert len(cams) == 3 and all(c.map.shape == (48, 48) and c.map.min() >= 0 for c in cams)
        assert [c.class_index for c in cams] == model(x).argmax(1).tolist()
        assert all(c.class_index == 5 for c in gradcam.gradcam(model, x, target=5, layer="conv"))
    assert gradcam.class_index("happy") == 3 and gradcam.class_index("3") == 3 and gradcam.class_index(None) is None
    assert gradcam.class_index(np.int64(3)) == 3  # an argmax of probabilities
    for wrong in ("joy", True, 2.0, 7):
        with pytest.raises(ValueError, match=f"class must be one of .*found {re.escape(repr(wrong))}"):
            gradcam.class_index(wrong)


def test_gradcam_explains_the_models_own_classes_as_predict_scores_them(tmp_path):
    """A model of five classes (a face folder's): names and numbers are its own, one past the end is
    refused naming them; the class and probability shown are predict_proba's (flip + shifted views)."""
    classes = ("angry", "happy", "neutral", "sad", "surprise")
    classifier = Classifier.from_file(make_model_file(tmp_path, "cnn", tta_shift=2, classes=classes))
    crops = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    for target, index in (("happy", 1), ("sad", 3), ("4", 4), (2, 2)):
        cams = gradcam.cams_for_images(classifier, crops, target)
        assert {(c.class_index, c.label) for c in cams} == {(index, classes[index])}
    for wrong in ("disgust", "5", 7):
        with pytest.raises(ValueError, match=r"cnn's classes angry, happy, neutral, sad, surprise \(or 0\.\.4\)"):
            gradcam.cams_for_images(classifier, crops, wrong)
    predicted = classifier.predict_proba(crops=crops)
    cams = gradcam.cams_for_images(classifier, crops)
    assert [c.class_index for c in cams] == predicted.argmax(1).tolist()
    assert np.array_equal(np.stack([c.probabilities for c in cams]), predicted)
    assert [c.probability for c in cams] == pytest.approx(predicted.max(1).tolist())
    plain = gradcam.gradcam(classifier.model, classifier.encode(crops=crops))  # one plain view differs
    assert not np.allclose(np.stack([c.probabilities for c in plain]), predicted)


def test_sample_rows_one_per_class_first():
    label = np.array([0, 1, 0, 2, 1, 0, 3])
    split = np.array([2, 2, 2, 2, 2, 0, 2])
    assert gradcam.sample_rows(label, split, 5).tolist() == [0, 1, 3, 6, 2]
    assert gradcam.sample_rows(label, split, 50).tolist() == [0, 1, 3, 6, 2, 4]
    dropped = np.array([-1, 1, 0, 2, -1, 0, 3])  # FER+ leaves rows 0 and 4 out; the report passes split -1 there
    assert gradcam.sample_rows(dropped, np.where(dropped >= 0, split, -1), 50).tolist() == [2, 1, 3, 6]


def test_point_saliency_and_displacement(tmp_path):
    rng = np.random.default_rng(0)
    classifier = Classifier.from_file(make_model_file(tmp_path, "landmark_mlp"))
    face = mean_face()
    points = 20 * face[None] + rng.normal(scale=0.5, size=(2, 478, 3)).astype(np.float32) + 24
    saliency, probs = gradcam.point_saliency(classifier, points)
    assert saliency.shape == (2, 478) and (saliency >= 0).all() and saliency.std() > 0
    assert probs.shape == (2, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(gradcam.displacement(face[None] * 30 + 5, face), 0, atol=1e-4)
    with pytest.raises(ValueError, match="input 'landmarks'"):
        gradcam.point_saliency(Classifier.from_file(make_model_file(tmp_path, "cnn")), points)


def test_report_from_metrics_files(tmp_path):
    m = tmp_path / "metrics"
    (m / "eval").mkdir(parents=True)
    (m / "train").mkdir()
    per_class = {
        c: {"precision": 0.5, "recall": 0.25 * (i % 4), "f1": 0.3, "support": 3} for i, c in enumerate(EMOTIONS)
    }
    (m / "eval" / "cnn.json").write_text(
        json.dumps(
            {
                "family": "2d",
                "val_acc": 0.45,
                "images_per_second": 900.0,
                "scores": {
                    "test": {"accuracy": 0.5, "macro_f1": 0.4, "per_class": per_class},
                    "found_only": {"accuracy": 0.5},
                    "dedup": {"accuracy": 0.5},
                    "public_private": {"accuracy": 0.5},
                    "ferplus": None,
                },
            }
        )
    )
    (m / "train" / "cnn.json").write_text(json.dumps({"family": "2d", "train_minutes": 1.5, "parameters": 1000}))
    (m / "train" / "cnn_curve.csv").write_text("epoch,train_loss,val_acc\n1,1.9,0.3\n2,1.7,0.4\n")
    (m / "summary.json").write_text(json.dumps({"protocol": "p", "best_2d": "cnn", "best_3d": None, "seconds": 3.0}))
    md_path, html_path = report.write_report(Paths(tmp_path))
    md, html = md_path.read_text(), html_path.read_text()
    assert "| cnn | 2d | 50.00% | 40.00% | 50.00% |" in md and "![per-class recall](per_class_recall.png)" in md
    assert "metrics/landmarks.json is missing" in md  # a missing file is said, not fatal
    assert html.count("data:image/png;base64,") == 2 and "http" not in html
    assert (tmp_path / "reports" / "training_curves.png").exists()
    assert md.startswith("# fer3d: FER2013 emotion recognition") and "labels: fer2013, ? classes" in md
    (m / "data.json").write_text(json.dumps({"source": "folder:faces", "rows": 40, "limit": 0, "classes": ["a", "b"]}))
    md = report.write_report(Paths(tmp_path))[0].read_text()
    assert md.startswith("# fer3d: labelled face folder emotion recognition")
    assert "Data: folder:faces, 40 rows" in md and "labels: the folder's, 2 classes" in md


def test_report_of_the_committed_ferplus_run_names_its_labels(tmp_path):
    shutil.copytree(ROOT / "results" / "ferplus" / "metrics", tmp_path / "metrics")
    md = report.write_report(Paths(tmp_path))[0].read_text()
    assert "labels: ferplus, 8 classes" in md and "| resnet | 2d | 87.12% |" in md
    assert "| neutral | contempt |" in md  # the per-class table has the 8th class


# the stored pixels a camera writes for each EXIF orientation, from the upright picture (PIL)
STORED_FOR = {
    1: [],
    2: ["FLIP_LEFT_RIGHT"],
    3: ["ROTATE_180"],
    4: ["FLIP_TOP_BOTTOM"],
    5: ["TRANSPOSE"],
    6: ["ROTATE_90"],
    7: ["TRANSVERSE"],
    8: ["ROTATE_270"],
}


@pytest.mark.parametrize("orientation", sorted(STORED_FOR))
def test_photos_are_turned_upright_by_their_exif_orientation(tmp_path, orientation):
    """Phones store portrait photos sideways with an orientation tag; read_image and decode_image
    (the service's uploads) turn them upright, pixel for pixel (PNG: lossless)."""
    import io

    import matplotlib.cbook
    from PIL import Image

    upright = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    stored = upright
    for op in STORED_FOR[orientation]:
        stored = stored.transpose(getattr(Image.Transpose, op))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "PNG", exif=exif)
    (tmp_path / "photo.png").write_bytes(buffer.getvalue())
    expected = np.asarray(upright)[:, :, ::-1]  # BGR, as cv2 gives it
    assert np.array_equal(faces.read_image(tmp_path / "photo.png"), expected)
    assert np.array_equal(faces.decode_image(buffer.getvalue()), expected)
