"""The model-free parts of `fer3d predict` on videos: frame sampling, the IoU tracker, the per-track
moving average, where tables go, the table writer and the reader's report of a cut-off file."""

from __future__ import annotations

import csv
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from fer3d.app.faces import InputError
from fer3d.app.video import (
    ConstantRateWriter,
    FrameSampler,
    IouTracker,
    TrackSmoother,
    VideoReader,
    ema_weight,
    iou,
    sample_indices,
    split_inputs,
    table_paths,
    write_table,
)

# ------------------------------------------------------------------ sampling


def test_sampling_keeps_the_first_frame_at_or_after_each_sample_time():
    assert sample_indices(40, 10, 5) == list(range(0, 40, 2))
    assert sample_indices(30, 30, 4) == [0, 8, 15, 23]  # sample times 0, 0.25, 0.5, 0.75 s
    assert sample_indices(10, 25, 0) == list(range(10))  # 0 = every frame
    assert sample_indices(10, 25, 50) == list(range(10))  # faster than the video: every frame


def test_sampling_a_ntsc_video_gives_one_frame_per_sample_time():
    kept = sample_indices(300, 30000 / 1001, 5)  # 10 s at 29.97 fps
    assert len(kept) == 50
    assert set(np.diff(kept)) <= {5, 6}
    for k, index in enumerate(kept):  # the first frame at or after k/5 s
        assert index / (30000 / 1001) >= k / 5 - 1e-9 > (index - 1) / (30000 / 1001)


def test_sampling_by_time_handles_irregular_frame_times():
    sampler = FrameSampler(2)
    times = [0.0, 0.1, 0.45, 0.52, 0.9, 1.3, 1.31, 2.2, 2.9]
    # 2.2 s is the first frame after both 1.5 and 2.0 s: it is kept once, and 2.9 s stands for 2.5 s
    assert [t for t in times if sampler.take(t)] == [0.0, 0.52, 1.3, 2.2, 2.9]


@pytest.mark.parametrize("fps", [-1, float("nan"), float("inf")])
def test_bad_fps_is_refused_naming_the_option(fps):
    with pytest.raises(ValueError, match="--fps must be >= 0"):
        FrameSampler(fps)


# ------------------------------------------------------------------ tracking


def test_iou_of_boxes():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_moving_faces_keep_their_ids_and_a_cut_gives_new_ones():
    tracker = IouTracker()
    for step in range(10):  # two faces moving 10 px per frame in opposite directions
        ids, ended = tracker.update([(100 + 10 * step, 50, 100, 100), (400 - 10 * step, 300, 100, 100)])
        assert ids == [0, 1] and ended == []
    ids, _ = tracker.update([(600, 600, 80, 80), (900, 50, 80, 80)])  # the scene changes
    assert ids == [2, 3]


def test_greedy_matching_takes_the_highest_overlap_first():
    tracker = IouTracker(iou_threshold=0.1)
    tracker.update([(0, 0, 100, 100), (90, 0, 100, 100)])
    # the first box now overlaps track 1 most (IoU 0.82 vs 0.33 with track 0): it takes track 1,
    # and the second box, overlapping only track 0's remainder too little, starts a new track
    ids, _ = tracker.update([(80, 0, 100, 100), (300, 0, 100, 100)])
    assert iou((80, 0, 100, 100), (90, 0, 100, 100)) > iou((80, 0, 100, 100), (0, 0, 100, 100)) >= 0.1
    assert ids == [1, 2]


def test_a_track_survives_missed_frames_until_max_missed():
    tracker = IouTracker(max_missed=3)
    box = (10, 10, 50, 50)
    assert tracker.update([box]) == ([0], [])
    for _ in range(2):  # missed twice: still alive
        assert tracker.update([]) == ([], [])
    assert tracker.update([box]) == ([0], [])  # found again: same id
    endings = [tracker.update([])[1] for _ in range(3)]
    assert endings == [[], [], [0]]  # ends on its 3rd missed frame in a row
    assert tracker.update([box]) == ([1], [])  # a face at the same place later is a new track


