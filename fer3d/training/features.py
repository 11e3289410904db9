"""What each kind of model trains on: one `FeatureSet` per input kind (image, landmarks, distances,
voxels) over all FER2013 rows, built from the stage outputs, with the same three operations for
all of them so one training loop serves every model: `batch` (stored rows → model input),
`augment` (training-time) and `mirror` (left↔right, for test-time averaging). The stored rows are
the data stages' outputs, made with the same functions (fer3d.models.inputs) that build a model
file's inputs from raw crops and points."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import TRAIN, Paths
from ..data import labels as label_set
from ..face3d import mesh
from ..face3d.voxels import densify_torch
from ..io import load_npz
from ..models import inputs
from ..models.registry import INPUTS
from ..params import ParamError, unknown_key_error
from . import augment


@dataclass
class FeatureSet:
    kind: str
    rows: torch.Tensor  # stored form of every row (uint8 images, float landmarks, …), CPU
    label: np.ndarray  # int64 (N,); fer3d.data.labels.DROPPED where the label set leaves a row out
    split: np.ndarray  # uint8 (N,) index into fer3d.config.SPLITS
    usable: np.ndarray  # bool (N,): the row has a label and the model can score it (3D: a face was found)
    stats: dict = field(default_factory=dict)  # what the model file must keep to rebuild inputs
    context: dict = field(default_factory=dict)  # shape facts the model builder needs
    _to_model: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    _mirror: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    augmenter: Callable | None = None
    classes: tuple[str, ...] = ()
    soft: np.ndarray | None = None  # float32 (N, C) vote distributions (train.soft_labels)

    def batch(self, index: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
        return self._to_model(self.rows[torch.as_tensor(index)].to(device, non_blocking=True))

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.augmenter(x, generator) if self.augmenter is not None else x

    def mirror(self, x: torch.Tensor) -> torch.Tensor:
        return self._mirror(x)

    def indices(self, split: int, usable_only: bool = True) -> np.ndarray:
        mask = self.split == split
        return np.flatnonzero(mask & self.usable if usable_only else mask)

    def class_prior(self) -> list[float]:
        """Training-split class frequencies: what a model answers for a face it cannot score."""
        train = (self.split == TRAIN) & (self.label >= 0)
        counts = np.bincount(self.label[train], minlength=len(self.classes))
        return (counts / max(1, int(train.sum()))).tolist()


def load(
    kind: str, paths: Paths, augment_options: dict | None = None, where: str = "augment", labels: str = "fer2013"
) -> FeatureSet:
    """Build the FeatureSet of `kind` from the stage outputs, labelled with the label set `labels`
    (fer3d.data.labels). `where` names the augment options in messages (models.<name>.augment)."""
    if kind not in INPUTS:
        raise ValueError(f"input kind must be one of {INPUTS}, found {kind!r}")
    opts = check_augment_options(kind, augment_options or {}, where)
    labelled = label_set.load(paths, labels)
    feats = _load_rows(kind, paths, labelled.label, opts)
    feats.usable = feats.usable & labelled.kept
    feats.classes, feats.soft = labelled.classes, labelled.soft
    return feats


def _load_rows(kind: str, paths: Paths, label: np.ndarray, opts: dict) -> FeatureSet:
    fer = load_npz(paths.fer2013)
    split = fer["split"]
    if kind == "image":
        return _images(fer, label, split, opts)
    lm = load_npz(paths.landmarks)
    topology = load_npz(paths.mesh_topology)
    stats = {"mean_face": topology["mean_face"].tolist(), "mirror_perm": topology["mirror_perm"].tolist()}
    context = {
        "num_points": int(lm["landmarks"].shape[1]),
        "edges": torch.from_numpy(topology["edges"]),
        "num_edges": len(topology["edges"]),
    }
    base = dict(label=label, split=split, usable=lm["found"], stats=stats, context=context)
    if kind == "landmarks":
        return _landmarks(lm, topology, base, opts)
    if kind == "distances":
        return _distances(load_npz(paths.mesh_features), topology, base, opts)
    return _voxels(load_npz(paths.voxels), base, opts)


AUGMENTERS = {
    "image": augment.ImageAugment,
    "landmarks": augment.LandmarkAugment,
    "distances": augment.DistanceAugment,
    "voxels": augment.VoxelAugment,
}


def check_augment_options(kind: str, opts: dict, where: str) -> dict:
    """Refuse unknown augment keys (with a suggestion) and values the augmenter rejects, by name."""
    if not isinstance(opts, dict):
        raise ParamError(f"params.yaml: {where} must be a mapping of options, found {opts!r}")
    signature = inspect.signature(AUGMENTERS[kind])
    # set by the code, not params: the point permutations and the pixel statistics
    allowed = [p for p in signature.parameters if p not in ("mirror_perm", "edge_perm", "stats")]
    for key in opts:
        if key not in allowed:
            raise unknown_key_error(where, key, allowed)
        _check_option_type(f"{where}.{key}", opts[key], signature.parameters[key])
    if kind == "image" and opts.get("pad", 0) >= 48:  # reflect padding needs less than the 48 px image
        raise ParamError(f"params.yaml: {where}.pad must be below 48 px, found {opts['pad']!r}")
    try:  # build one now so a bad value stops the stage before the data is read
        AUGMENTERS[kind](*([torch.arange(2)] if kind in ("landmarks", "distances") else []), **opts)
    except (TypeError, ValueError) as e:
        raise ParamError(f"params.yaml: {where}: {e}") from e
    return opts


def _check_option_type(name: str, value: Any, parameter: inspect.Parameter) -> None:
    """By the augmenter's annotation (or its default's shape): YAML gives `erase: true` or
    `flip: "false"` a meaning nobody meant (probability 1, flip on), so types are not coerced."""
    kind = parameter.annotation if isinstance(parameter.annotation, str) else ""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        ok, wanted = isinstance(value, bool), "true or false"
    elif kind == "int":
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif kind == "float":
        ok, wanted = number, "a number"
    elif isinstance(parameter.default, tuple):
        pair = isinstance(value, list | tuple) and len(value) == 2
        ok = pair and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        wanted = "a [low, high] pair of numbers"
    else:
        return
    if not ok:
        raise ParamError(f"params.yaml: {name} must be {wanted}, found {value!r}")


def _images(fer: dict, label: np.ndarray, split: np.ndarray, opts: dict) -> FeatureSet:
    train = fer["images"][split == TRAIN].astype(np.float32) / 255
    stats = {"mean": float(train.mean()), "std": float(train.std())}
    images = torch.from_numpy(fer["images"]).unsqueeze(1)  # (N,1,48,48) uint8: 4x smaller than float
    return FeatureSet(
        "image",
        images,
        label,
        split,
        np.ones(len(label), bool),
        stats,
        {},
        lambda x: inputs.standardise_images(x, stats),
        inputs.flip_images,
        augment.ImageAugment(**opts, stats=stats),
    )


def _landmarks(lm: dict, topology: dict, base: dict, opts: dict) -> FeatureSet:
    aligned = inputs.landmark_rows(lm["landmarks"].astype(np.float32), base["stats"])
    aligned[~base["usable"]] = 0
    perm = torch.from_numpy(topology["mirror_perm"])
    return FeatureSet(
        "landmarks",
        torch.from_numpy(aligned),
        **base,
        _mirror=lambda x: inputs.mirror_landmarks(x, perm),
        augmenter=augment.LandmarkAugment(perm, **opts),
    )


def _distances(feats: dict, topology: dict, base: dict, opts: dict) -> FeatureSet:
    # the meshes stage's stored lengths (uint8 codes, error <= 0.001 in the unit-RMS frame)
    lo, hi = feats["edge_length_lo"], feats["edge_length_hi"]
    lengths = mesh.dequantize(feats["edge_length_codes"], lo, hi)
    stats, found = base["stats"], base["usable"]
    train = lengths[found & (base["split"] == TRAIN)]
    # a distances model file keeps the edges and the quantisation range: lengths from new points
    # are then made exactly as the meshes stage made them
    stats.update(
        length_mean=train.mean(0).tolist(),
        length_std=(train.std(0) + 1e-6).tolist(),
        edge_length_lo=lo.tolist(),
        edge_length_hi=hi.tolist(),
        edges=topology["edges"].tolist(),
    )
    standardised = inputs.standardise_lengths(lengths, stats)
    standardised[~found] = 0
    edge_perm = torch.from_numpy(inputs.mirror_edge_permutation(topology["edges"], topology["mirror_perm"]))
    return FeatureSet(
        "distances",
        torch.from_numpy(standardised),
        **base,
        _mirror=lambda x: x[:, edge_perm],
        augmenter=augment.DistanceAugment(edge_perm, **opts),
    )


def _voxels(vox: dict, base: dict, opts: dict) -> FeatureSet:
    stats = base["stats"]
    stats.update(grid=int(vox["grid"]), extent=float(vox["extent"]), align=str(vox["align"]))
    base["context"]["grid"] = stats["grid"]
    return FeatureSet(
        "voxels",
        torch.from_numpy(vox["indices"].astype(np.int64)),
        **base,
        _to_model=lambda x: densify_torch(x, stats["grid"]),
        _mirror=inputs.flip_voxels,
        augmenter=augment.VoxelAugment(**opts),
    )
