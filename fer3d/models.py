"""Every model the pipeline trains, registered by name.

`build_model(name, num_classes, **options)` builds one from its params.yaml section plus the
context the training code passes (CONTEXT_KEYS). Inputs, all float32 batches:

- image:     (B, 1, 48, 48) standardised pixels
- landmarks: (B, 478, 3) centred, unit-RMS, Procrustes-aligned MediaPipe points
- distances: (B, E) mesh edge lengths, standardised per edge
- voxels:    (B, 1, G, G, G) occupancy 0/1

Every model returns logits (B, num_classes). Default sizes are picked so training on two CPU
cores is quick (bench/models_speed.py measures them).
"""
from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

FAMILIES = ("2d", "3d")
INPUTS = ("image", "landmarks", "distances", "voxels")
# Keys the training code passes to every builder; a builder takes the ones it needs, the rest are dropped.
CONTEXT_KEYS = frozenset({"grid", "edges", "num_edges", "num_points"})
# params.yaml model sections repeat the registry's family/input; accepted when they agree with it.
SPEC_KEYS = ("family", "input")
NUM_POINTS = 478


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    input: str
    builder: Callable[..., nn.Module]

    def options(self) -> dict[str, Any]:
        """The tunable (non-context) options of this model with their defaults."""
        return {p.name: p.default for p in inspect.signature(self.builder).parameters.values()
                if p.kind == p.KEYWORD_ONLY and p.name not in CONTEXT_KEYS}

    def context(self) -> set[str]:
        return {p for p in inspect.signature(self.builder).parameters if p in CONTEXT_KEYS}


MODELS: dict[str, ModelSpec] = {}


def register(name: str, family: str, input: str):  # noqa: A002 - mirrors the params.yaml key
    """Class/function decorator: `builder(num_classes, *, option=default, ...) -> nn.Module`."""
    if family not in FAMILIES:
        raise ValueError(f"model {name!r}: family must be one of {FAMILIES}, got {family!r}")
    if input not in INPUTS:
        raise ValueError(f"model {name!r}: input must be one of {INPUTS}, got {input!r}")

    def deco(builder):
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        params = inspect.signature(builder).parameters
        bad = [p.name for p in params.values() if p.name != "num_classes" and p.kind != p.KEYWORD_ONLY]
        if bad:
            raise TypeError(f"model {name!r}: builder options must be keyword-only, not {bad}")
        MODELS[name] = ModelSpec(name, family, input, builder)
        return builder

    return deco


def model_options(name: str) -> dict[str, Any]:
    """Tunable options of a model and their defaults (what params.yaml may set)."""
    return _spec(name).options()


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(name: str, num_classes: int = 7, **options: Any) -> nn.Module:
    """Build a registered model; unknown names or options raise ValueError."""
    spec = _spec(name)
    allowed = spec.options()
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key in CONTEXT_KEYS:
            if key in spec.context() and value is not None:
                kwargs[key] = value
        elif key in SPEC_KEYS:
            if value is not None and value != getattr(spec, key):
                raise ValueError(f"model {name!r}: {key}={value!r} disagrees with the registry "
                                 f"({key}={getattr(spec, key)!r})")
        elif key in allowed:
            kwargs[key] = value
        else:
            raise ValueError(f"model {name!r}: unknown option {key!r}; allowed options: "
                             f"{', '.join(sorted(allowed)) or '(none)'}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"model {name!r}: num_classes must be an int >= 2, got {num_classes!r}")
    model = spec.builder(num_classes, **kwargs)
    model.model_name = name
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _positive_int(name: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"model {name!r}: {key} must be a positive int, got {value!r}")
    return value


def _probability(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"model {name!r}: {key} must be in [0, 1), got {value!r}")
    return float(value)


def _head(features: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, num_classes))


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------------------- 2D