def test_tracker_parameters_are_checked():
    with pytest.raises(ValueError, match="iou_threshold"):
        IouTracker(iou_threshold=0)
    with pytest.raises(ValueError, match="max_missed"):
        IouTracker(max_missed=0)


# ------------------------------------------------------------------ smoothing


def test_ema_weight_follows_the_half_life():
    assert ema_weight(0.5, 0.5) == pytest.approx(0.5)
    assert ema_weight(1.0, 0.5) == pytest.approx(0.75)
    assert ema_weight(0.2, 0) == 1  # no smoothing
    assert ema_weight(0.0, 0.5) == 0


def test_a_new_track_starts_unsmoothed_then_averages_by_real_time():
    rng = np.random.default_rng(0)
    raw = [rng.dirichlet(np.ones(7)) for _ in range(4)]
    smoother = TrackSmoother(half_life=0.5)
    first = smoother.smooth(7, 1.0, {"cnn": raw[0]})
    np.testing.assert_array_equal(first["cnn"], raw[0])
    second = smoother.smooth(7, 1.2, {"cnn": raw[1]})
    w = 1 - 0.5 ** (0.2 / 0.5)
    np.testing.assert_allclose(second["cnn"], w * raw[1] + (1 - w) * raw[0])
    # lost for 1 s, then found: the new sample weighs as 1 s of decay says, not as one step
    third = smoother.smooth(7, 2.2, {"cnn": raw[2]})
    np.testing.assert_allclose(third["cnn"], 0.75 * raw[2] + 0.25 * second["cnn"])
    assert third["cnn"].sum() == pytest.approx(1)
    other = smoother.smooth(8, 2.2, {"cnn": raw[3]})  # another track has its own average
    np.testing.assert_array_equal(other["cnn"], raw[3])
    smoother.forget([7])
    np.testing.assert_array_equal(smoother.smooth(7, 2.4, {"cnn": raw[3]})["cnn"], raw[3])


def test_a_3d_models_prior_for_a_face_without_a_mesh_does_not_move_its_average():
    mesh, prior, fused = np.array([0.9, 0.1]), np.array([0.5, 0.5]), np.array([0.8, 0.2])
    smoother = TrackSmoother(half_life=0.5)
    smoother.smooth(1, 0.0, {"landmark_mlp": mesh, "fusion": fused})
    held = smoother.smooth(1, 0.2, {"landmark_mlp": prior, "fusion": fused}, fallback=["landmark_mlp"])
    np.testing.assert_array_equal(held["landmark_mlp"], mesh)  # the average so far, not pulled to the prior
    np.testing.assert_allclose(held["fusion"], fused)  # the others average as always
    # the mesh again 0.4 s after the model's last real answer: its weight counts from there
    again = smoother.smooth(1, 0.4, {"landmark_mlp": np.array([0.1, 0.9]), "fusion": fused})
    w = 1 - 0.5 ** (0.4 / 0.5)
    np.testing.assert_allclose(again["landmark_mlp"], w * np.array([0.1, 0.9]) + (1 - w) * mesh)
    # a track that starts without a mesh shows the prior, and its first mesh answer starts the average
    start = smoother.smooth(2, 0.0, {"landmark_mlp": prior}, fallback=["landmark_mlp"])
    np.testing.assert_array_equal(start["landmark_mlp"], prior)
    np.testing.assert_array_equal(smoother.smooth(2, 0.2, {"landmark_mlp": mesh})["landmark_mlp"], mesh)
    # without smoothing the row is the raw answer, the prior included
    raw = TrackSmoother(half_life=0)
    raw.smooth(3, 0.0, {"landmark_mlp": mesh})
    np.testing.assert_array_equal(
        raw.smooth(3, 0.2, {"landmark_mlp": prior}, fallback=["landmark_mlp"])["landmark_mlp"], prior
    )


def test_no_smoothing_returns_the_raw_probabilities():
    smoother = TrackSmoother(half_life=0)
    a, b = np.full(7, 1 / 7), np.eye(7)[3]
    smoother.smooth(0, 0.0, {"fusion": a})
    np.testing.assert_array_equal(smoother.smooth(0, 0.2, {"fusion": b})["fusion"], b)
    with pytest.raises(ValueError, match="--half-life"):
        TrackSmoother(-1)


