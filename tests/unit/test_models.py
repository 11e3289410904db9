"""Every registered model: builds, has the right output shape, learns, and fails clearly."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from fer3d.models import MODELS, build_model, count_parameters, model_options
from fer3d.models.inputs import standardise_images

N = 478
NUM_EDGES = 1330
GRID = 24


def ring_edges(n: int = N) -> torch.Tensor:
    """A ring over all points plus chords: connected, like the mesh, and cheap to make."""
    i = torch.arange(n)
    ring = torch.stack([i, (i + 1) % n], 1)
    chords = torch.stack([i, (i * 7 + 13) % n], 1)[::3]
    return torch.cat([ring, chords])


CONTEXT = dict(grid=GRID, edges=ring_edges(), num_edges=NUM_EDGES, num_points=N)


def sample(kind: str, batch: int = 4, grid: int = GRID, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "image":
        return torch.randn(batch, 1, 48, 48, generator=g)
    if kind == "landmarks":
        return torch.randn(batch, N, 3, generator=g)
    if kind == "distances":
        return torch.randn(batch, NUM_EDGES, generator=g)
    return (torch.rand(batch, 1, grid, grid, grid, generator=g) < 0.05).float()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_registry_has_every_model_with_family_and_input():
    expected = {
        "cnn": ("2d", "image"),
        "resnet": ("2d", "image"),
        "vgg": ("2d", "image"),
        "landmark_mlp": ("3d", "landmarks"),
        "landmark_cnn": ("3d", "landmarks"),
        "distance_cnn": ("3d", "distances"),
        "voxel_cnn": ("3d", "voxels"),
        "mesh_gnn": ("3d", "landmarks"),
    }
    assert {n: (s.family, s.input) for n, s in MODELS.items()} == expected


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_shape_and_backward(name):
    spec = MODELS[name]
    model = build_model(name, **CONTEXT)
    x = sample(spec.input)
    logits = model(x)
    assert logits.shape == (4, 7) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    first = next(p for p in model.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0, f"{name}: no gradient on the first layer"
    assert count_parameters(model) > 1000
    model.eval()
    with torch.no_grad():
        assert model(x[:1]).shape == (1, 7)  # eval mode works on a single sample (BatchNorm)


@pytest.mark.parametrize("name", ["cnn", "landmark_mlp"])
def test_num_classes(name):
    model = build_model(name, num_classes=3, **CONTEXT)
    assert model(sample(MODELS[name].input)).shape == (4, 3)


def test_2d_models_accept_channels_last():
    for name in ("cnn", "resnet", "vgg"):
        model = build_model(name).to(memory_format=torch.channels_last).eval()
        x = sample("image")
        with torch.no_grad():
            ref = build_model(name)
            ref.load_state_dict(model.state_dict())
            ref.eval()
            out = model(x.contiguous(memory_format=torch.channels_last))
            assert torch.allclose(out, ref(x), atol=1e-4)


def test_unknown_model_names_it_and_lists_known():
    with pytest.raises(ValueError, match="nope") as err:
        build_model("nope")
    assert "cnn" in str(err.value) and "mesh_gnn" in str(err.value)


def test_unknown_option_names_model_option_and_allowed():
    with pytest.raises(ValueError) as err:
        build_model("cnn", widht=3)
    msg = str(err.value)
    assert "cnn" in msg and "widht" in msg and "widths" in msg and "dropout" in msg


def test_context_keys_are_ignored_where_unused_and_spec_keys_checked():
    model = build_model("cnn", grid=16, edges=ring_edges(), num_edges=5, num_points=N, family="2d", input="image")
    assert model(sample("image")).shape == (4, 7)
    with pytest.raises(ValueError, match="family"):
        build_model("cnn", family="3d")


def test_bad_option_values_are_rejected():
    with pytest.raises(ValueError, match="widths"):
        build_model("cnn", widths=[16, 32])
    with pytest.raises(ValueError, match="dropout"):
        build_model("landmark_mlp", dropout=1.5)
    with pytest.raises(ValueError, match="edges"):
        build_model("mesh_gnn")
    with pytest.raises(ValueError, match="num_edges"):
        build_model("distance_cnn")
    with pytest.raises(ValueError, match="edge indices"):
        build_model("mesh_gnn", edges=torch.tensor([[0, N]]))


def test_options_are_applied():
    assert set(model_options("cnn")) == {"widths", "dropout", "image_norm"}
    small = build_model("cnn", widths=[8, 16, 32])
    assert count_parameters(small) < count_parameters(build_model("cnn"))
    assert build_model("distance_cnn", hidden=0)(sample("distances")).shape == (4, 7)


@pytest.mark.parametrize("name", ["cnn", "vgg", "resnet"])
def test_per_image_norm_ignores_exposure_and_contrast_of_real_faces(name, fer_small):
    """image_norm: per_image makes a 2D net blind to an affine change of a crop's gray levels
    (the shift suite's contrast, roughly its gamma); the default net is not, and keeps its weights'
    names and values (no module with weights, no random draw), so older model files load and
    default runs stay bit for bit."""
    faces = torch.from_numpy(fer_small.images[:16].astype(np.float32)).unsqueeze(1)
    # unrounded, so that the change stays exactly affine
    dimmer = 0.6 * (faces - faces.mean((2, 3), keepdim=True)) + faces.mean((2, 3), keepdim=True) - 25

    def standardised(x):
        return standardise_images(x, {"mean": 0.5, "std": 0.25})

    torch.manual_seed(3)
    default = build_model(name).eval()
    torch.manual_seed(3)
    per_image = build_model(name, image_norm="per_image").eval()
    assert default.state_dict().keys() == per_image.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), per_image.state_dict().values()))
    with torch.no_grad():
        same = per_image(standardised(faces)), per_image(standardised(dimmer))
        moved = default(standardised(faces)), default(standardised(dimmer))
    assert torch.allclose(*same, atol=1e-4)
    assert (moved[0] - moved[1]).abs().max() > 100 * (same[0] - same[1]).abs().max()
    with pytest.raises(ValueError, match="image_norm.*per_image.*'batch'"):
        build_model(name, image_norm="batch")


def test_vgg_loads_local_pretrained_weights(tmp_path):
    source = build_model("vgg", num_classes=5)  # another classifier size: skipped, the rest loads
    path = tmp_path / "vgg.pt"
    torch.save(source.state_dict(), path)
    model = build_model("vgg", pretrained=str(path))
    assert model.pretrained_from == str(path)
    assert build_model("vgg").pretrained_from is None
    conv = "features.0.weight"
    assert torch.equal(model.state_dict()[conv], source.state_dict()[conv])
    assert model(sample("image")).shape == (4, 7)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        build_model("vgg", pretrained=str(tmp_path / "missing.pt"))


def test_vgg_pretrained_rgb_first_conv_is_summed(tmp_path):
    state = build_model("vgg").state_dict()
    rgb = torch.randn(state["features.0.weight"].shape[0], 3, 3, 3)
    state["features.0.weight"] = rgb
    torch.save(state, tmp_path / "rgb.pt")
    model = build_model("vgg", pretrained=str(tmp_path / "rgb.pt"))
    assert torch.allclose(model.state_dict()["features.0.weight"], rgb.sum(1, keepdim=True))


def test_mesh_gnn_uses_the_graph():
    torch.manual_seed(0)
    a = build_model("mesh_gnn", edges=ring_edges()).eval()
    torch.manual_seed(0)
    b = build_model("mesh_gnn", edges=ring_edges()[:N]).eval()  # ring only: fewer edges
    assert torch.equal(a.state_dict()["inp.weight"], b.state_dict()["inp.weight"])
    x = sample("landmarks")
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x), atol=1e-5)


def test_mesh_gnn_without_node_embedding_is_permutation_invariant():
    edges = ring_edges()
    model = build_model("mesh_gnn", edges=edges, embed=False, readout=0).eval()
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(N)
    # same faces and same graph, with every point renumbered: new point j is old point perm[j]
    relabelled = build_model("mesh_gnn", edges=inverse[edges], embed=False, readout=0).eval()
    relabelled.load_state_dict(model.state_dict())
    x = sample("landmarks")
    with torch.no_grad():
        assert torch.allclose(model(x), relabelled(x[:, perm]), atol=1e-5)
        assert not torch.allclose(model(x), model(x[:, perm]), atol=1e-3)  # the graph matters


def test_mesh_gnn_adjacency_moves_with_the_module():
    model = build_model("mesh_gnn", edges=ring_edges()).to(torch.float64)
    assert {name for name, _ in model.named_buffers()} >= {"crow", "col", "val"}
    assert model(sample("landmarks").double()).dtype == torch.float64
    assert "crow" not in model.state_dict()  # derived from the edges, not saved


@pytest.mark.parametrize("grid", [12, 16, 24, 32])
def test_voxel_cnn_grid_sizes(grid):
    model = build_model("voxel_cnn", grid=grid)
    out = model(sample("voxels", batch=2, grid=grid))
    assert out.shape == (2, 7)
    out.sum().backward()


def _overfit(name: str, steps: int) -> float:
    """Final training loss of Adam on a fixed batch of 32 random samples with arbitrary labels."""
    torch.manual_seed(0)
    model = build_model(name, dropout=0.0, **CONTEXT)
    x = sample(MODELS[name].input, batch=32, seed=1)
    if x.dim() == 4:  # oneDNN's fast path for 2D convs on CPU
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    y = torch.arange(32) % 7
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 1.0  # it did start from chance
    return losses[-1]


# the cnn gets there in ~20 steps; 40 keeps the test at a few seconds
@pytest.mark.parametrize("name, steps", [("landmark_mlp", 100), ("cnn", 40)])
def test_tiny_overfit(name, steps):
    assert _overfit(name, steps) < 0.05
