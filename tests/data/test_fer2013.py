"""Reading, verifying and refusing FER2013 in every layout the download stage accepts."""

import gzip
import hashlib
import http.server
import io
import threading
import zipfile
from functools import partial

import numpy as np
import pytest

from fer3d.config import EMOTIONS, SPLITS
from fer3d.data import fer2013 as data
from fer3d.data import sources
from fer3d.data.fer2013 import DataError
from tests.conftest import FER_CSV, requires_data

pytestmark = requires_data


def test_full_file_verifies_with_known_properties(fer_full):
    data.verify(fer_full)
    assert fer_full.images.shape == (35_887, 48, 48) and fer_full.images.dtype == np.uint8
    assert fer_full.counts() == {k: list(v) for k, v in data.EXPECTED_COUNTS.items()}
    # README facts: 12 all-black images, row 30002 (PublicTest) among them; rows sorted by split
    black = np.flatnonzero(fer_full.images.reshape(len(fer_full), -1).max(1) == 0)
    assert len(black) == 12 and 30002 in black and SPLITS[fer_full.split[30002]] == "val"
    assert (np.diff(fer_full.split.astype(int)) >= 0).all()
    assert (fer_full.row == np.arange(35_887)).all()


def test_stratified_subset_keeps_every_class_and_order(fer_full):
    sub = data.stratified_subset(fer_full, 70, seed=1)
    counts = sub.counts()
    for split in SPLITS:
        assert all(c >= 1 for c in counts[split]) and 60 <= sum(counts[split]) <= 80
    assert (np.diff(sub.row) > 0).all()
    again = data.stratified_subset(fer_full, 70, seed=1)
    assert (again.row == sub.row).all()
    assert (sub.images == fer_full.images[sub.row]).all()


def csv_bytes(lines):
    return b"\n".join(lines) + b"\n"


def test_truncated_file_is_refused(fer_csv_lines, tmp_path):
    short = tmp_path / "fer2013.csv"
    short.write_bytes(csv_bytes(fer_csv_lines[:1001]))
    fer = data.read_source(short)
    assert len(fer) == 1000
    with pytest.raises(DataError, match="found 1,000 rows, expected 35,887"):
        data.verify(fer, str(short))
    # cut in the middle of a row, as an interrupted download would
    cut = csv_bytes(fer_csv_lines[:11])[:-3000]
    with pytest.raises(DataError, match=r"data row 9 \(line 11\) has 2 fields, expected 3.*truncated"):
        data.parse_csv(cut)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda f: [f[0], b" ".join(f[1].split()[:-1]), f[2]], "data row 3 has 2303 pixel values, expected 2304"),
        (lambda f: [b"9", f[1], f[2]], "data row 3 has emotion '9', expected an integer 0..6"),
        (lambda f: [f[0], f[1], b"Validation"], "data row 3 has Usage 'Validation'"),
        (lambda f: [f[0], f[1].replace(b" ", b" 300 ", 1).split(b" ", 1)[1], f[2]], "data row 3 has pixel value 300"),
        # 2^32 + 5 used to wrap around to 5 in int32 and pass the 0..255 check
        (
            lambda f: [f[0], f[1].replace(b" ", b" 4294967301 ", 1).split(b" ", 1)[1], f[2]],
            "data row 3 has pixel value 4294967301, expected 0..255",
        ),
        (
            lambda f: [f[0], f[1].replace(b" ", b" x ", 1).split(b" ", 1)[1], f[2]],
            "data row 3 holds a pixel value that is not an integer",
        ),
    ],
)
def test_bad_rows_are_named(fer_csv_lines, mutate, message):
    lines = list(fer_csv_lines[:8])
    lines[4] = b",".join(mutate(lines[4].split(b",")))
    with pytest.raises(DataError, match=message):
        data.parse_csv(csv_bytes(lines))


