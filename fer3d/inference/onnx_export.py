"""Model files (<name>.pt) → self-contained ONNX files (<name>.onnx) that fer3d.inference.onnx_runtime
runs without torch: `export_models(models_dir, out_dir)`, the library side of `fer3d export`.

The graph takes the raw batch (uint8 crops, or the numpy point features of
fer3d.face3d.point_features) with a dynamic batch axis and returns probabilities: image
standardisation, voxel densification, the test-time flip average and the softmax are in it. The
exporter is torch's dynamo-based one (`torch.onnx.export(dynamo=True)`, via onnxscript): it is
torch 2.13's default, and its TorchScript predecessor (dynamo=False) warns that it will be removed.
Every export is checked against the torch Classifier on synthetic faces before it is written."""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..device import resolve_scoring_precision
from ..io import save_bytes
from ..models import inputs
from ..models.mesh_gnn import MeshGNN
from ..models.model_file import read_model_file, trained_precision
from ..models.registry import MODELS
from .classifier import Classifier
from .onnx_runtime import (
    FORMAT,
    GRAPH_INPUTS,
    OUTPUT,
    SUFFIX,
    OnnxClassifier,
    decode_metadata,
    encode_metadata,
    graph_input,
    session,
)
from .predictor import FUSION_FILE

OPSET = 18
BACKENDS = ("auto", "torch", "onnx")
# the exported mesh_gnn (one gather per neighbour slot) runs at about half torch's sparse product
TORCH_FASTER_ON_CPU = ("mesh_gnn",)
CHECK_TOLERANCE = 1e-4  # max |probability difference| to the torch Classifier on the check faces
IN_GRAPH = {
    "image": ["(x / 255 - mean) / std", "flip average", "softmax"],
    "landmarks": ["flip average (mirror permutation, x -> -x)", "softmax"],
    "distances": ["flip average (mirror edge permutation)", "softmax"],
    "voxels": ["densify voxel indices to a 0/1 grid", "flip average", "softmax"],
}


def in_graph(kind: str, tta_shift: int, tta_flip: bool = True) -> list[str]:
    """What the exported graph does besides the network, in order (the metadata's `in_graph`)."""
    steps = list(IN_GRAPH[kind])
    flip = next(i for i, step in enumerate(steps) if step.startswith("flip average"))
    if tta_shift:
        shifted = f"views shifted {tta_shift} px up, down, left, right (edges reflected)"
        steps.insert(flip, shifted)
        flip += 1
    if not tta_flip:  # a file trained with train.tta_flip false has no mirror view
        steps[flip] = "mean over the views" if tta_shift else None
    return [step for step in steps if step]


class NeighbourSum(nn.Module):
    """A_hat @ z as one gather per neighbour slot (each node's neighbours padded to the largest
    degree with weight 0): the same sum as MeshGNN's sparse product, in ops ONNX has. A single
    (N, D, M) gather would hold ~150 MB at batch 256; D gathers of (N, M) do not."""

    def __init__(self, crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor):
        super().__init__()
        degree = crow.diff()
        slot = torch.arange(int(degree.max()))[None] < degree[:, None]  # (N, D), row-major like CSR
        cols = torch.zeros(slot.shape, dtype=torch.long)
        vals = torch.zeros(slot.shape, dtype=val.dtype)
        cols[slot], vals[slot] = col, val
        self.register_buffer("cols", cols)
        self.register_buffer("vals", vals)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = z[self.cols[:, 0]] * self.vals[:, 0, None]
        for d in range(1, self.cols.shape[1]):
            out = out + z[self.cols[:, d]] * self.vals[:, d, None]
        return out


