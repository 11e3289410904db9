"""`fer3d predict` on videos, with models a tiny pipeline trains: a clip built here from a real photo
(matplotlib's grace_hopper.jpg) and real FER2013 faces — two faces moving, then a cut to two other
faces at other places — and a copy of it cut off in the middle."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import requires_data
from tests.integration.models_fixture import fer3d_cli

pytestmark = [requires_data, pytest.mark.slow]
WIDTH, HEIGHT, FPS, FRAMES, CUT = 640, 400, 10, 40, 20  # the scene changes at frame CUT


# ------------------------------------------------------------------ the clip


def sample_photo() -> Path:
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def grace_face() -> np.ndarray:
    """The photo's head and shoulders around the face, 180 px square."""
    import cv2

    image = cv2.imread(str(sample_photo()))
    return cv2.resize(image[110:370, 140:400], (180, 180), interpolation=cv2.INTER_AREA)


def fer_face(crop: np.ndarray, side: int) -> np.ndarray:
    """A 48x48 FER2013 crop upscaled (MediaPipe finds most of them at 130-160 px on gray)."""
    import cv2

    return cv2.cvtColor(cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)


def layout(i: int, faces: list[np.ndarray]) -> list[tuple[np.ndarray, int, int]]:
    """(face, x, y) of frame i: the photo moves right and a FER face down; after the cut two
    other FER faces, lower in the frame, one moving right and one up."""
    grace, first, second, third = faces
    if i < CUT:
        return [(grace, 20 + 8 * i, 30), (first, 450, 20 + 4 * i)]
    j = i - CUT
    return [(second, 40 + 3 * j, 250), (third, 300, 250 - 2 * j)]


def write_clip(path: Path, faces: list[np.ndarray]) -> Path:
    import cv2

    # MJPG in AVI: every frame stands alone, so a copy cut anywhere still decodes up to the cut
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    for i in range(FRAMES):
        frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
        for face, x, y in layout(i, faces):
            frame[y : y + face.shape[0], x : x + face.shape[1]] = face
        writer.write(frame)
    writer.release()
    return path


def faces_found(path: Path, finder) -> list[int]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    counts = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return counts
        counts.append(len(finder.find(frame)))


@pytest.fixture(scope="module")
def clip(tiny_repo, tmp_path_factory) -> Path:
    """The clip, with FER2013 faces that MediaPipe finds in every frame (checked here, on the
    decoded video, so that every count below is exact)."""
    from fer3d.app.faces import FaceFinder
    from fer3d.io import load_npz

    crops = load_npz(tiny_repo / "data" / "fer2013.npz")["images"]
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    finder = FaceFinder()
    try:
        for start in range(0, 30, 3):
            faces = [grace_face(), fer_face(crops[start], 150), *(fer_face(crops[start + k], 130) for k in (1, 2))]
            if faces_found(write_clip(path, faces), finder) == [2] * FRAMES:
                return path
    finally:
        finder.close()
    pytest.fail("MediaPipe missed a face in some frame for every FER2013 triple tried (rows 0-29)")


def run_predict(repo: Path, out_dir: Path, *args: str) -> tuple:
    result = fer3d_cli(repo, "predict", *args, "--out", str(out_dir / "p.json"))
    data = json.loads((out_dir / "p.json").read_text()) if (out_dir / "p.json").exists() else None
    return result, data