def test_wrong_header_missing_file_corrupt_gzip_and_zip(tmp_path, fer_csv_lines):
    with pytest.raises(DataError, match="expected the header 'emotion,pixels,Usage'"):
        data.parse_csv(b"label,pixels\n1,2\n")
    with pytest.raises(DataError, match="no such file or folder"):
        data.read_source(tmp_path / "missing.csv")
    bad_gz = tmp_path / "fer2013.csv.gz"
    bad_gz.write_bytes(gzip.compress(csv_bytes(fer_csv_lines[:5]))[:200])
    with pytest.raises(DataError, match="not a readable gzip file"):
        data.read_source(bad_gz)
    bad_zip = tmp_path / "fer2013.zip"
    bad_zip.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(DataError, match="not a valid zip archive"):
        data.read_source(bad_zip)


def test_a_double_space_is_named_at_its_row_not_the_last(fer_csv_lines):
    lines = list(fer_csv_lines[:40])
    emotion, pixels, usage = lines[4].split(b",")
    values = pixels.split(b" ")
    lines[4] = b",".join([emotion, b" ".join(values[:10]) + b"  " + b" ".join(values[11:]), usage])  # one missing
    with pytest.raises(DataError, match=r"data row 3 has an empty pixel value \(two spaces in a row"):
        data.parse_csv(csv_bytes(lines))


def test_empty_file_and_flipped_gzip_byte_get_plain_messages(tmp_path, fer_csv_lines):
    empty = tmp_path / "fer2013.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError) as error:
        data.read_source(empty)
    assert str(error.value) == f"{empty}: expected the header 'emotion,pixels,Usage', found an empty file"
    packed = bytearray(gzip.compress(csv_bytes(fer_csv_lines[:30])))
    packed[len(packed) // 2] ^= 0xFF  # a flipped byte inside the deflate stream
    flipped = tmp_path / "flipped.csv.gz"
    flipped.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=f"{flipped}: not a readable gzip file"):
        data.read_source(flipped)


def test_fuzzed_csv_files_always_get_a_message_naming_the_file(tmp_path, fer_csv_lines):
    """Random truncations and byte flips of a small real csv (plain and gzipped): the reader either
    reads it or raises DataError naming the file; never another exception."""
    rng = np.random.default_rng(0)
    original = csv_bytes(fer_csv_lines[:25])
    outcomes = {"read": 0, "refused": 0}
    for trial in range(150):
        raw = bytearray(original)
        if trial % 3 == 0:
            raw = raw[: int(rng.integers(0, len(raw)))]
        for _ in range(int(rng.integers(1, 4))):
            if raw:
                raw[int(rng.integers(0, len(raw)))] = int(rng.integers(0, 256))
        path = tmp_path / (f"fuzz{trial}.csv.gz" if trial % 2 else f"fuzz{trial}.csv")
        path.write_bytes(gzip.compress(bytes(raw)) if trial % 2 else bytes(raw))
        if trial % 4 == 1:  # damage the gzip stream itself too
            packed = bytearray(path.read_bytes())
            packed[int(rng.integers(10, len(packed)))] ^= 0x55
            path.write_bytes(bytes(packed))
        try:
            fer = data.read_source(path)
            assert len(fer) <= 24
            outcomes["read"] += 1
        except DataError as e:
            assert str(path) in str(e), str(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(  # nothing else written beside them
        f"fuzz{t}.csv.gz" if t % 2 else f"fuzz{t}.csv" for t in range(150)
    )


def msambare_zip(fer, path, per_class=2):
    """The Kaggle msambare layout, built from real rows (PNG, so pixels survive exactly)."""
    from PIL import Image

    rows = []
    with zipfile.ZipFile(path, "w") as z:
        for s, split in enumerate(SPLITS):
            for c, emotion in enumerate(EMOTIONS):
                for i in np.flatnonzero((fer.split == s) & (fer.label == c))[:per_class]:
                    top = "train" if split == "train" else "test"
                    prefix = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}[split]
                    buf = io.BytesIO()
                    Image.fromarray(fer.images[i]).save(buf, format="PNG")
                    z.writestr(f"{top}/{emotion}/{prefix}_{i}.png", buf.getvalue())
                    rows.append(i)
        z.writestr("README.txt", "not an image")
    return np.array(rows)


