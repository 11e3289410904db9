"""`fer3d predict` on videos: the faces of sampled frames, followed from frame to frame, with their
emotions smoothed per face over time, as a table with one row per face per sampled frame.

A frame is sampled `fps` times a second of video time (FrameSampler); its faces are found and cut
exactly as in photos (fer3d.app.faces: FaceFinder + crop_face) and linked into tracks by IouTracker
(greedy, by box overlap). The faces of several sampled frames go through the models together
(`batch_size` at a time), and each track's probabilities are smoothed by TrackSmoother, an
exponential moving average with a half-life in seconds. The pure parts (sampler, tracker,
smoother) need no models and are tested on their own (tests/unit/test_video_parts.py)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..face3d.pose import POSE_NAMES
from .faces import IMAGE_SUFFIXES, Face, FaceFinder, InputError, crop_face

if TYPE_CHECKING:  # torch is imported only when a command runs, so that `fer3d --help` stays fast
    from ..inference import Predictor

# what OpenCV's FFmpeg reads here (checked by writing and reading each); not .ts, TypeScript's suffix too
VIDEO_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".mov",
    ".avi",
    ".webm",
    ".mkv",
    ".mpg",
    ".mpeg",
    ".3gp",
    ".wmv",
    ".mts",
    ".m2ts",
    ".flv",
)
DEFAULT_FPS = 5.0
DEFAULT_HALF_LIFE = 0.5  # seconds: a face's expression still changes within a second, jitter is smoothed
# A face moving at half its width per second keeps IoU ~0.8 between samples 0.2 s apart; 0.3 still
# links a fast head turn, while two different people's boxes rarely overlap that much.
IOU_THRESHOLD = 0.3
# Sampled frames a track survives unmatched (1 s at the default 5 fps): a face the detector misses
# for a frame or two, or that someone walks in front of, keeps its id.
MAX_MISSED = 5
TIME_EPS = 1e-6  # s·fps: frame times i/fps that land on a sample time by arithmetic, not exactly


def split_inputs(paths: Iterable[str | Path]) -> tuple[list[str], list[Path]]:
    """(everything for the photo path, the videos): video files given by name, and those inside
    folders (recursively, sorted); folders stay in the first list for their images. A video named
    twice (by name and in a folder) is read once; in a folder, `<stem>_annotated.mp4` beside a video
    `<stem>.*` is this command's own output (--annotate) and is not read again."""
    others: list[str] = []
    videos: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            others.append(str(p))
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
            videos += [f for f in found if not _annotated_output(f)]
        elif p.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(p)
        else:
            others.append(str(p))
    first: dict[Path, Path] = {}  # each file once, as first named
    for video in videos:
        first.setdefault(video.resolve(), video)
    return others, list(first.values())


def _annotated_output(path: Path) -> bool:
    if not path.stem.endswith("_annotated") or path.suffix.lower() != ".mp4":
        return False
    stem = path.stem.removesuffix("_annotated")
    return any(f.suffix.lower() in VIDEO_SUFFIXES for f in path.parent.glob(f"{glob.escape(stem)}.*"))


# ------------------------------------------------------------------------------ frame sampling


class FrameSampler:
    """Keeps the first frame at or after each sample time k/fps (k = 0, 1, ...); fps 0 keeps every
    frame. Works on the frame times it is given: VideoReader's are the container's time stamps, so
    a variable-rate file (a phone's) is sampled on its own clock."""

    def __init__(self, fps: float):
        if fps < 0 or not math.isfinite(fps):
            raise ValueError(f"--fps must be >= 0 (0 = every frame), found {fps}")
        self.fps = fps
        self.next_sample = 0

    def take(self, time_s: float) -> bool:
        if self.fps == 0:
            return True
        position = time_s * self.fps + TIME_EPS
        if position < self.next_sample:
            return False
        self.next_sample = math.floor(position) + 1
        return True


def sample_indices(n_frames: int, video_fps: float, fps: float) -> list[int]:
    """Indices of the frames FrameSampler keeps in a constant-rate video."""
    sampler = FrameSampler(fps)
    return [i for i in range(n_frames) if sampler.take(i / video_fps)]