def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    # no conv bias: BatchNorm's shift makes it redundant
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ConvNet2d(nn.Module):
    """Stages of 3x3 conv-BN-ReLU with max-pooling between stages, global average pool, linear."""

    def __init__(self, num_classes: int, widths: list[int], convs: list[int], dropout: float,
                 hidden: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for i, (w, n) in enumerate(zip(widths, convs)):
            if i:
                layers.append(nn.MaxPool2d(2))
            for _ in range(n):
                layers += _conv_bn(cin, w)
                cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        if hidden:
            self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, hidden),
                                            nn.ReLU(inplace=True), nn.Dropout(dropout),
                                            nn.Linear(hidden, num_classes))
        else:
            self.classifier = _head(cin, num_classes, dropout)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def _widths(name: str, widths: Any, stages: int) -> list[int]:
    if (not isinstance(widths, (list, tuple)) or len(widths) != stages
            or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in widths)):
        raise ValueError(f"model {name!r}: widths must be a list of {stages} positive ints, got {widths!r}")
    return list(widths)


# Widths: stage 1 runs at the full 48x48 where every channel is expensive, so it stays narrow;
# later stages are cheap per channel and carry the capacity. Multiples of 16 suit oneDNN's blocking.
@register("cnn", "2d", "image")
def _cnn(num_classes: int, *, widths: list[int] = (16, 48, 128), dropout: float = 0.3) -> nn.Module:
    """The reference's "6-conv BN net": 3 stages x 2 convs, max-pool between stages."""
    return ConvNet2d(num_classes, _widths("cnn", widths, 3), [2, 2, 2], _probability("cnn", "dropout", dropout))


@register("vgg", "2d", "image")
def _vgg(num_classes: int, *, widths: list[int] = (16, 48, 128, 256), dropout: float = 0.4,
         pretrained: str = "") -> nn.Module:
    """VGG-style 2-2-3-3 convs and a 2-layer classifier; `pretrained` = a local state_dict to start from."""
    w = _widths("vgg", widths, 4)
    model = ConvNet2d(num_classes, w, [2, 2, 3, 3], _probability("vgg", "dropout", dropout), hidden=w[-1])
    model.pretrained_from = None
    if pretrained:
        load_pretrained(model, str(pretrained))
    return model


def load_pretrained(model: nn.Module, path: str) -> list[str]:
    """Load the keys of a local state_dict that fit `model`; returns the keys loaded.

    Tensors whose shape does not fit (e.g. a classifier for another number of classes) are
    skipped; an RGB first conv is summed over its colour channels to fit the gray input.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    own = model.state_dict()
    fitting = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key not in own or not torch.is_tensor(value):
            continue
        if value.shape != own[key].shape and value.dim() == 4 and own[key].shape[1] == 1 \
                and value.shape[1] == 3 and value.shape[0] == own[key].shape[0]:
            value = value.sum(1, keepdim=True)
        if value.shape == own[key].shape:
            fitting[key] = value
    if not fitting:
        raise ValueError(f"{path}: no tensor in it fits model {getattr(model, 'model_name', type(model).__name__)}")
    model.load_state_dict(fitting, strict=False)
    model.pretrained_from = path
    model.pretrained_keys = sorted(fitting)
    return model.pretrained_keys


class BasicBlock(nn.Module):
    """Pre-activation basic block (BN-ReLU-conv x2) with a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(x))
        # the projection sees the normalised input, as in the pre-activation ResNet paper
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut


class ResNet(nn.Module):
    def __init__(self, num_classes: int, widths: list[int], blocks: int, dropout: float):
        super().__init__()
        stem = widths[0] // 2
        # the stem runs at full 48x48 but narrow; the stages then halve the side: 24, 12, 6
        self.stem = nn.Sequential(*_conv_bn(1, stem))
        layers: list[nn.Module] = []
        cin = stem
        for w in widths:
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if b == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.post = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.classifier = _head(cin, num_classes, dropout)
        _init(self)
        for m in self.modules():
            # start every residual branch small so the net begins close to its shortcut path
            if isinstance(m, BasicBlock):
                m.conv2.weight.data.mul_(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.post(self.layers(self.stem(x))))