def read_rows(path: Path | str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def smooth_run(tiny_repo, clip, tmp_path_factory):
    """Defaults (5 frames/s, half-life 0.5 s) and the annotated video."""
    out = tmp_path_factory.mktemp("smooth")
    result, data = run_predict(tiny_repo, out, str(clip), "--annotate")
    assert result.returncode == 0, result.stderr[-3000:]
    return result, data, read_rows(out / "clip_faces.csv")


@pytest.fixture(scope="module")
def raw_run(tiny_repo, clip, tmp_path_factory):
    """The same frames without smoothing, the table where --video-out says."""
    out = tmp_path_factory.mktemp("raw")
    result, data = run_predict(tiny_repo, out, str(clip), "--half-life", "0", "--video-out", str(out / "raw.csv"))
    assert result.returncode == 0, result.stderr[-3000:]
    return result, data, read_rows(out / "raw.csv")


@pytest.fixture(scope="module")
def cut_run(tiny_repo, clip, tmp_path_factory):
    """A copy of the clip with its second half of bytes cut off, and a file that is no video,
    at 2.5 frames/s without smoothing; tables in a folder."""
    out = tmp_path_factory.mktemp("cut")
    data = clip.read_bytes()
    (out / "cut.avi").write_bytes(data[: len(data) // 2])
    (out / "fake.mp4").write_bytes(b"this is no video " * 64)
    args = [str(out / "cut.avi"), str(out / "fake.mp4"), "--fps", "2.5", "--half-life", "0"]
    result, summary = run_predict(tiny_repo, out, *args, "--video-out", f"{out}/tables/")
    return result, summary, read_rows(out / "tables" / "cut_faces.csv")


def by_key(rows: list[dict]) -> dict[tuple[int, int], dict]:
    return {(int(r["frame"]), int(r["track_id"])): r for r in rows}


def probability_columns(data: dict) -> list[str]:
    return [f"{name}_{c}" for name in data["models"] for c in data["classes"]]


# ------------------------------------------------------------------ rows, tracks, sampling


def test_one_row_per_face_per_sampled_frame(smooth_run, clip):
    result, data, rows = smooth_run
    sampled = list(range(0, FRAMES, FPS // 5))  # 5 of the clip's 10 frames per second
    assert [int(r["frame"]) for r in rows] == [i for i in sampled for _ in range(2)]
    assert [float(r["time_s"]) for r in rows[::2]] == pytest.approx([i / FPS for i in sampled])
    (summary,) = data["videos"]
    expected = {"file": str(clip), "frames_read": FRAMES, "frames_sampled": len(sampled), "faces": 2 * len(sampled)}
    assert {k: summary[k] for k in expected} == expected
    assert (summary["tracks"], summary["fps"], summary["duration_s"], summary["stopped"]) == (4, FPS, 4.0, None)
    assert data["files"] == [] and data["faces"] == 0  # no photo among the inputs
    assert summary["emotions"]["model"] == "fusion" and sum(summary["emotions"]["rows"].values()) == len(rows)
    line = next(x.split() for x in result.stdout.splitlines() if x.split()[:1] == [str(clip)])  # its table line
    assert line[1:5] == [str(FRAMES), str(len(sampled)), str(2 * len(sampled)), "4"]
    assert line[-1] == summary["table"] == str(Path(summary["table"]).parent / "clip_faces.csv")


def test_moving_faces_keep_their_ids_and_the_cut_gives_new_ones(smooth_run):
    _, _, rows = smooth_run
    before = [r for r in rows if int(r["frame"]) < CUT]
    after = [r for r in rows if int(r["frame"]) >= CUT]
    assert {int(r["track_id"]) for r in before} == {0, 1} and {int(r["track_id"]) for r in after} == {2, 3}
    for frame in {r["frame"] for r in rows}:
        assert len({r["track_id"] for r in rows if r["frame"] == frame}) == 2
    centre_x = lambda r: int(r["x"]) + int(r["w"]) / 2
    centre_y = lambda r: int(r["y"]) + int(r["h"]) / 2
    photo = [r for r in before if r["track_id"] == "0"]  # the leftmost face of the first frame
    moved = centre_x(photo[-1]) - centre_x(photo[0])
    assert moved == pytest.approx(8 * (int(photo[-1]["frame"]) - int(photo[0]["frame"])), abs=25)
    falling = [r for r in before if r["track_id"] == "1"]
    assert centre_y(falling[-1]) - centre_y(falling[0]) == pytest.approx(4 * (CUT - 2), abs=25)
    assert min(centre_y(r) for r in after) > max(centre_y(r) for r in photo)  # other places


def test_head_pose_and_mesh_columns(smooth_run):
    _, _, rows = smooth_run
    assert all(r["mesh_found"] == "True" for r in rows)  # every face of this clip has a mesh
    for r in rows:
        yaw, pitch, roll = (float(r[k]) for k in ("yaw", "pitch", "roll"))
        assert all(math.isfinite(a) and abs(a) < 90 for a in (yaw, pitch, roll)), r
    photo = [r for r in rows if r["track_id"] == "0"]
    assert all(abs(float(r["yaw"])) < 25 and abs(float(r["roll"])) < 15 for r in photo)  # she faces the camera


# ------------------------------------------------------------------ smoothing


def test_smoothing_is_the_moving_average_of_the_raw_probabilities(smooth_run, raw_run):
    _, data, smooth = smooth_run
    _, raw_data, raw = raw_run
    columns = probability_columns(data)
    assert raw_data["videos"][0]["half_life_s"] == 0 and data["videos"][0]["half_life_s"] == 0.5
    raw_by, smooth_by = by_key(raw), by_key(smooth)
    assert raw_by.keys() == smooth_by.keys()  # same frames, same faces, same ids
    changed = 0
    for track in {k[1] for k in raw_by}:
        keys = sorted(k for k in raw_by if k[1] == track)
        first = keys[0]
        assert [smooth_by[first][c] for c in columns] == [raw_by[first][c] for c in columns]  # starts unsmoothed
        average = np.array([float(raw_by[first][c]) for c in columns])
        for previous, key in itertools.pairwise(keys):
            w = 1 - 0.5 ** ((key[0] - previous[0]) / FPS / 0.5)
            average = w * np.array([float(raw_by[key][c]) for c in columns]) + (1 - w) * average
            got = np.array([float(smooth_by[key][c]) for c in columns])
            np.testing.assert_allclose(got, average, atol=1e-5)
            changed += np.abs(got - np.array([float(raw_by[key][c]) for c in columns])).max() > 1e-4
    assert changed >= len(smooth) // 2  # smoothing changes most later rows
    for r in smooth:  # the emotion column is the smoothed argmax
        for name in data["models"]:
            probs = {c: float(r[f"{name}_{c}"]) for c in data["classes"]}
            assert probs[r[f"{name}_emotion"]] == max(probs.values())


# ------------------------------------------------------------------ outputs


def test_parquet_holds_the_same_rows(smooth_run):
    import pyarrow.parquet as pq

    _, data, rows = smooth_run
    (summary,) = data["videos"]
    table = pq.read_table(summary["parquet"])
    assert table.column_names == list(rows[0]) and table.num_rows == len(rows)
    assert [str(v) for v in table.column("track_id").to_pylist()] == [r["track_id"] for r in rows]
    assert table.column("fusion_happy").to_pylist() == [float(r["fusion_happy"]) for r in rows]


def test_annotated_video_has_every_sampled_frame(smooth_run):
    import cv2

    _, data, _ = smooth_run
    (summary,) = data["videos"]
    assert summary["annotated"].endswith("clip_annotated.mp4")
    capture = cv2.VideoCapture(summary["annotated"])
    assert capture.isOpened()
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == summary["frames_sampled"] == int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    assert frames[0].shape == (HEIGHT, WIDTH, 3)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    assert np.abs(frames[0].astype(int) - 128).max() > 100  # boxes and faces drawn, not a blank frame


# ------------------------------------------------------------------ damaged and wrong files


def test_a_cut_off_video_keeps_the_rows_before_the_cut(cut_run, raw_run):
    result, data, rows = cut_run
    assert result.returncode == 0, result.stderr[-3000:]
    cut = next(v for v in data["videos"] if v["file"].endswith("cut.avi"))
    stop = cut["stopped"]
    assert 0 < stop["frame"] < FRAMES and stop["expected_frames"] == FRAMES
    assert stop["time_s"] == pytest.approx(stop["frame"] / FPS) and cut["frames_read"] == stop["frame"]
    assert f"cut.avi: the video stops at frame {stop['frame']} ({stop['time_s']:.2f} s)" in result.stderr
    frames = sorted({int(r["frame"]) for r in rows})
    assert frames == list(range(0, stop["frame"], FPS * 2 // 5))  # 2.5 of 10 frames per second, up to the cut
    assert len(rows) == 2 * len(frames) == cut["faces"]
    raw = by_key(raw_run[2])  # unsmoothed, so the same frame gives the same row at any rate
    columns = probability_columns(data)
    for row in rows:
        same = raw[(int(row["frame"]), int(row["track_id"]))]
        assert [row[k] for k in ("x", "y", "w", "h", "yaw", "pitch", "roll")] == [
            same[k] for k in ("x", "y", "w", "h", "yaw", "pitch", "roll")
        ]
        np.testing.assert_allclose([float(row[c]) for c in columns], [float(same[c]) for c in columns], atol=1e-5)


def test_a_file_that_is_no_video_gets_its_own_error(cut_run, tiny_repo, tmp_path):
    result, data, _ = cut_run
    fake = next(v for v in data["videos"] if v["file"].endswith("fake.mp4"))
    assert "not a readable video" in fake["error"] and fake["faces"] == 0
    assert f"{fake['file']}: not a readable video" in result.stderr
    assert "1 of 2 file(s) gave no result" in result.stderr
    alone = fer3d_cli(tiny_repo, "predict", fake["file"], "--out", str(tmp_path / "p.json"))
    assert alone.returncode == 1 and "not a readable video" in alone.stderr


def test_max_faces_keeps_the_largest_and_out_dash_writes_here(tiny_repo, clip, smooth_run):
    result = fer3d_cli(tiny_repo, "predict", str(clip), "--max-faces", "1", "--fps", "1", "--out", "-")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_rows(tiny_repo / "clip_faces.csv")  # --out -: the table goes to the current folder
    assert [int(r["frame"]) for r in rows] == list(range(0, FRAMES, FPS))
    box = lambda r: tuple(int(r[k]) for k in ("x", "y", "w", "h"))
    for row in rows:  # the larger of the two faces the full run found in that frame
        both = [box(r) for r in smooth_run[2] if r["frame"] == row["frame"]]
        assert box(row) in both and box(row)[2] * box(row)[3] == max(w * h for _, _, w, h in both)
