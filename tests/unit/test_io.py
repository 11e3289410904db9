import hashlib
import os
import time

import numpy as np
import pytest

from fer3d.io import atomic_path, load_npz, save_json, save_npz


def test_npz_is_byte_reproducible_and_round_trips(tmp_path):
    arrays = {
        "indices": np.arange(12, dtype=np.uint16).reshape(3, 4),
        "align": np.array("procrustes"),
        "grid": np.int64(24),
    }
    save_npz(tmp_path / "a.npz", **arrays)
    time.sleep(2.1)  # zip timestamps have 2 s resolution: np.savez would differ now
    save_npz(tmp_path / "b.npz", **arrays)
    digest = lambda p: hashlib.md5(p.read_bytes()).hexdigest()
    assert digest(tmp_path / "a.npz") == digest(tmp_path / "b.npz")
    loaded = load_npz(tmp_path / "a.npz")
    assert (loaded["indices"] == arrays["indices"]).all() and str(loaded["align"]) == "procrustes"
    assert int(loaded["grid"]) == 24


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert not target.exists() and os.listdir(target.parent) == []
    save_json(target, {"a": np.float32(0.5)})
    assert target.read_text().strip() == '{\n  "a": 0.5\n}'
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the stage that writes it"):
        load_npz(tmp_path / "landmarks.npz")