@register("resnet", "2d", "image")
def _resnet(num_classes: int, *, widths: list[int] = (32, 96, 192), blocks: int = 2,
            dropout: float = 0.2) -> nn.Module:
    """Pre-activation ResNet for 48x48: narrow stem, 3 stages of `blocks` basic blocks (sides 24, 12, 6)."""
    return ResNet(num_classes, _widths("resnet", widths, 3), _positive_int("resnet", "blocks", blocks),
                  _probability("resnet", "dropout", dropout))


# ----------------------------------------------------------------------------------------- 3D

def _num_points(name: str, num_points: Any) -> int:
    return _positive_int(name, "num_points", num_points)


class LandmarkMLP(nn.Module):
    """MLP on the flattened points, optionally with the mesh's edge lengths beside them.

    standardise: the inputs pass a BatchNorm without affine first, so every coordinate and length
    is standardised over the training set (edge lengths are ~20x smaller than coordinates)."""

    def __init__(self, num_classes: int, num_points: int, hidden: int, dropout: float,
                 edges: torch.Tensor | None, standardise: bool):
        super().__init__()
        self.register_buffer("edges", None if edges is None else torch.as_tensor(edges).long(), persistent=False)
        width = 3 * num_points + (0 if edges is None else len(edges))
        self.norm = nn.BatchNorm1d(width, affine=False) if standardise else nn.Identity()
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2), nn.BatchNorm1d(hidden // 2), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden // 2, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x.flatten(1)]
        if self.edges is not None:
            feats.append((x[:, self.edges[:, 0]] - x[:, self.edges[:, 1]]).norm(dim=-1))
        return self.mlp(self.norm(torch.cat(feats, 1)))


@register("landmark_mlp", "3d", "landmarks")
def _landmark_mlp(num_classes: int, *, hidden: int = 512, dropout: float = 0.3, edge_lengths: bool = False,
                  standardise: bool = False, num_points: int = NUM_POINTS, edges: torch.Tensor | None = None) -> nn.Module:
    """MLP on the standardised points (3N) and, with edge_lengths, the E mesh edge lengths -> classes."""
    n, h = _num_points("landmark_mlp", num_points), _positive_int("landmark_mlp", "hidden", hidden)
    for key, value in (("edge_lengths", edge_lengths), ("standardise", standardise)):
        if not isinstance(value, bool):
            raise ValueError(f"model 'landmark_mlp': {key} must be true or false, got {value!r}")
    if edge_lengths and edges is None:
        raise ValueError("model 'landmark_mlp': edge_lengths needs the mesh `edges` (an (E, 2) LongTensor)")
    return LandmarkMLP(num_classes, n, h, _probability("landmark_mlp", "dropout", dropout),
                       edges if edge_lengths else None, standardise)


def _conv1d_bn(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv1d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]


class MeanMaxPool(nn.Module):
    """Concatenate mean and max over `dim`: the mean sees the whole face, the max the strongest cue."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(self.dim), x.amax(self.dim)], dim=-1)


class LandmarkCNN(nn.Module):
    def __init__(self, num_classes: int, width: int, dropout: float):
        super().__init__()
        w = width
        # MediaPipe numbers neighbouring points close together often enough for local filters
        # over the index order to pick up useful structure; strides keep it cheap
        self.features = nn.Sequential(*_conv1d_bn(3, w, 5), *_conv1d_bn(w, 2 * w, 5, 2),
                                      *_conv1d_bn(2 * w, 2 * w, 3), *_conv1d_bn(2 * w, 4 * w, 3, 2))
        self.pool = MeanMaxPool(-1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, num_classes))
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x.transpose(1, 2))))


@register("landmark_cnn", "3d", "landmarks")
def _landmark_cnn(num_classes: int, *, width: int = 32, dropout: float = 0.3) -> nn.Module:
    """1D convolution over the points (channels = x, y, z), mean+max pooling, linear."""
    return LandmarkCNN(num_classes, _positive_int("landmark_cnn", "width", width),
                       _probability("landmark_cnn", "dropout", dropout))


class DistanceCNN(nn.Module):
    def __init__(self, num_classes: int, width: int, hidden: int, num_edges: int | None, dropout: float):
        super().__init__()
        w = width
        self.conv = nn.Sequential(*_conv1d_bn(1, w, 7, 2), *_conv1d_bn(w, 2 * w, 5, 2),
                                  *_conv1d_bn(2 * w, 4 * w, 3, 2), MeanMaxPool(-1))
        features = 8 * w
        # the MLP branch sees every edge by identity, which the translation-invariant convs cannot
        self.mlp = None
        if hidden:
            self.mlp = nn.Sequential(nn.Linear(num_edges, hidden), nn.BatchNorm1d(hidden), nn.GELU(),
                                     nn.Dropout(dropout))
            features += hidden
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.conv(x.unsqueeze(1))
        if self.mlp is not None:
            feats = torch.cat([feats, self.mlp(x)], dim=1)
        return self.classifier(feats)


@register("distance_cnn", "3d", "distances")
def _distance_cnn(num_classes: int, *, width: int = 32, hidden: int = 256, dropout: float = 0.3,
                  num_edges: int | None = None) -> nn.Module:
    """1D conv over the E edge lengths (one channel) plus an MLP branch (hidden=0 drops it)."""
    w = _positive_int("distance_cnn", "width", width)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
        raise ValueError(f"model 'distance_cnn': hidden must be an int >= 0, got {hidden!r}")
    if hidden:
        if num_edges is None:
            raise ValueError("model 'distance_cnn': its MLP branch needs num_edges (or set hidden: 0)")
        num_edges = _positive_int("distance_cnn", "num_edges", num_edges)
    return DistanceCNN(num_classes, w, hidden, num_edges, _probability("distance_cnn", "dropout", dropout))


def _conv3d_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv3d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]


class VoxelCNN(nn.Module):
    def __init__(self, num_classes: int, width: int, grid: int, dropout: float):
        super().__init__()
        w = width
        layers: list[nn.Module] = [*_conv3d_bn(1, w), nn.MaxPool3d(2, ceil_mode=True)]
        side, cin, cout = -(-grid // 2), w, 2 * w
        # halve until about 3 voxels a side: 12 -> 6 -> 3, 24 -> 12 -> 6 -> 3, 32 -> 16 -> 8 -> 4
        while side > 4:
            layers += [*_conv3d_bn(cin, cout), nn.MaxPool3d(2, ceil_mode=True)]
            side, cin, cout = -(-side // 2), cout, min(2 * cout, 8 * w)
        layers += _conv3d_bn(cin, cin)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = _head(cin, num_classes, dropout)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


@register("voxel_cnn", "3d", "voxels")
def _voxel_cnn(num_classes: int, *, width: int = 8, dropout: float = 0.3, grid: int = 24) -> nn.Module:
    """3D conv net on occupancy grids: conv-BN-ReLU + max-pool stages, global pool, linear."""
    g = _positive_int("voxel_cnn", "grid", grid)
    if g < 4:
        raise ValueError(f"model 'voxel_cnn': grid must be >= 4, got {g}")
    return VoxelCNN(num_classes, _positive_int("voxel_cnn", "width", width), g,
                    _probability("voxel_cnn", "dropout", dropout))


def normalized_adjacency(edges: torch.Tensor, num_points: int) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 of the undirected graph `edges` (E, 2), as a dense (N, N) tensor."""
    edges = torch.as_tensor(edges)
    if edges.dim() != 2 or edges.shape[1] != 2 or edges.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"model 'mesh_gnn': edges must be an integer tensor of shape (E, 2), "
                         f"got {tuple(edges.shape)} {edges.dtype}")
    edges = edges.long().cpu()
    if edges.numel() and (edges.min() < 0 or edges.max() >= num_points):
        raise ValueError(f"model 'mesh_gnn': edge indices must lie in [0, {num_points})")
    a = torch.zeros(num_points, num_points)
    a[edges[:, 0], edges[:, 1]] = 1
    a = torch.maximum(a, a.T)
    a.fill_diagonal_(1)  # self-loops: a node keeps its own features
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


