"""3D models on landmarks, mesh edge lengths and voxels: landmark_mlp, landmark_cnn, distance_cnn,
voxel_cnn."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import NUM_POINTS
from .registry import classifier_head, init_weights, mean_probability_logits, positive_int, probability, register


def num_points_option(name: str, num_points: Any) -> int:
    return positive_int(name, "num_points", num_points)


class LandmarkMLP(nn.Module):
    """MLP on the flattened points, optionally with the mesh's edge lengths beside them.

    standardise: the inputs pass a BatchNorm without affine first, so every coordinate and length
    is standardised over the training set (edge lengths are ~20x smaller than coordinates).
    members > 1: that many MLPs on the same inputs, an ensemble in one file. In training the model
    returns their logits (B, members, C) and each member learns from its own loss
    (fer3d.training.loop.classification_loss), so they stay independent; in evaluation it returns
    the log of their mean probabilities, so softmax gives the ensemble's average."""

    def __init__(
        self,
        num_classes: int,
        num_points: int,
        hidden: int,
        dropout: float,
        edges: torch.Tensor | None,
        standardise: bool,
        members: int = 1,
    ):
        super().__init__()
        self.register_buffer("edges", None if edges is None else torch.as_tensor(edges).long(), persistent=False)
        width = 3 * num_points + (0 if edges is None else len(edges))
        self.norm = nn.BatchNorm1d(width, affine=False) if standardise else nn.Identity()

        def mlp() -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(width, hidden),
                nn.BatchNorm1d(hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, hidden // 2),
                nn.BatchNorm1d(hidden // 2),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden // 2, num_classes),
            )

        # one member keeps the attribute (and so the state_dict keys) of the model files before members
        self.mlp = mlp() if members == 1 else nn.ModuleList(mlp() for _ in range(members))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) points → the (B, width) row every member reads: the points and the edge lengths, standardised."""
        feats = [x.flatten(1)]
        if self.edges is not None:
            feats.append((x[:, self.edges[:, 0]] - x[:, self.edges[:, 1]]).norm(dim=-1))
        return self.norm(torch.cat(feats, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        if isinstance(self.mlp, nn.Sequential):
            return self.mlp(z)
        logits = torch.stack([member(z) for member in self.mlp], 1)
        return logits if self.training else mean_probability_logits(logits)


@register("landmark_mlp", "3d", "landmarks")
def _landmark_mlp(
    num_classes: int,
    *,
    hidden: int = 512,
    dropout: float = 0.3,
    edge_lengths: bool = False,
    standardise: bool = False,
    num_points: int = NUM_POINTS,
    edges: torch.Tensor | None = None,
    members: int = 1,
) -> nn.Module:
    """MLP on the standardised points (3N) and, with edge_lengths, the E mesh edge lengths -> classes;
    members: an ensemble of that many such MLPs, trained side by side on their own losses."""
    n, h = num_points_option("landmark_mlp", num_points), positive_int("landmark_mlp", "hidden", hidden)
    k = positive_int("landmark_mlp", "members", members)
    for key, value in (("edge_lengths", edge_lengths), ("standardise", standardise)):
        if not isinstance(value, bool):
            raise ValueError(f"model 'landmark_mlp': {key} must be true or false, got {value!r}")
    if edge_lengths and edges is None:
        raise ValueError("model 'landmark_mlp': edge_lengths needs the mesh `edges` (an (E, 2) LongTensor)")
    edges = edges if edge_lengths else None
    return LandmarkMLP(num_classes, n, h, probability("landmark_mlp", "dropout", dropout), edges, standardise, k)


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
        self.features = nn.Sequential(
            *_conv1d_bn(3, w, 5),
            *_conv1d_bn(w, 2 * w, 5, 2),
            *_conv1d_bn(2 * w, 2 * w, 3),
            *_conv1d_bn(2 * w, 4 * w, 3, 2),
        )
        self.pool = MeanMaxPool(-1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x.transpose(1, 2))))


@register("landmark_cnn", "3d", "landmarks")
def _landmark_cnn(num_classes: int, *, width: int = 32, dropout: float = 0.3) -> nn.Module:
    """1D convolution over the points (channels = x, y, z), mean+max pooling, linear."""
    return LandmarkCNN(
        num_classes, positive_int("landmark_cnn", "width", width), probability("landmark_cnn", "dropout", dropout)
    )


class DistanceCNN(nn.Module):
    def __init__(self, num_classes: int, width: int, hidden: int, num_edges: int | None, dropout: float):
        super().__init__()
        w = width
        self.conv = nn.Sequential(
            *_conv1d_bn(1, w, 7, 2), *_conv1d_bn(w, 2 * w, 5, 2), *_conv1d_bn(2 * w, 4 * w, 3, 2), MeanMaxPool(-1)
        )
        features = 8 * w
        # the MLP branch sees every edge by identity, which the translation-invariant convs cannot
        self.mlp = None
        if hidden:
            self.mlp = nn.Sequential(
                nn.Linear(num_edges, hidden), nn.BatchNorm1d(hidden), nn.GELU(), nn.Dropout(dropout)
            )
            features += hidden
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.conv(x.unsqueeze(1))
        if self.mlp is not None:
            feats = torch.cat([feats, self.mlp(x)], dim=1)
        return self.classifier(feats)


@register("distance_cnn", "3d", "distances")
def _distance_cnn(
    num_classes: int, *, width: int = 32, hidden: int = 256, dropout: float = 0.3, num_edges: int | None = None
) -> nn.Module:
    """1D conv over the E edge lengths (one channel) plus an MLP branch (hidden=0 drops it)."""
    w = positive_int("distance_cnn", "width", width)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
        raise ValueError(f"model 'distance_cnn': hidden must be an int >= 0, got {hidden!r}")
    if hidden:
        if num_edges is None:
            raise ValueError("model 'distance_cnn': its MLP branch needs num_edges (or set hidden: 0)")
        num_edges = positive_int("distance_cnn", "num_edges", num_edges)
    return DistanceCNN(num_classes, w, hidden, num_edges, probability("distance_cnn", "dropout", dropout))


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
        self.classifier = classifier_head(cin, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


@register("voxel_cnn", "3d", "voxels")
def _voxel_cnn(num_classes: int, *, width: int = 8, dropout: float = 0.3, grid: int = 24) -> nn.Module:
    """3D conv net on occupancy grids: conv-BN-ReLU + max-pool stages, global pool, linear."""
    g = positive_int("voxel_cnn", "grid", grid)
    if g < 4:
        raise ValueError(f"model 'voxel_cnn': grid must be >= 4, got {g}")
    return VoxelCNN(
        num_classes, positive_int("voxel_cnn", "width", width), g, probability("voxel_cnn", "dropout", dropout)
    )
