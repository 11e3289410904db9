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