# ------------------------------------------------------------------ inputs and outputs


def test_split_inputs_finds_videos_in_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.MP4", "sub/b.webm", "c.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    others, videos = split_inputs([tmp_path, tmp_path / "z.mkv", tmp_path / "c.jpg"])
    assert videos == [tmp_path / "a.MP4", tmp_path / "sub" / "b.webm", tmp_path / "z.mkv"]
    assert others == [str(tmp_path), str(tmp_path / "c.jpg")]


def test_a_video_named_twice_is_read_once_and_annotated_outputs_are_not_inputs(tmp_path):
    for name in ("v.mp4", "v_annotated.mp4", "w.m4v", "w_annotated.mp4", "mine_annotated.mp4", "clip.wmv"):
        (tmp_path / name).write_bytes(b"x")
    _, videos = split_inputs([tmp_path / "v.mp4", tmp_path])
    # v_annotated and w_annotated are --annotate's outputs beside their videos; mine_annotated has no
    # video of its own, so it is the user's; .m4v and .wmv are videos OpenCV reads
    assert videos == [tmp_path / n for n in ("v.mp4", "clip.wmv", "mine_annotated.mp4", "w.m4v")]
    _, named = split_inputs([tmp_path / "v_annotated.mp4"])  # given by name, it is read
    assert named == [tmp_path / "v_annotated.mp4"]


def test_tables_go_beside_the_json_or_where_video_out_says(tmp_path):
    a, b = tmp_path / "x" / "a.mp4", tmp_path / "y" / "b.avi"
    assert table_paths([a, b], None, str(tmp_path / "out" / "p.json")) == {
        a: tmp_path / "out" / "a_faces.csv",
        b: tmp_path / "out" / "b_faces.csv",
    }
    assert table_paths([a], None, "-")[a].resolve() == (tmp_path.cwd() / "a_faces.csv").resolve()
    assert table_paths([a], str(tmp_path / "t.csv"), "p.json") == {a: tmp_path / "t.csv"}
    assert table_paths([a, b], f"{tmp_path}/tables/", "p.json")[b] == tmp_path / "tables" / "b_faces.csv"
    with pytest.raises(ValueError, match="one file but 2 videos"):
        table_paths([a, b], str(tmp_path / "t.csv"), "p.json")
    with pytest.raises(ValueError, match="expected a .csv"):
        table_paths([a], str(tmp_path / "t.json"), "p.json")
    with pytest.raises(ValueError, match="would both write"):
        table_paths([a, tmp_path / "a.mkv"], None, "p.json")


def test_table_is_written_as_csv_and_parquet_without_temp_files(tmp_path):
    import pyarrow.parquet as pq

    names = ["file", "time_s", "frame", "track_id", "x", "y", "w", "h", "detection_score", "yaw", "pitch", "roll"]
    names += ["mesh_found", "cnn_emotion", "cnn_happy"]
    rows = [
        dict(zip(names, ["v.mp4", 0.0, 0, 0, 1, 2, 30, 30, 0.9, None, None, None, None, "happy", 0.8])),
        dict(zip(names, ["v.mp4", 0.2, 2, 0, 3, 2, 30, 30, 0.8, 1.5, -2.0, 0.5, True, "sad", 0.1])),
    ]
    written = write_table(rows, names, tmp_path / "v_faces.csv")
    assert written == [tmp_path / "v_faces.csv", tmp_path / "v_faces.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v_faces.csv", "v_faces.parquet"]
    with open(written[0], newline="") as f:
        back = list(csv.DictReader(f))
    assert [r["frame"] for r in back] == ["0", "2"] and back[0]["yaw"] == "" and back[1]["yaw"] == "1.5"
    table = pq.read_table(written[1]).to_pylist()
    assert table[0]["yaw"] is None and table[1]["mesh_found"] is True and table[1]["cnn_happy"] == 0.1