class ConstantRateWriter:
    """Writes frames shown at given times to a constant-rate writer (an MP4 has one rate): output
    frame n shows the last frame at or before n/rate, so a frame is held until the next one's time
    (written again across a gap, as a variable-rate phone video's slow stretch) and dropped when the
    next one falls in the same output frame. Each frame waits for the next one's time; `release`
    writes the last."""

    def __init__(self, writer, rate: float):
        self.writer = writer
        self.rate = rate
        self.held: np.ndarray | None = None
        self.slot = 0  # output frames written so far, counted from the first frame's time
        self.start = 0.0

    def _slot_of(self, time_s: float) -> int:
        """The first output frame at or after time_s."""
        return math.ceil((time_s - self.start) * self.rate - TIME_EPS)

    def write(self, image: np.ndarray, time_s: float) -> None:
        if self.held is None:
            self.start = time_s
        else:
            for _ in range(self._slot_of(time_s) - self.slot):
                self.writer.write(self.held)
                self.slot += 1
        self.held = image

    def release(self) -> None:
        if self.held is not None:
            self.writer.write(self.held)
            self.held = None
        self.writer.release()


# ------------------------------------------------------------------------------ tracking


def iou(a: Iterable[float], b: Iterable[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: tuple[float, float, float, float]
    missed: int = 0


class IouTracker:
    """Greedy IoU tracker: each frame's boxes are matched to the live tracks by highest IoU first
    (a pair only when IoU >= iou_threshold, each track and box used once); an unmatched box starts
    a track with a new id (ids count up from 0 and are never reused); a track ends once it has gone
    unmatched for `max_missed` sampled frames in a row. Boxes only, no appearance: after a scene
    cut, faces at other places get new ids, but a new face where an old one was inherits its id."""

    def __init__(self, iou_threshold: float = IOU_THRESHOLD, max_missed: int = MAX_MISSED):
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold must be in (0, 1], found {iou_threshold}")
        if max_missed < 1:
            raise ValueError(f"max_missed must be >= 1, found {max_missed}")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: dict[int, Track] = {}
        self.next_id = 0

    def update(self, boxes: list) -> tuple[list[int], list[int]]:
        """Track ids of `boxes` (in their order), and the ids of the tracks that ended now."""
        pairs = sorted(
            ((iou(t.box, b), t.id, j) for t in self.tracks.values() for j, b in enumerate(boxes)),
            key=lambda p: (-p[0], p[1], p[2]),
        )
        ids: list[int | None] = [None] * len(boxes)
        matched: set[int] = set()
        for overlap, track_id, j in pairs:
            if overlap < self.iou_threshold:
                break
            if track_id not in matched and ids[j] is None:
                ids[j] = track_id
                matched.add(track_id)
        for j, box in enumerate(boxes):
            if ids[j] is None:
                ids[j] = self.next_id
                self.tracks[self.next_id] = Track(self.next_id, tuple(box))
                matched.add(self.next_id)
                self.next_id += 1
            else:
                self.tracks[ids[j]].box, self.tracks[ids[j]].missed = tuple(box), 0
        ended = []
        for track in list(self.tracks.values()):
            if track.id not in matched:
                track.missed += 1
                if track.missed >= self.max_missed:
                    ended.append(track.id)
                    del self.tracks[track.id]
        return ids, ended


# ------------------------------------------------------------------------------ smoothing


def ema_weight(dt: float, half_life: float) -> float:
    """Weight of a new sample `dt` seconds after the previous one: the old average's weight halves
    every `half_life` seconds, whatever the sampling rate (and across frames a track was lost in)."""
    if half_life <= 0:
        return 1.0
    return 1.0 - 0.5 ** (max(dt, 0.0) / half_life)


class TrackSmoother:
    """Per track, an exponential moving average of every model's and fusion row's probabilities; a
    new track starts from its first probabilities unchanged. A 3D model's answer for a face without
    a mesh is its training class prior, which says nothing about this face: named in `fallback`, it
    neither moves that model's average nor starts one (the row shows the average so far, or the
    prior when there is none yet). Each model's average weighs by the time since its own last update."""

    def __init__(self, half_life: float = DEFAULT_HALF_LIFE):
        if half_life < 0 or not math.isfinite(half_life):
            raise ValueError(f"--half-life must be >= 0 seconds (0 = no smoothing), found {half_life}")
        self.half_life = half_life
        self.state: dict[int, dict[str, tuple[float, np.ndarray]]] = {}

    def smooth(
        self, track_id: int, time_s: float, probas: dict[str, np.ndarray], fallback: Iterable[str] = ()
    ) -> dict[str, np.ndarray]:
        track = self.state.setdefault(track_id, {})
        fallback = set(fallback) if self.half_life > 0 else set()  # 0 = the raw answers, priors included
        out = {}
        for name, p in probas.items():
            p = np.asarray(p, np.float64)
            previous = track.get(name)
            if name in fallback:
                out[name] = previous[1] if previous is not None else p
                continue
            if previous is not None:
                w = ema_weight(time_s - previous[0], self.half_life)
                p = w * p + (1 - w) * previous[1]
            track[name] = (time_s, p)
            out[name] = p
        return out

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self.state.pop(track_id, None)


# ------------------------------------------------------------------------------ reading videos


@dataclass
class Stop:
    """Where reading ended early: the first frame that could not be decoded."""

    frame: int
    time_s: float
    expected_frames: int


class VideoReader:
    """Frames of a video file (OpenCV's FFmpeg backend), with the header's frame rate and count;
    after iterating, `read` says how many frames decoded and `stop` where a damaged or cut file
    ended before its header's frame count."""

    def __init__(self, path: Path):
        import cv2

        if not path.exists():
            raise InputError(f"{path}: no such file")
        self.path = path
        self.capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self.capture.isOpened():
            raise InputError(f"{path}: {_NOT_A_VIDEO}")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps > 0 and math.isfinite(fps) else 0.0  # 0: times from the stream instead
        self.frame_count = max(0, int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.size = (int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.read = 0
        self.stop: Stop | None = None
        self.last_time = -math.inf  # of the frame read last

    def frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, time in seconds, BGR image) of every frame that decodes, in order."""
        import cv2

        while True:
            try:
                ok, image = self.capture.read()
            except cv2.error:  # some damaged streams raise instead of returning False
                ok, image = False, None
            if not ok:
                break
            index = self.read
            self.read += 1
            self.last_time = self._time_of_frame_read()
            yield index, self.last_time, image
        if self.read == 0:
            raise InputError(f"{self.path}: {_NOT_A_VIDEO}")
        if self.read < self.frame_count:
            self.stop = Stop(self.read, round(self._after(self.last_time), 4), self.frame_count)

    def _time_of_frame_read(self) -> float:
        """The container's time stamp of the frame just read (phones write variable-rate files, where
        frame number / header rate drifts by seconds); where a stream has none, or one that does not
        move forward, one header frame after the previous frame's time."""
        import cv2

        stamp = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        first = self.last_time == -math.inf
        if math.isfinite(stamp) and stamp >= 0 and (first or stamp > self.last_time):
            return stamp
        return self._after(self.last_time)

    def _after(self, time_s: float) -> float:
        if time_s == -math.inf:
            return 0.0
        return time_s + (1 / self.fps if self.fps else 0.0)

    def close(self) -> None:
        self.capture.release()


_NOT_A_VIDEO = (
    "not a readable video (OpenCV/FFmpeg could not open it or decode a single frame; expected one of "
    f"{', '.join(VIDEO_SUFFIXES)}, or an image: {', '.join(IMAGE_SUFFIXES)}). An MP4 cut off before its "
    "index (written last by many recorders) cannot be opened at all"
)


# ------------------------------------------------------------------------------ one video


@dataclass
class VideoOptions:
    fps: float = DEFAULT_FPS
    max_faces: int | None = None
    half_life: float = DEFAULT_HALF_LIFE
    batch_size: int = 64
    align: bool = True
    annotate: bool = False
    iou_threshold: float = IOU_THRESHOLD
    max_missed: int = MAX_MISSED

    def check(self) -> VideoOptions:
        """ValueError naming the option when one is out of range (the parts check their own)."""
        FrameSampler(self.fps)
        TrackSmoother(self.half_life)
        IouTracker(self.iou_threshold, self.max_missed)
        if self.max_faces is not None and self.max_faces < 1:
            raise ValueError(f"--max-faces must be >= 1, found {self.max_faces}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, found {self.batch_size}")
        return self


@dataclass
class _Sample:
    index: int
    time_s: float
    faces: list[Face]
    ids: list[int]
    ended: list[int]
    image: np.ndarray | None  # kept only for the annotated video


@dataclass
class _Clip:
    """The work of one video: tracker and smoother state, rows so far, samples awaiting scoring."""

    path: Path
    predictor: Predictor
    options: VideoOptions
    tracker: IouTracker
    smoother: TrackSmoother
    writer: ConstantRateWriter | None = None  # of the annotated video
    rows: list[dict] = field(default_factory=list)
    pending: list[_Sample] = field(default_factory=list)
    sampled: int = 0

    def add(self, sample: _Sample) -> None:
        self.pending.append(sample)
        self.sampled += 1
        waiting = sum(len(s.faces) for s in self.pending)
        if waiting >= self.options.batch_size or len(self.pending) >= self.options.batch_size:
            self.flush()

    def flush(self) -> None:
        """Score the pending samples' faces in one batch; rows (and annotated frames) in frame order."""
        from .predict import head_poses  # the photo path's head pose (torch-free imports above)

        faces = [f for s in self.pending for f in s.faces]
        scores = self.predictor.predict_proba(np.stack([f.crop for f in faces])) if faces else None
        poses = head_poses(self.predictor, faces, scores.points, scores.has_mesh) if faces else []
        models_3d = [name for name, c in self.predictor.classifiers.items() if c.family == "3d"]
        i = 0
        for sample in self.pending:
            labels = []
            for face, track_id in zip(sample.faces, sample.ids):
                raw = {name: p[i] for name, p in scores.probas.items()}
                prior_only = models_3d if scores.has_mesh is not None and not scores.has_mesh[i] else ()
                smoothed = self.smoother.smooth(track_id, sample.time_s, raw, fallback=prior_only)
                row = _row(self, sample, face, track_id, smoothed, scores.has_mesh, poses, i)
                self.rows.append(row)
                labels.append(_label(self.predictor, row, track_id))
                i += 1
            self.smoother.forget(sample.ended)
            if self.writer is not None:
                boxes = [f.box for f in sample.faces]
                self.writer.write(annotate(sample.image, boxes, sample.ids, labels), sample.time_s)
        self.pending.clear()


def _row(clip: _Clip, sample: _Sample, face: Face, track_id: int, probas: dict, has_mesh, poses, i: int) -> dict:
    x, y, w, h = face.box
    row = {
        "file": str(clip.path),
        "time_s": round(sample.time_s, 4),
        "frame": sample.index,
        "track_id": track_id,
        "x": x,
        "y": y,
        "w": w,
        "h": h,
        "detection_score": face.score,
    }
    row.update({angle: poses[i][angle] if poses[i] else None for angle in POSE_NAMES})
    row["mesh_found"] = bool(has_mesh[i]) if clip.predictor.needs_mesh else None
    classes = clip.predictor.classes
    for name, p in probas.items():
        row[f"{name}_emotion"] = classes[int(np.argmax(p))]
        row.update({f"{name}_{c}": round(float(v), 6) for c, v in zip(classes, p)})
    return row


def columns(predictor: Predictor) -> list[str]:
    head = ["file", "time_s", "frame", "track_id", "x", "y", "w", "h", "detection_score", *POSE_NAMES, "mesh_found"]
    for name in predictor.names:
        head += [f"{name}_emotion", *(f"{name}_{c}" for c in predictor.classes)]
    return head


def shown_model(predictor: Predictor) -> str:
    """The row drawn on annotated frames and summarised on stdout: the fusion of all models when
    there, else the first fusion row, else the first model."""
    names = predictor.names
    return "fusion" if "fusion" in names else next(iter(predictor.fusions), names[0])


def _label(predictor: Predictor, row: dict, track_id: int) -> str:
    name = shown_model(predictor)
    emotion = row[f"{name}_emotion"]
    return f"#{track_id} {emotion} {row[f'{name}_{emotion}']:.2f}"


def annotate(image: np.ndarray, boxes: list, ids: list[int], labels: list[str]) -> np.ndarray:
    """A copy of the frame with each face's box and label, one colour per track id."""
    import cv2

    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    scale = max(0.4, min(out.shape[:2]) / 800)
    for (x, y, w, h), track_id, label in zip(boxes, ids, labels):
        colour = _PALETTE[track_id % len(_PALETTE)]
        thickness = max(1, round(2 * scale))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(y - th - base - 2, 0)
        cv2.rectangle(out, (x, top), (x + tw + 2, top + th + base + 2), colour, -1)
        cv2.putText(out, label, (x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)
    return out


_PALETTE = [(66, 135, 245), (80, 200, 120), (245, 166, 35), (200, 90, 220), (60, 210, 230), (240, 80, 80)]


# ------------------------------------------------------------------------------ the run


def predict_video(path: Path, predictor: Predictor, finder: FaceFinder, options: VideoOptions, table: Path) -> dict:
    """Read, sample, track, score and smooth one video; write its table (CSV + Parquet) and, with
    options.annotate, `<stem>_annotated.mp4` beside it. The summary for the JSON; InputError when
    the file is not a video."""
    started = time.perf_counter()
    reader = VideoReader(path)
    tracker = IouTracker(options.iou_threshold, options.max_missed)
    clip = _Clip(path, predictor, options, tracker, TrackSmoother(options.half_life))
    annotated = table.with_name(f"{path.stem}_annotated.mp4") if options.annotate else None
    try:
        with contextlib.ExitStack() as stack:
            if annotated is not None:
                clip.writer = _open_writer(stack, annotated, reader, options.fps)
            _read_frames(clip, reader, finder)
            clip.flush()
            if clip.writer is not None:
                clip.writer.release()
            if not clip.rows:  # raised inside the stack: the annotated video's temp file is removed
                raise InputError(f"{path}: no face found in any of its {clip.sampled} sampled frames")
        written = write_table(clip.rows, columns(predictor), table)
    finally:
        reader.close()
    return _summary(clip, reader, written, annotated, time.perf_counter() - started)


def _read_frames(clip: _Clip, reader: VideoReader, finder: FaceFinder) -> None:
    from tqdm import tqdm

    from .. import show_progress

    sampler = FrameSampler(clip.options.fps)
    quiet = not (show_progress() and sys.stderr.isatty())
    bar = tqdm(total=reader.frame_count or None, unit="frame", desc=clip.path.name, disable=quiet, leave=False)
    with bar:
        for index, time_s, image in reader.frames():
            bar.update()
            if not sampler.take(time_s):
                continue
            detections = finder.find(image)
            if clip.options.max_faces is not None:
                detections = sorted(detections, key=lambda d: -d.box[2] * d.box[3])[: clip.options.max_faces]
                detections.sort(key=lambda d: (d.box[0], d.box[1]))
            faces = [crop_face(image, d, clip.options.align) for d in detections]
            ids, ended = clip.tracker.update([f.box for f in faces])
            keep = image if clip.writer is not None else None
            clip.add(_Sample(index, time_s, faces, ids, ended, keep))


def _open_writer(stack: contextlib.ExitStack, target: Path, reader: VideoReader, fps: float):
    import cv2

    from ..io import atomic_path

    tmp = stack.enter_context(atomic_path(target, suffix=".mp4"))
    rate = min(fps, reader.fps) if fps and reader.fps else (reader.fps or fps or DEFAULT_FPS)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), rate, reader.size)
    if not writer.isOpened():
        raise OSError(f"{target}: OpenCV could not open an MP4 ('mp4v') writer of {reader.size} at {rate} fps")
    stack.callback(writer.release)  # on an error; ConstantRateWriter.release writes the held frame first
    return ConstantRateWriter(writer, rate)


def _summary(clip: _Clip, reader: VideoReader, written: list[Path], annotated: Path | None, seconds: float) -> dict:
    duration = reader.frame_count / reader.fps if reader.fps else None
    return {
        "file": str(clip.path),
        "frames_read": reader.read,
        "frames_sampled": clip.sampled,
        "faces": len(clip.rows),
        "tracks": len({r["track_id"] for r in clip.rows}),
        "fps": round(reader.fps, 4),
        "sample_fps": clip.options.fps,
        "duration_s": round(duration, 4) if duration is not None else None,
        "size": list(reader.size),
        "half_life_s": clip.options.half_life,
        "table": str(written[0]),
        "parquet": str(written[1]) if len(written) > 1 else None,
        "annotated": str(annotated) if annotated is not None else None,
        "stopped": None if reader.stop is None else dataclasses.asdict(reader.stop),
        "seconds": round(seconds, 3),
        "emotions": _emotion_counts(clip),
    }


def _emotion_counts(clip: _Clip) -> dict:
    """How many rows the shown model (see shown_model) gives each emotion, most frequent first."""
    name = shown_model(clip.predictor)
    counts: dict[str, int] = {}
    for row in clip.rows:
        counts[row[f"{name}_emotion"]] = counts.get(row[f"{name}_emotion"], 0) + 1
    return {"model": name, "rows": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}


def stop_message(summary: dict) -> str | None:
    stop = summary.get("stopped")
    if not stop:
        return None
    return (
        f"{summary['file']}: the video stops at frame {stop['frame']} ({stop['time_s']:.2f} s) of the "
        f"{stop['expected_frames']} its header announces: the rest could not be decoded (cut off or damaged); "
        f"kept the {summary['faces']} row(s) before it"
    )


def predict_videos(
    paths: list[Path],
    predictor: Predictor,
    finder: FaceFinder,
    options: VideoOptions,
    tables: dict[Path, Path],
    on_video: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Each video → its summary, or {"file", "error"} when it is no video or has no face."""
    out = []
    for path in paths:
        try:
            summary = predict_video(path, predictor, finder, options, tables[path])
        except InputError as e:
            summary = {"file": str(path), "error": str(e), "faces": 0}
        out.append(summary)
        if on_video:
            on_video(summary)
    return out


def table_paths(videos: list[Path], video_out: str | None, json_out: str) -> dict[Path, Path]:
    """Where each video's table goes: --video-out (a .csv file for one video, or a folder), else
    <stem>_faces.csv beside the JSON (in the current folder when --out is '-')."""
    if video_out is not None and not (Path(video_out).is_dir() or video_out.endswith(("/", "\\"))):
        if Path(video_out).suffix.lower() != ".csv":
            raise ValueError(f"--video-out {video_out}: expected a .csv file name or a folder (ending in /)")
        if len(videos) > 1:
            raise ValueError(f"--video-out {video_out} is one file but {len(videos)} videos were given; give a folder")
        return {videos[0]: Path(video_out)} if videos else {}
    folder = Path(video_out) if video_out is not None else Path(json_out).parent if json_out != "-" else Path()
    tables = {v: folder / f"{v.stem}_faces.csv" for v in videos}
    seen: dict[Path, Path] = {}
    for video, table in tables.items():
        if table in seen:
            raise ValueError(f"{seen[table]} and {video} would both write {table}; give them different names")
        seen[table] = video
    return tables


# ------------------------------------------------------------------------------ output


def write_table(rows: list[dict], names: list[str], target: Path) -> list[Path]:
    """The rows as CSV at `target` and, when pyarrow imports, as Parquet beside it (same stem);
    both written through a temp file and a rename."""
    from ..io import atomic_path

    with atomic_path(target, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    parquet = target.with_suffix(".parquet")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        parquet.unlink(missing_ok=True)  # an older run's Parquet must not sit beside this CSV
        return [target]
    table = pa.Table.from_pylist(rows, schema=_schema(pa, rows, names))
    try:
        with atomic_path(parquet, suffix=".parquet") as tmp:
            pq.write_table(table, tmp)
    except BaseException:
        parquet.unlink(missing_ok=True)  # likewise when writing it fails
        raise
    return [target, parquet]


def _schema(pa, rows: list[dict], names: list[str]):
    """Typed columns: pose angles stay float and mesh_found bool even when every value is empty."""
    fixed = {"file": pa.string(), "time_s": pa.float64(), "yaw": pa.float64(), "pitch": pa.float64()}
    fixed |= {"roll": pa.float64(), "detection_score": pa.float64(), "mesh_found": pa.bool_()}
    types = []
    for name in names:
        if name in fixed:
            types.append(pa.field(name, fixed[name]))
        elif name.endswith("_emotion"):
            types.append(pa.field(name, pa.string()))
        elif name in ("frame", "track_id", "x", "y", "w", "h"):
            types.append(pa.field(name, pa.int64()))
        else:
            types.append(pa.field(name, pa.float64()))
    return pa.schema(types)


def table(summaries: list[dict]) -> str:
    """One line per video: frames, faces, tracks, most frequent emotions, where the table went."""
    head = ["video", "frames", "sampled", "faces", "tracks", "emotions", "table"]
    rows = []
    for s in summaries:
        if s.get("error"):
            continue
        top = ", ".join(f"{k} {v / s['faces']:.0%}" for k, v in list(s["emotions"]["rows"].items())[:3])
        frames = f"{s['frames_read']}" + (f" (stopped at {s['stopped']['time_s']:.2f} s)" if s["stopped"] else "")
        cells = [s["file"], frames, str(s["frames_sampled"]), str(s["faces"]), str(s["tracks"])]
        rows.append([*cells, f"{s['emotions']['model']}: {top}", s["table"]])
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])