def test_msambare_zip_and_folder_layouts(fer_small, tmp_path):
    rows = msambare_zip(fer_small, tmp_path / "fer.zip")
    fer = data.read_source(tmp_path / "fer.zip")
    assert len(fer) == len(rows) == sum(min(2, c) for counts in fer_small.counts().values() for c in counts)
    assert (fer.row == -1).all()  # the layout does not carry FER2013 row numbers
    assert sorted(map(tuple, np.c_[fer.split, fer.label])) == sorted(
        map(tuple, np.c_[fer_small.split[rows], fer_small.label[rows]])
    )
    # every image is one of the real rows, pixel for pixel
    originals = {fer_small.images[i].tobytes() for i in rows}
    assert all(img.tobytes() in originals for img in fer.images)
    with zipfile.ZipFile(tmp_path / "fer.zip") as z:
        z.extractall(tmp_path / "folder")
    folder = data.read_source(tmp_path / "folder")
    assert len(folder) == len(fer) and folder.counts() == fer.counts()
    # a test image without a PublicTest_/PrivateTest_ prefix cannot be given a split
    (tmp_path / "folder" / "test" / "happy" / "img1.png").write_bytes(
        (tmp_path / "folder" / "test" / "happy").glob("*.png").__next__().read_bytes()
    )
    with pytest.raises(DataError, match="must be named PublicTest_\\* or PrivateTest_\\*"):
        data.read_source(tmp_path / "folder")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_source_is_checked_against_sha256(http_server, tmp_path, fer_csv_lines):
    www, base = http_server
    payload = gzip.compress(csv_bytes(fer_csv_lines[:21]))
    (www / "fer2013.csv.gz").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    target_dir = tmp_path / "raw"
    path = sources.fetch(f"{base}/fer2013.csv.gz", sha256=digest, search_dirs=[], download_dir=target_dir)
    assert path.read_bytes() == payload and len(data.read_source(path)) == 20
    with pytest.raises(DataError, match="sha256 is .*, expected 0+") as error:
        sources.fetch(f"{base}/fer2013.csv.gz", sha256="0" * 64, search_dirs=[], download_dir=tmp_path / "raw2")
    # named by its URL and final name, not by the temporary file it was checked in
    assert str(error.value).startswith(f"{base}/fer2013.csv.gz (for {tmp_path / 'raw2' / 'fer2013.csv.gz'}")
    assert ".fer2013.csv.gz." not in str(error.value)
    assert not (tmp_path / "raw2").exists() or not any((tmp_path / "raw2").iterdir())  # nothing half-written
    with pytest.raises(DataError, match="data.sha256 is empty"):
        sources.fetch(f"{base}/fer2013.csv.gz", sha256="", search_dirs=[], download_dir=target_dir)
    with pytest.raises(DataError, match="download failed .*404"):
        sources.fetch(f"{base}/missing.csv", sha256=digest, search_dirs=[], download_dir=target_dir)


