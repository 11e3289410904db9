"""`fer3d predict`: photos, folders and videos → per-face emotions of every model and fusion row."""

from __future__ import annotations

import sys

from .options import add_face_options, check_output, device_option, model_names


def add_predict(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict emotions on photos (any size, one or more faces), videos or 48x48 face crops",
        description="Find faces (MediaPipe face detection), frame them like FER2013, cut 48x48 gray crops and "
        "score them with the model files in --models-dir (and the fusion rows of its fusion.json); 3D models "
        "use the crop's FaceMesh landmarks, found as the model file says. Prints a table and writes JSON. "
        "Exit code 1 only when no file gave any result or a requested model file is missing.",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="IMAGE_VIDEO_OR_FOLDER", help="image and/or video files, folders of them"
    )
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated model and/or fusion names (fusion, fusion_2d, fusion_3d); default: every "
        "<name>.pt in --models-dir and every fusion row of its fusion.json",
    )
    p.add_argument("--out", default="predictions.json", help="JSON output (default: predictions.json; '-' for none)")
    add_face_options(
        p,
        "rotate each face so its eyes are level before cropping (default: on; on FER2013 faces "
        "it changes nothing for upright heads and keeps the accuracy of heads tilted up to 35 "
        "degrees, which drops 5 points without it: bench/predict_check.py)",
    )
    p.add_argument(
        "--no-tta",
        dest="tta",
        action="store_false",
        default=None,
        help="no flip averaging (default: as the model was evaluated, from its file)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="faces scored together (default: 64)")
    p.add_argument("--device", default="cpu", type=device_option, help="auto, cpu, cuda or cuda:N (default: cpu)")
    p.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="torch: <name>.pt model files; onnx: the <name>.onnx files of `fer3d export` (onnxruntime, "
        "CPU; --models-dir is then the export folder)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="torch backend's arithmetic: auto scores each model as the evaluate stage did (bf16 on CUDA, and on "
        "CPUs with AMX for models trained in bf16: 1.2-3.3x faster; fp32 otherwise), fp32 answers exactly as "
        "the ONNX export (default: auto)",
    )
    add_video_options(p)
    p.set_defaults(func=cmd_predict)


def add_video_options(p) -> None:
    """Options of `fer3d predict` on video files (fer3d.app.video)."""
    from fer3d.app.video import DEFAULT_FPS, DEFAULT_HALF_LIFE, IOU_THRESHOLD, MAX_MISSED, VIDEO_SUFFIXES

    g = p.add_argument_group(
        "videos",
        f"Video files ({', '.join(VIDEO_SUFFIXES)}, also inside folders) are sampled, their faces found as in photos "
        f"and followed by a greedy IoU tracker (same face: box overlap >= {IOU_THRESHOLD} with the previous sample; "
        f"a face unseen for {MAX_MISSED} sampled frames gets a new id when it comes back). Per video a table with "
        "one row per face per sampled frame: <stem>_faces.csv (and .parquet) beside --out, or in the current "
        "folder with --out -; its summary goes into the JSON's 'videos'.",
    )
    g.add_argument(
        "--fps",
        type=float,
        default=DEFAULT_FPS,
        help=f"frames per second of video to score (default: {DEFAULT_FPS:g}; 0 = every frame)",
    )
    g.add_argument(
        "--max-faces", type=int, default=None, help="score only the K largest faces of each frame (default: all)"
    )
    g.add_argument(
        "--half-life",
        type=float,
        default=DEFAULT_HALF_LIFE,
        help="seconds over which a face's earlier probabilities lose half their weight in its moving average "
        f"(default: {DEFAULT_HALF_LIFE:g}; 0 = no smoothing; a new face starts unsmoothed)",
    )
    g.add_argument(
        "--annotate",
        action="store_true",
        help="also write <stem>_annotated.mp4 (boxes, track ids, emotions) beside the table",
    )
    g.add_argument(
        "--video-out",
        default=None,
        metavar="CSV_OR_FOLDER",
        help="the table's path for one video, or a folder (ending in /) for <stem>_faces.csv of each video",
    )


def cmd_predict(args) -> int:
    import time

    from fer3d.app import predict, video
    from fer3d.app.faces import IMAGE_SUFFIXES, face_finder
    from fer3d.inference import Predictor
    from fer3d.io import save_json

    check_output(args.out)
    inputs, videos = video.split_inputs(args.inputs)
    video_options, tables = _video_setup(args, videos)  # checks --batch-size too
    started = time.perf_counter()
    errors = lambda entry: entry.get("error") and print(f"fer3d predict: {entry['error']}", file=sys.stderr)
    with (
        Predictor.from_dir(
            args.models_dir,
            model_names(args.models),
            device=args.device,
            tta_flip=args.tta,
            backend=args.backend,
            precision=args.precision,
        ) as predictor,
        face_finder(args.crops) as finder,
    ):
        loaded = time.perf_counter() - started
        run = predict.predict_files(
            inputs, predictor, args.crops, args.align, finder, on_file=errors, batch_size=args.batch_size
        )
        clips = video.predict_videos(videos, predictor, finder, video_options, tables, on_video=_video_messages)
    if not run.files and not videos:
        raise FileNotFoundError(
            f"no image or video files in {', '.join(args.inputs)} "
            f"(looked for {', '.join(IMAGE_SUFFIXES + video.VIDEO_SUFFIXES)})"
        )
    if run.files:
        print(predict.table(run.files, predictor.names))
    if any(not c.get("error") for c in clips):
        print(video.table(clips))
    if args.out != "-":
        result = predict.result_json(run, predictor, args.crops, args.align)
        save_json(args.out, {**result, "videos": clips} if videos else result)
        print(f"predictions: {args.out}")
    if run.faces:
        print(
            f"{run.faces} face(s) in {sum(1 for f in run.files if f['faces'])} file(s): "
            f"{run.seconds_per_face:.3f} s per face (loading models and detectors: {loaded:.1f} s)"
        )
    failed, total = sum(1 for f in [*run.files, *clips] if f.get("error")), len(run.files) + len(clips)
    if failed:
        print(f"{failed} of {total} file(s) gave no result (see the messages above)", file=sys.stderr)
    return 0 if run.faces or any(c["faces"] for c in clips) else 1


def _video_setup(args, videos: list):
    """The checked video options and each video's table path (before any model is loaded)."""
    from fer3d.app import video

    if videos and args.crops:
        raise ValueError(f"--crops is for face crops; videos are searched for faces frame by frame: {videos[0]}")
    if args.video_out is not None and not videos:
        raise ValueError(f"--video-out {args.video_out} given but no video among the inputs")
    options = video.VideoOptions(
        args.fps, args.max_faces, args.half_life, args.batch_size, args.align, args.annotate
    ).check()
    tables = video.table_paths(videos, args.video_out, args.out)
    for table in tables.values():
        check_output(str(table), "--video-out" if args.video_out is not None else "--out (beside it: a video's table)")
    return options, tables


def _video_messages(summary: dict) -> None:
    """A video's error, or where it stopped early, on stderr; its speed on stdout."""
    from fer3d.app.video import stop_message

    if summary.get("error"):
        print(f"fer3d predict: {summary['error']}", file=sys.stderr)
        return
    if stop_message(summary):
        print(f"fer3d predict: {stop_message(summary)}", file=sys.stderr)
    rate = summary["frames_sampled"] / summary["seconds"] if summary["seconds"] else 0.0
    print(f"{summary['file']}: {summary['faces']} face row(s), {rate:.1f} sampled frames/s -> {summary['table']}")
