"""Geometry, mesh topology and voxels on made-up faces (no FER2013 needed)."""

import numpy as np
import pytest

from fer3d.face3d import geometry, mesh, voxels


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def symmetric_face(rng, n_pairs=40, n_mid=10):
    """A left/right-symmetric point cloud about x=0 with known mirror pairs."""
    half = rng.normal(size=(n_pairs, 3)) + np.array([1.5, 0, 0])
    mid = rng.normal(size=(n_mid, 3)) * np.array([0, 1, 1])
    pts = np.concatenate([half, half * np.array([-1, 1, 1]), mid])
    perm = np.r_[np.arange(n_pairs, 2 * n_pairs), np.arange(n_pairs), np.arange(2 * n_pairs, 2 * n_pairs + n_mid)]
    return pts.astype(np.float32), perm


def test_procrustes_undoes_rotation_translation_and_scale():
    rng = np.random.default_rng(0)
    face = geometry.center_scale(rng.normal(size=(478, 3)))
    moved = np.stack([face @ random_rotation(rng) * s + t for s, t in [(3.0, 5.0), (0.2, -1.0)]])
    aligned = geometry.procrustes_align(moved, face)
    assert np.allclose(aligned, face[None], atol=1e-4)


def test_procrustes_never_reflects():
    rng = np.random.default_rng(1)
    face = geometry.center_scale(rng.normal(size=(478, 3)))
    mirrored = face * np.array([-1, 1, 1])
    r = geometry.rotations_onto(mirrored[None], face)[0]
    assert np.isclose(np.linalg.det(r), 1, atol=1e-5)


def test_mean_face_of_rotated_copies_is_the_face():
    rng = np.random.default_rng(2)
    face = geometry.center_scale(rng.normal(size=(100, 3)))
    copies = np.stack([face @ random_rotation(rng) * 0.1 + 0.001 * rng.normal(size=face.shape) for _ in range(20)])
    mean = geometry.mean_face(copies)
    assert np.allclose(geometry.procrustes_align(mean[None], face)[0], face, atol=0.02)


def test_mirror_permutation_recovers_pairs_and_is_involutive():
    rng = np.random.default_rng(3)
    face, truth = symmetric_face(rng)
    perm = geometry.mirror_permutation(face)
    assert (perm[perm] == np.arange(len(perm))).all()
    assert (perm == truth).all()


def test_normalise_modes_and_bad_mode():
    rng = np.random.default_rng(4)
    pts = rng.normal(size=(2, 478, 3)) * 10 + 24
    assert np.allclose(geometry.normalise(pts, "center").mean(1), 0, atol=1e-5)
    rms = np.sqrt((geometry.normalise(pts, "center") ** 2).sum(-1).mean(-1))
    assert np.allclose(rms, 1, atol=1e-5)
    with pytest.raises(ValueError, match="needs a reference"):
        geometry.normalise(pts, "procrustes")
    with pytest.raises(ValueError, match="alignment must be one of"):
        geometry.normalise(pts, "affine")


def test_mesh_topology_is_a_manifold_triangulation():
    edges = mesh.mesh_edges()
    assert edges.shape == (1330, 2) and (edges[:, 0] < edges[:, 1]).all()
    tess = edges[edges.max(1) < 468]
    triangles = mesh.mesh_triangles(tess)
    assert len(triangles) == 852
    # every triangle's edges are mesh edges, and no edge borders more than two triangles
    tri_edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [0, 2]], triangles[:, [1, 2]]]), axis=1)
    edge_set = {tuple(e) for e in tess.tolist()}
    assert all(tuple(e) in edge_set for e in tri_edges.tolist())
    _, uses = np.unique(tri_edges, axis=0, return_counts=True)
    assert uses.max() == 2
    # Euler: 468 points, 4 boundary loops (outline, two eyes, mouth) → F = E - V + 2 - 4
    assert len(triangles) == len(tess) - 468 + 2 - 4
    regions = mesh.region_indices()
    assert len(regions["left_iris"]) == len(regions["right_iris"]) == 4 and min(regions["left_iris"]) >= 468


def test_edge_lengths_and_quantisation():
    rng = np.random.default_rng(5)
    pts = rng.normal(size=(3, 478, 3)).astype(np.float32)
    edges = np.array([[0, 1], [2, 5]])
    lengths = mesh.edge_lengths(pts, edges)
    assert np.allclose(lengths[:, 0], np.linalg.norm(pts[:, 0] - pts[:, 1], axis=1))
    lo, hi = lengths.min(0), lengths.max(0)
    back = mesh.dequantize(mesh.quantize(lengths, lo, hi), lo, hi)
    assert np.abs(back - lengths).max() <= (hi - lo).max() / 255 / 2 + 1e-6


def loop_voxelize(points, grid, extent):
    """Plain per-point reference to compare the vectorised version with."""
    out = np.zeros((len(points), points.shape[1]), np.int64)
    for n, face in enumerate(points):
        for p, (x, y, z) in enumerate(face):
            c = [min(grid - 1, max(0, int(np.floor((v / extent + 1) * 0.5 * grid)))) for v in (x, y, z)]
            out[n, p] = (c[0] * grid + c[1]) * grid + c[2]
    return out


@pytest.mark.parametrize("grid", [8, 24, 48])
def test_voxel_indices_match_a_loop_and_densify(grid):
    rng = np.random.default_rng(6)
    pts = rng.uniform(-1.2, 1.2, size=(4, 50, 3)).astype(np.float32)
    idx = voxels.voxel_indices(pts, grid, extent=1.0)
    assert idx.dtype == (np.uint16 if grid**3 <= 65536 else np.uint32)
    assert (idx.astype(np.int64) == loop_voxelize(pts, grid, 1.0)).all()
    dense = voxels.densify(idx, grid)
    assert dense.shape == (4, grid, grid, grid)
    assert (dense.reshape(4, -1).sum(1) == [len(np.unique(r)) for r in idx]).all()
    import torch

    assert (voxels.densify_torch(torch.from_numpy(idx.astype(np.int64)), grid)[:, 0].numpy() == dense).all()
