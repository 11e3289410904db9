"""bench/fusion_under_shift.py on the tiny pipeline's finished run (its shift suite covers PublicTest
and PrivateTest): the `plain` fit is the evaluate stage's fusion to the weight and, under every
shift, the evaluate_shifts stage's number; the fits on shifted PublicTest are fitted and compared
with it on PrivateTest; a cache gives the same answer without scoring; a row that is not in
models/fusion.json and a run without shifted PublicTest are named."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from fer3d.inference.fusion import load_fusions
from fer3d.io import load_npz, save_npz
from tests.conftest import requires_data
from tests.integration.models_fixture import QUIET

pytestmark = [requires_data, pytest.mark.slow]


def fusion_under_shift(repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench/fusion_under_shift.py", "--run", ".", *args],
        cwd=repo,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def scored(tiny_repo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fusion_under_shift")
    cache, out = folder / "cache.npz", folder / "first.json"
    result = fusion_under_shift(tiny_repo, "--cache", str(cache), "--json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads(out.read_text()), cache, folder


def test_the_plain_fit_is_the_pipelines_fusion(tiny_repo, scored):
    result, rows, _, _ = scored
    fusions = load_fusions(tiny_repo / "models" / "fusion.json")
    under_shift = json.loads((tiny_repo / "metrics" / "shifts.json").read_text())["models"]
    assert set(rows) == set(fusions)
    for name, fusion in fusions.items():
        plain = rows[name]["plain"]
        assert list(plain["weights"]) == fusion.members
        assert list(plain["weights"].values()) == pytest.approx(fusion.weights, abs=1e-4), name
        for key in ("val", "test"):
            assert plain[key]["plain"] == pytest.approx(under_shift[name][key]["plain"], abs=1e-5), (name, key)
            assert plain[key]["shifted"] == pytest.approx(under_shift[name][key]["shifted"], abs=1e-5), (name, key)
        assert f"| {name} | plain | {100 * plain['val']['plain']:.2f} |" in result.stdout


def test_the_shifted_fits_are_fitted_and_compared_on_privatetest(scored):
    _, rows, _, _ = scored
    for name, fits in rows.items():
        assert list(fits) == ["plain", "pooled", "balanced"]
        assert "against_plain_test" not in fits["plain"]
        for fit in ("pooled", "balanced"):
            assert all(w >= 0 for w in fits[fit]["weights"].values())
            against = fits[fit]["against_plain_test"]
            plain_diff = fits[fit]["test"]["plain"] - fits["plain"]["test"]["plain"]
            shifted_diff = fits[fit]["test"]["shifted"] - fits["plain"]["test"]["shifted"]
            assert against["plain"]["difference"] == pytest.approx(plain_diff, abs=1e-4), (name, fit)
            assert against["shifted"]["difference"] == pytest.approx(shifted_diff, abs=1e-4), (name, fit)
            for d in against.values():
                low, high = d["interval_95"]
                assert low <= d["difference"] <= high, (name, fit)
        # shifted faces in the pool move the weights (the fits are not the plain one renamed)
        plain_w = np.array(list(fits["plain"]["weights"].values()))
        assert np.abs(np.array(list(fits["pooled"]["weights"].values())) - plain_w).max() > 1e-4, name


def test_the_cache_answers_without_scoring(tiny_repo, scored):
    _, rows, cache, folder = scored
    out = folder / "again.json"
    result = fusion_under_shift(tiny_repo, "--cache", str(cache), "--rows", "fusion_2d", "--json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "scored" not in result.stderr
    assert json.loads(out.read_text()) == {"fusion_2d": rows["fusion_2d"]}
    # a cache scored with another model file (here: its recorded digest changed) is refused, not read
    stale = dict(load_npz(cache))
    stale["models"] = np.array([entry.split(":")[0] + ":0" for entry in stale["models"].tolist()])
    save_npz(folder / "stale.npz", **stale)
    result = fusion_under_shift(tiny_repo, "--cache", str(folder / "stale.npz"), "--rows", "fusion_2d")
    assert result.returncode != 0 and "its model files differ; delete it" in result.stderr, result.stderr


def test_an_unknown_row_is_named(tiny_repo):
    result = fusion_under_shift(tiny_repo, "--rows", "fusion,fusoin")
    assert result.returncode != 0
    assert "fusoin" in result.stderr and "fusion_2d" in result.stderr


def test_a_run_without_shifted_publictest_is_named(tiny_repo, tmp_path):
    # the tiny run's own files, with the default splits in params.yaml: refused before any scoring
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["shifts"]["splits"] = ["test"]
    for name in ("models", "metrics", "data"):
        (tmp_path / name).symlink_to(tiny_repo / name)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, str(tiny_repo / "bench" / "fusion_under_shift.py"), "--run", str(tmp_path)],
        cwd=tiny_repo,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "shifts.splits" in result.stderr and "val" in result.stderr