def test_auto_source_finds_local_copies_and_says_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert sources.fetch("auto", search_dirs=[tmp_path, FER_CSV.parent], download_dir=tmp_path) == FER_CSV
    with pytest.raises(DataError, match="(?s)FER2013 was not found.*kaggle:msambare/fer2013"):
        sources.fetch("auto", search_dirs=[tmp_path / "a", tmp_path / "b"], download_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        sources.fetch(str(tmp_path / "nope.csv"), search_dirs=[tmp_path], download_dir=tmp_path)


def test_kaggle_source_reads_kagglehub_cache(fer_small, tmp_path, monkeypatch):
    """kagglehub serves a versioned handle from its cache without the network: the real client
    code path, on local files."""
    pytest.importorskip("kagglehub")
    cache = tmp_path / "kagglehub"
    version_dir = cache / "datasets" / "msambare" / "fer2013" / "versions" / "1"
    version_dir.mkdir(parents=True)
    msambare_zip(fer_small, tmp_path / "fer.zip", per_class=1)
    with zipfile.ZipFile(tmp_path / "fer.zip") as z:
        z.extractall(version_dir)
    (cache / "datasets" / "msambare" / "fer2013" / "1.complete").write_text("")  # kagglehub's marker
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    path = sources.fetch("kaggle:msambare/fer2013/versions/1", search_dirs=[], download_dir=tmp_path)
    assert path == version_dir
    assert len(data.read_source(path)) == sum(min(1, c) for counts in fer_small.counts().values() for c in counts)


def test_an_unversioned_kaggle_handle_uses_the_newest_cached_version_offline(fer_small, tmp_path, monkeypatch):
    """kagglehub asks Kaggle's API for the newest version before it looks in its cache; with a
    finished download cached, fetch pins that version and never asks (there is no network here)."""
    pytest.importorskip("kagglehub")
    cache = tmp_path / "kagglehub"
    dataset = cache / "datasets" / "msambare" / "fer2013"
    msambare_zip(fer_small, tmp_path / "fer.zip", per_class=1)
    for version in (1, 2, 3):  # version 3's download never finished: no marker
        with zipfile.ZipFile(tmp_path / "fer.zip") as z:
            z.extractall(dataset / "versions" / str(version))
        if version < 3:
            (dataset / f"{version}.complete").write_text("")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    assert sources.newest_cached_version("msambare/fer2013") == 2
    assert sources.fetch("kaggle:msambare/fer2013", search_dirs=[], download_dir=tmp_path) == dataset / "versions" / "2"
    assert sources.newest_cached_version("someone/else") is None


def test_sha256_is_checked_on_local_and_auto_files_and_refused_for_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    digest = hashlib.sha256(FER_CSV.read_bytes()).hexdigest()
    found = sources.fetch("auto", sha256=digest, search_dirs=[FER_CSV.parent], download_dir=tmp_path)
    assert found == FER_CSV
    with pytest.raises(DataError, match=f"sha256 is {digest}, expected {'0' * 64}"):
        sources.fetch("auto", sha256="0" * 64, search_dirs=[FER_CSV.parent], download_dir=tmp_path)
    (tmp_path / "faces").mkdir()
    with pytest.raises(DataError, match="data.sha256 is set, but data.source .* is the folder .*faces: a checksum"):
        sources.fetch(str(tmp_path / "faces"), sha256=digest, search_dirs=[], download_dir=tmp_path)


def test_a_relative_source_is_the_workspaces_also_in_a_queued_experiment(tmp_path, monkeypatch):
    workspace = tmp_path / "project"
    copy = workspace / ".dvc" / "tmp" / "exps" / "run1"  # where `dvc exp run --queue` runs the stages
    (copy).mkdir(parents=True)
    (copy / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    monkeypatch.chdir(copy)
    monkeypatch.delenv("FER3D_ROOT", raising=False)
    path = sources.fetch("../shared/fer2013.csv", search_dirs=[], download_dir=tmp_path)
    assert path == tmp_path / "shared" / "fer2013.csv"


def test_trailing_blank_lines_a_csv_inside_a_zip_and_macos_metadata(fer_csv_lines, fer_small, tmp_path):
    table = csv_bytes(fer_csv_lines[:6])
    assert len(data.parse_csv(table + b"\n\r\n")) == 5  # blank lines at the end are not a truncated row
    with zipfile.ZipFile(tmp_path / "fer2013.zip", "w") as z:  # the csv zipped, as `auto` may find it
        z.writestr("fer2013/fer2013.csv", table)
        z.writestr("__MACOSX/fer2013/._fer2013.csv", b"AppleDouble")
    zipped = data.read_source(tmp_path / "fer2013.zip")
    assert (zipped.images == data.parse_csv(table).images).all() and (zipped.row == np.arange(5)).all()
    # an image folder unzipped on a Mac: __MACOSX/ and ._ files beside the faces are not faces
    msambare_zip(fer_small, tmp_path / "fer.zip", per_class=1)
    with zipfile.ZipFile(tmp_path / "fer.zip") as z:
        z.extractall(tmp_path / "folder")
    expected = len(data.read_source(tmp_path / "folder"))
    (tmp_path / "folder" / "__MACOSX" / "train" / "angry").mkdir(parents=True)
    (tmp_path / "folder" / "__MACOSX" / "train" / "angry" / "._Training_1.png").write_bytes(b"AppleDouble")
    (tmp_path / "folder" / "train" / "angry" / "._Training_1.png").write_bytes(b"AppleDouble")
    assert len(data.read_source(tmp_path / "folder")) == expected
