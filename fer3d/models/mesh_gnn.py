"""mesh_gnn: a graph net over the face mesh's 1,330 edges, in plain torch (sparse propagation)."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from ..config import NUM_POINTS
from .point_nets import MeanMaxPool, num_points_option
from .registry import positive_int, probability, register


def normalized_adjacency(edges: torch.Tensor, num_points: int) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 of the undirected graph `edges` (E, 2), as a dense (N, N) tensor."""
    edges = torch.as_tensor(edges)
    if edges.dim() != 2 or edges.shape[1] != 2 or edges.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"model 'mesh_gnn': edges must be an integer tensor of shape (E, 2), got {tuple(edges.shape)} {edges.dtype}"
        )
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

    def __init__(
        self,
        num_classes: int,
        edges: torch.Tensor,
        num_points: int,
        hidden: int,
        layers: int,
        embed: bool,
        dropout: float,
        readout: int = 0,
    ):
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
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(width, 256), nn.GELU(), nn.Dropout(dropout), nn.Linear(256, num_classes)
        )

    def adjacency(self, dtype: torch.dtype) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            return torch.sparse_csr_tensor(self.crow, self.col, self.val.to(dtype), (self.num_points, self.num_points))

    def propagate(self, z: torch.Tensor) -> torch.Tensor:
        """A_hat @ z over the mesh, z node-major (N, M). fer3d.inference.onnx_export replaces it on
        the instance it exports: ONNX has no sparse product."""
        # fp32 under bf16 autocast too (which would cast it back): CPU has no bf16 sparse CSR product
        with torch.autocast(z.device.type, enabled=False):
            return torch.sparse.mm(self.adjacency(torch.float32), z.float()).to(z.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.num_points
        h = self.inp(x.transpose(0, 1))  # (N, B, H)
        if self.node is not None:
            h = h + self.node.to(h.dtype)
        for norm, lin in zip(self.norms, self.lins):
            z = lin(norm(h))
            h = h + F.gelu(self.propagate(z.reshape(n, -1)).view_as(z))
        h = self.out_norm(h)
        if self.project is not None:
            return self.classifier(self.project(h).transpose(0, 1).flatten(1))
        return self.classifier(self.pool(h))


@register("mesh_gnn", "3d", "landmarks")
def _mesh_gnn(
    num_classes: int,
    *,
    hidden: int = 32,
    layers: int = 4,
    embed: bool = True,
    dropout: float = 0.2,
    readout: int = 8,
    edges: torch.Tensor | None = None,
    num_points: int = NUM_POINTS,
) -> nn.Module:
    """Graph net over the face mesh (plain torch): GCN-style message passing, mean+max readout."""
    if edges is None:
        raise ValueError("model 'mesh_gnn' needs the mesh `edges` (an (E, 2) LongTensor)")
    if not isinstance(embed, bool):
        raise ValueError(f"model 'mesh_gnn': embed must be true or false, got {embed!r}")
    return MeshGNN(
        num_classes,
        edges,
        num_points_option("mesh_gnn", num_points),
        positive_int("mesh_gnn", "hidden", hidden),
        positive_int("mesh_gnn", "layers", layers),
        embed,
        probability("mesh_gnn", "dropout", dropout),
        readout if readout == 0 else positive_int("mesh_gnn", "readout", readout),
    )
