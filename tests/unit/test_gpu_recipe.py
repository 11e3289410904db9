"""bench/gpu_recipe.py: its recipe is README's, the budget cuts epochs as said, and the arrays it
packs compressed for a GPU machine unpack to the download stage's."""

import lzma
import re
import shlex

import numpy as np
import yaml

from bench.gpu_recipe import RECIPE, fits_at_all, fitting_epochs, pack, unpack
from tests.conftest import ROOT


def readme_recipe() -> dict:
    text = (ROOT / "README.md").read_text()
    command = re.search(r"dvc exp run -n gpu-recipe (.*?)\n```", text, re.S).group(1).replace("\\\n", " ")
    words = shlex.split(command)
    pairs = [words[i + 1] for i, w in enumerate(words) if w == "-S"]
    # `++key=value` (DVC/Hydra: add a key params.yaml lacks) sets the same key as `key=value`
    return {key.removeprefix("++"): yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def test_the_recipe_is_the_one_readme_gives():
    readme = readme_recipe()
    assert readme["models.resnet.epochs"] == 200  # the parse found the block
    assert {key: readme[key] for key in RECIPE} == RECIPE


def test_epochs_are_the_recipes_or_what_fits():
    assert fitting_epochs(200, 1.0, 400) == 200  # 200 * 1.0 * 1.5 = 300 s fits
    assert fitting_epochs(200, 3.0, 400) == 88  # 400 // 4.5
    assert fitting_epochs(200, 100.0, 50) == 2  # never fewer than 2


def test_packed_arrays_unpack_to_the_same_npz(fer_full, tmp_path):
    from fer3d.data.fer2013 import stratified_subset
    from fer3d.io import save_npz

    arrays = stratified_subset(fer_full, 50, seed=0).arrays()
    save_npz(tmp_path / "fer2013.npz", **arrays)
    images_xz, meta = pack(tmp_path / "fer2013.npz", tmp_path / "packed")
    assert lzma.decompress(images_xz.read_bytes()) == arrays["images"].tobytes()  # plain xz, readable by `xz -d`
    assert not list((tmp_path / "packed").glob("*.tmp"))
    folder = unpack(images_xz, meta, tmp_path / "data")
    back = np.load(folder / "fer2013.npz")
    assert set(back.files) == set(arrays)
    for key, value in arrays.items():
        assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key


def test_the_recipe_run_starts_only_when_its_fewest_epochs_fit():
    # the guard and the epoch count use the same spare: where the guard lets a run start, the
    # 2 epochs it may be cut to fit in what is left
    assert fits_at_all(10.0, 30.0) and fitting_epochs(200, 10.0, 30.0) == 2
    assert not fits_at_all(10.0, 29.0)