def test_a_parquet_that_fails_to_write_leaves_no_older_one_beside_the_new_csv(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    names = ["file", "frame"]
    write_table([{"file": "v.mp4", "frame": 0}], names, tmp_path / "v_faces.csv")  # an earlier run

    def broken(*_, **__):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table([{"file": "v.mp4", "frame": 5}], names, tmp_path / "v_faces.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v_faces.csv"]  # the new CSV alone, no temp file
    assert "5" in (tmp_path / "v_faces.csv").read_text()


# ------------------------------------------------------------------ reading


def _write_video(path, n: int, fps: float = 10.0):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (96, 64))
    for i in range(n):
        frame = np.full((64, 96, 3), 4 * i, np.uint8)
        cv2.putText(frame, str(i), (10, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()


def test_reader_reports_where_a_cut_off_video_stops(tmp_path):
    whole, cut = tmp_path / "whole.avi", tmp_path / "cut.avi"
    _write_video(whole, 30)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    reader = VideoReader(whole)
    times = [t for _, t, _ in reader.frames()]
    assert (reader.read, reader.stop, reader.fps, reader.size) == (30, None, 10.0, (96, 64))
    assert times == pytest.approx([i / 10 for i in range(30)])
    reader = VideoReader(cut)
    indices = [i for i, _, _ in reader.frames()]
    assert 0 < reader.read < 30 and indices == list(range(reader.read))
    assert (reader.stop.frame, reader.stop.expected_frames) == (reader.read, 30)
    assert math.isclose(reader.stop.time_s, reader.read / 10)


def _box_chain(data: bytes, names: list[bytes], start: int = 0, end: int | None = None) -> list[int]:
    """Offsets of the nested MP4 boxes `names` (moov, trak, ...), outermost first."""
    end = len(data) if end is None else end
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        if kind == names[0]:
            inner = _box_chain(data, names[1:], start + 8, start + size) if len(names) > 1 else []
            return [start, *inner]
        start += size
    raise KeyError(names[0])


def _make_variable_rate(cfr: Path, vfr: Path, slow_after: int, slow_factor: int) -> None:
    """Rewrite an OpenCV MP4 (its index after the frames) so frames from `slow_after` on last
    `slow_factor` times as long: the sample-duration table (stts) gets two runs and its parent boxes
    grow by one entry; the edit list, which would cut the stream at the old length, is dropped."""
    data = bytearray(cfr.read_bytes())
    chain = _box_chain(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stts"])
    stts = chain[-1]
    size, _, _, n_runs, count, delta = struct.unpack(">I4sIIII", data[stts : stts + 24])
    assert n_runs == 1 and size == 24  # one constant run, as OpenCV writes it
    runs = [(slow_after, delta), (count - slow_after, slow_factor * delta)]
    table = struct.pack(">I4sII", 16 + 8 * len(runs), b"stts", 0, len(runs)) + b"".join(
        struct.pack(">II", *run) for run in runs
    )
    data[stts : stts + size] = table
    for parent in chain[:-1]:
        struct.pack_into(">I", data, parent, struct.unpack_from(">I", data, parent)[0] + len(table) - size)
    moov, trak = chain[:2]
    edts = _box_chain(data, [b"edts"], trak + 8, trak + struct.unpack_from(">I", data, trak)[0])[0]
    edts_size = struct.unpack_from(">I", data, edts)[0]
    del data[edts : edts + edts_size]
    for parent in (moov, trak):
        struct.pack_into(">I", data, parent, struct.unpack_from(">I", data, parent)[0] - edts_size)
    vfr.write_bytes(bytes(data))


def test_a_variable_rate_video_is_timed_and_sampled_on_its_own_clock(tmp_path):
    """Ten frames at 10 fps, then twenty at 3.3 fps (a phone slowing its rate in the dark): the header
    rate is the average (30 frames in 7 s), so frame number / rate would put frame 10 at 2.33 s."""
    import cv2

    cfr, vfr = tmp_path / "constant.mp4", tmp_path / "variable.mp4"
    writer = cv2.VideoWriter(str(cfr), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for i in range(30):
        writer.write(np.full((64, 96, 3), 8 * i, np.uint8))
    writer.release()
    _make_variable_rate(cfr, vfr, slow_after=10, slow_factor=3)
    reader = VideoReader(vfr)
    frames = list(reader.frames())
    assert reader.fps == pytest.approx(30 / 7) and reader.read == 30 and reader.stop is None
    assert [t for _, t, _ in frames] == pytest.approx([i / 10 for i in range(10)] + [1 + 0.3 * i for i in range(20)])
    assert [round(image.mean() / 8) for _, _, image in frames] == list(range(30))  # every frame, in order
    sampler = FrameSampler(2)  # the first frame at or after 0, 0.5, 1.0, 1.5, 2.0, 2.5 s
    assert [i for i, t, _ in frames if sampler.take(t)][:6] == [0, 5, 10, 12, 14, 15]
    constant = VideoReader(cfr)
    assert [t for _, t, _ in constant.frames()] == pytest.approx([i / 10 for i in range(30)])


class _ListWriter:
    def __init__(self):
        self.frames, self.released = [], False

    def write(self, image):
        self.frames.append(image)

    def release(self):
        self.released = True


def test_constant_rate_writer_holds_a_frame_until_the_next_ones_time():
    """At 5 frames/s (output frame n at 1.0 + n/5 s): b, 0.6 s before the next frame, is shown three
    times; d falls between output frames 4 (1.8 s: c) and 5 (2.0 s: e) and is never shown; release
    writes the frame held last."""
    out = _ListWriter()
    writer = ConstantRateWriter(out, 5)
    for name, time_s in [("a", 1.0), ("b", 1.2), ("c", 1.8), ("d", 1.85), ("e", 2.0)]:
        writer.write(name, time_s)
    assert out.frames == ["a", "b", "b", "b", "c"] and not out.released
    writer.release()
    assert out.frames == ["a", "b", "b", "b", "c", "e"] and out.released
    # arithmetic frame times (i / 30 sampled at 10) neither drop nor repeat a frame
    out = _ListWriter()
    writer = ConstantRateWriter(out, 10)
    for i in range(0, 90, 3):
        writer.write(i, i / 30)
    writer.release()
    assert out.frames == list(range(0, 90, 3))


def test_an_annotated_variable_rate_video_plays_on_the_sources_clock(tmp_path):
    """The variable-rate file below (ten frames at 10 fps, then twenty at 3.3 fps) written at a
    constant 10 fps: output frame n shows the last source frame at or before n / 10 s, so the
    6.7 s the source lasts play in 6.8 s, not in the 3 s of one output frame per source frame."""
    import cv2

    cfr, vfr, out = tmp_path / "constant.mp4", tmp_path / "variable.mp4", tmp_path / "out.mp4"
    writer = cv2.VideoWriter(str(cfr), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for i in range(30):
        writer.write(np.full((64, 96, 3), 8 * i, np.uint8))
    writer.release()
    _make_variable_rate(cfr, vfr, slow_after=10, slow_factor=3)
    frames = list(VideoReader(vfr).frames())
    indices = _ListWriter()  # which source frame each output frame shows (mp4v blurs 8-level steps)
    timed = ConstantRateWriter(indices, 10)
    for index, time_s, _ in frames:
        timed.write(index, time_s)
    timed.release()
    times = [i / 10 for i in range(10)] + [1 + 0.3 * i for i in range(20)]
    assert indices.frames == [max(i for i, t in enumerate(times) if t <= n / 10 + 1e-9) for n in range(68)]
    timed = ConstantRateWriter(cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64)), 10)
    for _, time_s, image in frames:
        timed.write(image, time_s)
    timed.release()
    written = VideoReader(out)
    assert (written.fps, written.frame_count, len(list(written.frames()))) == (10, 68, 68)


def test_a_file_that_is_not_a_video_is_an_input_error_naming_it(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError, match=f"{fake}: not a readable video"):
        list(VideoReader(fake).frames())
    with pytest.raises(InputError, match="no such file"):
        VideoReader(tmp_path / "absent.avi")
