"""Exported models (<name>.onnx, written by `fer3d export --format onnx`) → probabilities with
onnxruntime, without torch: `OnnxClassifier.from_file(path)` answers like `Classifier`.

One .onnx file is self-contained: its metadata_props (JSON strings) keep what the model file kept
(classes, family, input kind, normalisation stats, mean face, edge-length quantisation, voxel grid,
test-time flip, training class prior, FaceMesh settings). The graph does the image
standardisation, the voxel densification, the flip average and the softmax; the numpy part of the
3D inputs (Procrustes alignment, edge lengths, voxel indices) is fer3d.face3d.point_features, the
code the torch models use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..face3d.point_features import point_features
from .base import DEFAULT_BATCH_SIZE, ClassifierBase, MeshSettings

FORMAT = "fer3d-onnx-1"
SUFFIX = ".onnx"
OUTPUT = "probabilities"
# the graph's input per kind: name, dtype, shape after the batch axis
GRAPH_INPUTS = {
    "image": ("crops", "uint8", [48, 48]),
    "landmarks": ("landmarks", "float32", [478, 3]),
    "distances": ("lengths", "float32", ["edges"]),
    "voxels": ("voxel_indices", "int64", [478]),
}
TEXT_KEYS = ("format", "name", "family", "input")
JSON_KEYS = ("classes", "prior", "tta_flip", "input_stats", "landmarks", "graph_input", "in_graph", "training")


def encode_metadata(info: dict) -> dict[str, str]:
    """The metadata_props of an exported model: text keys as they are, the rest as JSON."""
    missing = [k for k in (*TEXT_KEYS, *JSON_KEYS) if k not in info]
    if missing:
        raise ValueError(f"ONNX metadata lacks {missing}")
    return {**{k: str(info[k]) for k in TEXT_KEYS}, **{k: json.dumps(info[k]) for k in JSON_KEYS}}


def decode_metadata(props: dict[str, str], source: str) -> dict:
    """The inverse of `encode_metadata`; errors name the file and what was expected."""
    if props.get("format") != FORMAT:
        raise ValueError(
            f"{source}: expected an ONNX model exported by `fer3d export` (metadata format {FORMAT!r}), "
            f"found {props.get('format')!r}"
        )
    missing = [k for k in (*TEXT_KEYS, *JSON_KEYS) if k not in props]
    if missing:
        raise ValueError(f"{source}: ONNX metadata lacks {missing}")
    try:
        return {**{k: props[k] for k in TEXT_KEYS}, **{k: json.loads(props[k]) for k in JSON_KEYS}}
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: ONNX metadata is not valid JSON ({e})") from e


def exported_models(folder: str | Path) -> list[str]:
    """Names of the exported models (<name>.onnx) in `folder`, sorted; hidden files (macOS's ._
    copies, an interrupted export's temp file) are not models."""
    return sorted(p.stem for p in Path(folder).glob(f"*{SUFFIX}") if not p.name.startswith("."))


def graph_input(
    kind: str, stats: dict, edges: np.ndarray | None, crops: np.ndarray | None = None, points: np.ndarray | None = None
) -> np.ndarray:
    """The graph's input batch: 48x48 uint8 crops as they are, or the numpy features of the points."""
    if kind == "image":
        return np.ascontiguousarray(crops, np.uint8)
    return point_features(kind, stats, edges, points)


def session(model: str | Path | bytes, threads: int | None = None, source: str = ""):
    """An onnxruntime CPU session of a file (or the bytes of one); `threads`: intra-op threads (None:
    onnxruntime's default, all cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are about graph optimisations
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    try:
        model = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable files
        raise ValueError(f"{source or model}: not a readable ONNX model ({type(e).__name__}: {e})") from e


class OnnxClassifier(ClassifierBase):
    """An exported model and everything it needs to turn faces into (N, C) float32 probabilities."""

    def __init__(self, sess, meta: dict, batch_size: int = DEFAULT_BATCH_SIZE, source: str = ""):
        self.session, self.meta, self.source = sess, meta, source
        self.name, self.family, self.kind = meta["name"], meta["family"], meta["input"]
        if self.kind not in GRAPH_INPUTS:
            raise ValueError(f"{source}: input kind must be one of {sorted(GRAPH_INPUTS)}, found {self.kind!r}")
        self.classes = list(meta["classes"])
        self.prior = np.asarray(meta["prior"], np.float32)
        self.tta_flip = bool(meta["tta_flip"])
        self.stats = meta["input_stats"]
        self.edges = np.asarray(self.stats["edges"]) if "edges" in self.stats else None
        self.mesh_settings = MeshSettings.from_payload(meta["landmarks"]) if meta["landmarks"] else None
        self.batch_size = int(batch_size)
        self.input_name = meta["graph_input"]["name"]
        self.check_file()

    @classmethod
    def from_file(
        cls, path: str | Path, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None
    ) -> OnnxClassifier:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no exported model here; run `fer3d export --format onnx` first")
        sess = session(path, threads, str(path))
        meta = decode_metadata(sess.get_modelmeta().custom_metadata_map, str(path))
        return cls(sess, meta, batch_size, source=str(path))

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.name!r}, {self.family}, input={self.kind}, tta_flip={self.tta_flip})"

    def encode(self, crops: np.ndarray | None = None, points: np.ndarray | None = None) -> np.ndarray:
        return graph_input(self.kind, self.stats, self.edges, crops, points)

    def proba_batch(self, crops: np.ndarray | None = None, points: np.ndarray | None = None) -> np.ndarray:
        return self.session.run([OUTPUT], {self.input_name: self.encode(crops, points)})[0]