class ExportGraph(nn.Module):
    """A model with its in-graph input step, flip average and softmax: raw batch → probabilities."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        # a copy: the classifier's own model keeps its sparse product (the export is checked against it)
        # (in the plain memory layout: the graph's weights are plain arrays)
        self.model = copy.deepcopy(classifier.model).to(memory_format=torch.contiguous_format)
        self.kind, self.stats = classifier.kind, classifier.stats
        self.mirror = classifier.mirror if classifier.tta_flip else None
        self.shift_px = classifier.tta_shift
        if isinstance(self.model, MeshGNN):
            self.neighbours = NeighbourSum(self.model.crow, self.model.col, self.model.val)
            # on the instance, past nn.Module.__setattr__ (which would file it as a submodule,
            # leaving the class's method in charge)
            object.__setattr__(self.model, "propagate", self.neighbours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "image":
            x = inputs.standardise_images(x.unsqueeze(1), self.stats)
        elif self.kind == "voxels":
            x = inputs.densify_torch(x, self.stats["grid"])
        return inputs.mean_over_views(
            lambda v: self.model(v).softmax(1), inputs.scoring_views(x, self.mirror, self.shift_px)
        )


def json_safe(value):
    """Tensors and arrays → lists, recursively (the model file's stats and context hold some)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def metadata(payload: dict, source: Path) -> dict:
    """What the ONNX runtime needs beside the graph, from a model file's payload."""
    kind = payload["input"]
    stats = json_safe(payload["input_stats"])
    if kind == "distances" and "edges" not in stats:
        stats["edges"] = json_safe(payload["context"]["edges"])  # the numpy edge lengths need them
    name, dtype, shape = GRAPH_INPUTS[kind]
    if kind == "distances":
        shape = [len(stats["edges"])]
    return {
        "format": FORMAT,
        "name": payload["name"],
        "family": payload["family"],
        "input": kind,
        "classes": list(payload["classes"]),
        "prior": [float(p) for p in payload["prior"]],
        "tta_flip": bool(payload["tta_flip"]),
        "input_stats": stats,
        "landmarks": json_safe(payload.get("landmarks")),
        "graph_input": {"name": name, "dtype": dtype, "shape": ["batch", *shape]},
        "in_graph": in_graph(kind, int(payload.get("tta_shift", 0)), bool(payload["tta_flip"])),
        "training": {**json_safe(payload.get("training") or {}), "model_file": source.name, "fer3d": __version__},
    }


def example_batch(classifier: Classifier, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic faces for tracing and checking: random crops, or the mean face jittered into a
    48x48 crop frame (the aligned faces the 3D inputs are built from)."""
    rng = np.random.default_rng(seed)
    if classifier.kind == "image":
        return {"crops": rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)}
    face = np.asarray(classifier.stats["mean_face"], np.float32)
    points = 24 + 15 * face[None] + rng.normal(0, 0.3, (n, *face.shape)).astype(np.float32)
    return {"points": points}


def graph_proto(classifier: Classifier, meta: dict):
    """The ONNX ModelProto of one classifier, batch axis dynamic, metadata attached."""
    example = graph_input(classifier.kind, classifier.stats, classifier.edges, **example_batch(classifier, 2))
    # torch.export's deprecation notes about its own internals, and "torchvision is not installed"
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            ExportGraph(classifier).eval(),
            (torch.from_numpy(example),),
            dynamo=True,
            input_names=[meta["graph_input"]["name"]],
            output_names=[OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )
    proto = program.model_proto
    for key, value in encode_metadata(meta).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"fer3d {meta['name']} ({meta['family']}, input {meta['input']}): raw batch -> probabilities"
    return proto


def check_export(classifier: Classifier, data: bytes, meta: dict, source: str) -> float:
    """Max |probability difference| between the exported graph and the torch Classifier on 16
    synthetic faces; above CHECK_TOLERANCE the export is a bug, not a file to write."""
    exported = OnnxClassifier(session(data, source=source), decode_metadata(encode_metadata(meta), source))
    faces = example_batch(classifier, 16, seed=1)
    diff = float(np.abs(exported.predict_proba(**faces) - classifier.predict_proba(**faces)).max())
    if not diff <= CHECK_TOLERANCE:
        raise RuntimeError(f"{source}: the ONNX graph differs from the torch model by {diff:.2e} > {CHECK_TOLERANCE}")
    return diff


def checked_graph(payload: dict, model_file: Path) -> tuple[bytes, dict, float]:
    """A model file's payload → (the serialised ONNX graph, its metadata, max |Δ| to torch on the check faces)."""
    classifier = Classifier(payload, "cpu", source=str(model_file), precision="fp32")  # the graph's arithmetic
    meta = metadata(payload, model_file)
    data = graph_proto(classifier, meta).SerializeToString()
    return data, meta, check_export(classifier, data, meta, str(model_file))


def export_model(model_file: str | Path, out_path: str | Path) -> dict:
    """One <name>.pt → out_path (.onnx, written atomically); returns {name, path, max_diff, bytes}."""
    model_file = Path(model_file)
    data, meta, diff = checked_graph(read_model_file(model_file), model_file)
    save_bytes(out_path, data)
    return {"name": meta["name"], "path": str(out_path), "max_diff": diff, "bytes": len(data)}


def export_models(models_dir: str | Path, out_dir: str | Path, names: Sequence[str] | None = None) -> list[dict]:
    """Every (or each named) <name>.pt of `models_dir` → out_dir/<name>.onnx, and its fusion.json
    beside them so the fusion rows work from the export folder alone."""
    models_dir, out_dir = Path(models_dir), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir} is a file; give a folder for the {SUFFIX} files")
    names = list(names) if names is not None else [n for n in MODELS if (models_dir / f"{n}.pt").exists()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(
            f"unknown model {unknown}; models: {', '.join(MODELS)} (fusion rows are not models: "
            f"{FUSION_FILE} is copied along with them)"
        )
    if not names:
        raise FileNotFoundError(f"{models_dir}: no trained model files (<name>.pt); run `dvc pull` or `dvc repro`")
    for n in names:  # every file before any work: a typo should not cost the exports before it
        if not (models_dir / f"{n}.pt").is_file():
            raise FileNotFoundError(f"{models_dir / f'{n}.pt'}: no trained model here; run `dvc repro` first")
    # every graph made and checked before any file is written: a failure leaves the folder as it was,
    # not new graphs beside old ones and a fusion.json fitted to either
    graphs = {n: checked_graph(read_model_file(models_dir / f"{n}.pt"), models_dir / f"{n}.pt") for n in names}
    reports = []
    for n, (data, meta, diff) in graphs.items():
        save_bytes(out_dir / f"{n}{SUFFIX}", data)
        reports.append(
            {"name": meta["name"], "path": str(out_dir / f"{n}{SUFFIX}"), "max_diff": diff, "bytes": len(data)}
        )
    if (models_dir / FUSION_FILE).is_file():
        save_bytes(out_dir / FUSION_FILE, (models_dir / FUSION_FILE).read_bytes())
    else:  # an older export's fusion rows would combine these graphs with weights fitted to others
        (out_dir / FUSION_FILE).unlink(missing_ok=True)
    return reports


def bulk_classifier(
    model_file: str | Path, device: torch.device, backend: str = "auto", threads: int | None = None
) -> Classifier | OnnxClassifier:
    """A model file set up for scoring many faces: `backend` torch (the Classifier on `device`, in its
    scoring precision), onnx (exported in memory and run by onnxruntime: torch's fp32 probabilities,
    checked to CHECK_TOLERANCE, at 1.2-1.6x torch's fp32 CPU speed for the image nets, ~2x for
    voxel_cnn, README "ONNX export and inference speed"; nothing is written), or auto: torch where it
    scores in bf16 (CUDA; AMX CPUs for bf16-trained models, 2-3x onnxruntime's speed there) or the
    model is in TORCH_FASTER_ON_CPU, onnx otherwise: every model scores as the evaluate stage's
    Classifier does, in its precision. `threads`: the onnxruntime session's (None: its default)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, found {backend!r}")
    model_file = Path(model_file)
    payload = read_model_file(model_file)
    scores_bf16 = resolve_scoring_precision("auto", device, trained_precision(payload)) == "bf16"
    if backend == "torch" or (backend == "auto" and (scores_bf16 or payload["name"] in TORCH_FASTER_ON_CPU)):
        return Classifier(payload, device, source=str(model_file))
    data, meta, _ = checked_graph(payload, model_file)
    meta = decode_metadata(encode_metadata(meta), str(model_file))  # as a file's metadata reads back
    return OnnxClassifier(session(data, threads, str(model_file)), meta, source=str(model_file))