class MeshGNN(nn.Module):
    """GCN-style residual layers h <- h + GELU(A_hat @ Linear(LayerNorm(h))), then a per-node
    readout flattened in node order (readout=0: mean+max pooling, permutation-invariant).

    Features are kept node-major, (N, B, H), so propagating over the mesh is a single sparse
    (N, N) @ (N, B*H) product for the whole batch (~3k non-zeros instead of 478^2 dense).
    """

    def __init__(self, num_classes: int, edges: torch.Tensor, num_points: int, hidden: int, layers: int,
                 embed: bool, dropout: float, readout: int = 0):
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            csr = normalized_adjacency(edges, num_points).to_sparse_csr()
        self.num_points = num_points
        # plain index/value buffers (moved by .to(device)); the CSR view is rebuilt per call, which
        # is free. Not persistent: they derive from `edges`, which the builder is given anyway.
        self.register_buffer("crow", csr.crow_indices(), persistent=False)
        self.register_buffer("col", csr.col_indices(), persistent=False)
        self.register_buffer("val", csr.values(), persistent=False)
        self.inp = nn.Linear(3, hidden)
        # the 478 nodes have fixed identities: a learned per-node vector (an embedding of the node
        # id) lets the net know which point it looks at. embed=False: permutation-equivariant.
        self.node = nn.Parameter(torch.zeros(num_points, 1, hidden)) if embed else None
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.lins = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.out_norm = nn.LayerNorm(hidden)
        self.pool = MeanMaxPool(0)
        # readout > 0: each node keeps `readout` features and the classifier sees all nodes in
        # order (where each point is matters for expressions: mean/max pooling forgets it)
        self.readout = readout
        self.project = nn.Linear(hidden, readout) if readout else None
        width = num_points * readout if readout else 2 * hidden
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, 256), nn.GELU(), nn.Dropout(dropout),
                                        nn.Linear(256, num_classes))

    def adjacency(self, dtype: torch.dtype) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            return torch.sparse_csr_tensor(self.crow, self.col, self.val.to(dtype),
                                           (self.num_points, self.num_points))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.num_points
        h = self.inp(x.transpose(0, 1))  # (N, B, H)
        if self.node is not None:
            h = h + self.node.to(h.dtype)
        a = self.adjacency(h.dtype)
        for norm, lin in zip(self.norms, self.lins):
            z = lin(norm(h))
            h = h + F.gelu(torch.sparse.mm(a, z.reshape(n, -1)).view_as(z))
        h = self.out_norm(h)
        if self.project is not None:
            return self.classifier(self.project(h).transpose(0, 1).flatten(1))
        return self.classifier(self.pool(h))


@register("mesh_gnn", "3d", "landmarks")
def _mesh_gnn(num_classes: int, *, hidden: int = 32, layers: int = 4, embed: bool = True, dropout: float = 0.2,
              readout: int = 8, edges: torch.Tensor | None = None, num_points: int = NUM_POINTS) -> nn.Module:
    """Graph net over the face mesh (plain torch): GCN-style message passing, mean+max readout."""
    if edges is None:
        raise ValueError("model 'mesh_gnn' needs the mesh `edges` (an (E, 2) LongTensor)")
    if not isinstance(embed, bool):
        raise ValueError(f"model 'mesh_gnn': embed must be true or false, got {embed!r}")
    return MeshGNN(num_classes, edges, _num_points("mesh_gnn", num_points),
                   _positive_int("mesh_gnn", "hidden", hidden), _positive_int("mesh_gnn", "layers", layers),
                   embed, _probability("mesh_gnn", "dropout", dropout),
                   readout if readout == 0 else _positive_int("mesh_gnn", "readout", readout))
