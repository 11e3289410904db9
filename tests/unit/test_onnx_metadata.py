"""The metadata an exported .onnx file carries (fer3d.inference.onnx_runtime): what goes in comes
back, and a file that is not ours, or lacks a key, is refused naming the file and the key."""

from __future__ import annotations

import json

import pytest

from fer3d.inference.onnx_runtime import FORMAT, JSON_KEYS, TEXT_KEYS, decode_metadata, encode_metadata


def sample_metadata() -> dict:
    return {
        "format": FORMAT,
        "name": "landmark_mlp",
        "family": "3d",
        "input": "landmarks",
        "classes": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
        "prior": [0.1381, 0.0151, 0.1427, 0.2513, 0.1693, 0.1115, 0.172],
        "tta_flip": True,
        "input_stats": {"mean_face": [[0.1, -0.25, 1e-8]] * 3, "mirror_perm": [2, 1, 0]},
        "landmarks": {
            "attempts": [{"pad": 24, "fill": "gray", "scale": 1, "contrast": False}],
            "min_detection_confidence": 0.3,
        },
        "graph_input": {"name": "landmarks", "dtype": "float32", "shape": ["batch", 478, 3]},
        "in_graph": ["flip average", "softmax"],
        "training": {"best_epoch": 3, "val_acc": 0.6123456789012345},
    }


def test_round_trip_gives_back_every_value_exactly():
    meta = sample_metadata()
    props = encode_metadata(meta)
    assert all(isinstance(v, str) for v in props.values())  # ONNX metadata_props are strings
    assert set(props) == {*TEXT_KEYS, *JSON_KEYS}
    assert decode_metadata(props, "m.onnx") == meta  # floats included: JSON keeps repr digits


def test_a_2d_model_keeps_landmarks_none():
    meta = {**sample_metadata(), "family": "2d", "input": "image", "landmarks": None}
    assert decode_metadata(encode_metadata(meta), "m.onnx")["landmarks"] is None


def test_encode_refuses_missing_keys():
    meta = sample_metadata()
    del meta["prior"]
    with pytest.raises(ValueError, match=r"lacks \['prior'\]"):
        encode_metadata(meta)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "other-1"}, r"m\.onnx: expected an ONNX model exported by `fer3d export`.*found 'other-1'"),
        ({"classes": None}, r"m\.onnx: ONNX metadata lacks \['classes'\]"),
        ({"prior": "[0.1, "}, r"m\.onnx: ONNX metadata is not valid JSON"),
    ],
)
def test_decode_refuses_foreign_or_damaged_metadata(change, message):
    props = encode_metadata(sample_metadata())
    for key, value in change.items():
        if value is None:
            del props[key]
        else:
            props[key] = value
    with pytest.raises(ValueError, match=message):
        decode_metadata(props, "m.onnx")


def test_a_file_without_our_metadata_is_refused():
    with pytest.raises(ValueError, match="found None"):
        decode_metadata({"producer": json.dumps("someone else")}, "m.onnx")


def test_in_graph_says_what_the_graph_does_with_and_without_the_mirror():
    from fer3d.inference.onnx_export import in_graph

    assert in_graph("image", 0) == ["(x / 255 - mean) / std", "flip average", "softmax"]
    shifted = "views shifted 2 px up, down, left, right (edges reflected)"
    assert in_graph("image", 2) == ["(x / 255 - mean) / std", shifted, "flip average", "softmax"]
    # a model trained with train.tta_flip false: no mirror view, so no flip average in its graph
    assert in_graph("image", 0, tta_flip=False) == ["(x / 255 - mean) / std", "softmax"]
    assert in_graph("image", 2, tta_flip=False) == ["(x / 255 - mean) / std", shifted, "mean over the views", "softmax"]
    assert in_graph("landmarks", 0, tta_flip=False) == ["softmax"]


def test_hidden_onnx_files_are_not_models(tmp_path):
    from fer3d.inference.onnx_runtime import exported_models

    for name in ("cnn.onnx", "._resnet.onnx", ".vgg.onnx.x1y2.onnx", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert exported_models(tmp_path) == ["cnn"]


def test_models_option_names_each_model_once_and_refuses_naming_none():
    from fer3d.app.commands.options import model_names

    assert model_names(None) is None
    assert model_names(" cnn, resnet,cnn ,fusion") == ["cnn", "resnet", "fusion"]
    with pytest.raises(ValueError, match=r"--models ' , ' names no model; give comma-separated names"):
        model_names(" , ")


def test_a_model_missing_from_an_export_folder_is_named_as_such(tmp_path):
    from fer3d.inference.predictor import Predictor

    (tmp_path / "cnn.onnx").write_bytes(b"x")  # never loaded: the name check comes first
    with pytest.raises(
        ValueError,
        match=r"unknown model or fusion \['resnet'\]; models exported to .*: \['cnn'\], no .*fusion.json, so no",
    ):
        Predictor.from_dir(tmp_path, ["resnet"], backend="onnx")
