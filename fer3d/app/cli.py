"""The `fer3d` command.

Adding a subcommand: write `add_<name>(subparsers)`, which creates its parser and sets
`func=<function taking the parsed args>` with `set_defaults`, and list it in COMMANDS at the bottom.
Import heavy modules (torch, mlflow, dvc) inside the command function so `fer3d --help` stays fast.
A command reports a user mistake by raising one of USER_ERRORS: main prints `fer3d <cmd>: error:
<message>` and exits 1 (FER3D_DEBUG=1 shows the traceback instead). Commands return an exit code.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fer3d import __version__

# Exceptions whose message is the whole story (ParamError, RemoteSetupError, ... are ValueErrors).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


# -- remote ---------------------------------------------------------------------------------------
def add_remote(subparsers) -> None:
    remote = subparsers.add_parser(
        "remote",
        help="configure the DVC remote (DagsHub, S3-compatible, local folder)",
        description="Configure the DVC remote. Public settings go to .dvc/config (committed), "
        "credentials only to .dvc/config.local (git-ignored). Remotes verify downloads.",
    )
    kinds = remote.add_subparsers(dest="kind", metavar="KIND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default="origin", help="remote name (default: origin)")
        p.add_argument("--default", action="store_true", help="make it the default remote (core.remote)")
        p.add_argument(
            "--no-verify",
            dest="verify",
            action="store_false",
            help="do not re-hash downloads (DVC's default; a damaged remote object is then checked out)",
        )
        p.add_argument(
            "--repo-root", default=None, help="the DVC repository (default: the one holding the current directory)"
        )

    p = kinds.add_parser("dagshub", help="DagsHub's S3 gateway + the MLflow settings to export")
    p.add_argument("--owner", required=True, help="DagsHub user or organisation owning the repository")
    p.add_argument("--repo", required=True, help="DagsHub repository name")
    p.add_argument(
        "--token",
        default=None,
        help="DagsHub token (default: $DAGSHUB_USER_TOKEN, else the one saved by `dagshub login`)",
    )
    p.add_argument("--user", default=None, help="DagsHub username for MLflow (default: the owner)")
    p.add_argument("--show-token", action="store_true", help="print the token itself in the MLflow settings")
    common(p)
    p.set_defaults(func=cmd_remote_dagshub)

    p = kinds.add_parser("s3", help="any S3-compatible endpoint (AWS, MinIO, moto, ...)")
    p.add_argument("--url", required=True, help="s3://bucket[/prefix]")
    p.add_argument("--endpoint", default=None, help="http(s)://host[:port] (default: AWS)")
    p.add_argument(
        "--access-key-id", default=None, help="stored in .dvc/config.local (default: AWS_ACCESS_KEY_ID at push time)"
    )
    p.add_argument("--secret-access-key", default=None, help="stored in .dvc/config.local")
    common(p)
    p.set_defaults(func=cmd_remote_s3)

    p = kinds.add_parser("local", help="a folder on this machine or a mounted share")
    p.add_argument("path", metavar="PATH", help="the folder (relative: from the current directory)")
    common(p)
    p.set_defaults(func=cmd_remote_local)


def _root(args):
    from fer3d.app.remote import find_dvc_root

    return find_dvc_root(args.repo_root)


def _report(root, setup, secrets: Sequence[str] = ()) -> None:
    from fer3d.app.remote import check_no_secrets

    print(
        f"DVC remote {setup.name!r}: {setup.url}"
        + (f" via {setup.options['endpointurl']}" if "endpointurl" in setup.options else "")
        + f" (in {root / '.dvc' / 'config'}{', default' if setup.default else ''})"
    )
    if setup.local_keys:
        print(f"credentials ({', '.join(setup.local_keys)}): only in {root / '.dvc' / 'config.local'} (git-ignored)")
    for hint in setup.hints:
        print(f"note: {hint}")
    try:
        findings = check_no_secrets(root, secrets)
    except ValueError:  # not a git repository: nothing can be committed by mistake
        findings = []
    for finding in findings:
        print(f"warning: {finding}", file=sys.stderr)


def cmd_remote_dagshub(args) -> int:
    from fer3d.app.remote import configure_dagshub, dagshub_mlflow_env, resolve_dagshub_token

    root = _root(args)
    token = resolve_dagshub_token(args.token)
    setup = configure_dagshub(
        root, args.owner, args.repo, token=token, name=args.name, default=args.default, verify=args.verify
    )
    _report(root, setup, [token] if token else [])
    env = dagshub_mlflow_env(args.owner, args.repo, token if args.show_token else None, user=args.user)
    print(f"MLflow settings to export (or DAGSHUB_REPO={args.owner}/{args.repo} with DAGSHUB_USER_TOKEN):")
    for key, value in env.items():
        shown = value if key == "MLFLOW_TRACKING_PASSWORD" and not args.show_token else shlex.quote(value)
        print(f"  export {key}={shown}")
    if token and not args.show_token and not os.environ.get("DAGSHUB_USER_TOKEN"):
        print("  (export DAGSHUB_USER_TOKEN=<your token> first, or rerun with --show-token)")
    return 0


def cmd_remote_s3(args) -> int:
    from fer3d.app.remote import configure_s3

    root = _root(args)
    setup = configure_s3(
        root,
        args.url,
        endpoint=args.endpoint,
        access_key_id=args.access_key_id,
        secret_access_key=args.secret_access_key,
        name=args.name,
        default=args.default,
        verify=args.verify,
    )
    _report(root, setup, [s for s in (args.access_key_id, args.secret_access_key) if s])
    return 0


def cmd_remote_local(args) -> int:
    from fer3d.app.remote import configure_local

    root = _root(args)
    setup = configure_local(root, args.path, name=args.name, default=args.default, verify=args.verify)
    _report(root, setup)
    return 0


# -- predict --------------------------------------------------------------------------------------
def model_names(value: str | None) -> list[str] | None:
    """--models "a, b,fusion" -> ["a", "b", "fusion"]; None (every model of the folder) when not given."""
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


def add_face_options(p, align_help: str = "level the eyes before cropping (default: on)") -> None:
    """--models-dir, --crops and --align: where the model files are and how faces are cut."""
    p.add_argument("--models-dir", default="models", help="folder of <name>.pt files (default: models)")
    p.add_argument(
        "--crops", action="store_true", help="inputs are face crops already: no detection (48x48 images always are)"
    )
    p.add_argument("--align", action=argparse.BooleanOptionalAction, default=True, help=align_help)


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
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="torch: <name>.pt model files; onnx: the <name>.onnx files of `fer3d export` (onnxruntime, "
        "CPU; --models-dir is then the export folder)",
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

    if args.out != "-" and Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a folder; give a file name for the JSON")
    inputs, videos = video.split_inputs(args.inputs)
    video_options, tables = _video_setup(args, videos)  # checks --batch-size too
    started = time.perf_counter()
    errors = lambda entry: entry.get("error") and print(f"fer3d predict: {entry['error']}", file=sys.stderr)
    with (
        Predictor.from_dir(
            args.models_dir, model_names(args.models), device=args.device, tta_flip=args.tta, backend=args.backend
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
    return options, video.table_paths(videos, args.video_out, args.out)


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


# -- gradcam --------------------------------------------------------------------------------------
def add_gradcam(subparsers) -> None:
    p = subparsers.add_parser(
        "gradcam",
        help="Grad-CAM of 2D models on photos or face crops: where the evidence for a class lies",
        description="Find the faces (or take 48x48 crops), and write for each face and model a PNG of the crop with "
        "the Grad-CAM heat map (last conv layer) of the chosen class, plus one grid of all of them.",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files and/or folders")
    p.add_argument("--model", default="cnn", help="2D model name(s), comma-separated (default: cnn)")
    p.add_argument(
        "--class",
        dest="target",
        default=None,
        help="class to explain: angry, disgust, fear, happy, sad, surprise, neutral (default: the predicted one)",
    )
    p.add_argument("--out", default="gradcam", help="output folder (default: gradcam/)")
    add_face_options(p)
    p.set_defaults(func=cmd_gradcam)


def cmd_gradcam(args) -> int:
    import numpy as np

    from fer3d.app.faces import InputError, face_finder, faces_in, list_inputs
    from fer3d.inference import Classifier
    from fer3d.reporting import gradcam

    target = gradcam.class_index(args.target)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; gradcam writes a folder of PNGs there")
    models = {n: Classifier.from_file(Path(args.models_dir) / f"{n}.pt") for n in args.model.split(",") if n}
    crops, captions, cams = [], [], {name: [] for name in models}
    with face_finder(args.crops) as finder:
        for path in list_inputs(args.inputs):
            try:
                faces, _ = faces_in(path, finder, args.crops, args.align)
            except InputError as e:
                print(f"fer3d gradcam: {e}", file=sys.stderr)
                continue
            for i, face in enumerate(faces):
                stem = path.stem + (f"_face{i}" if len(faces) > 1 else "")
                for name, classifier in models.items():
                    cam = gradcam.cams_for_images(classifier, face.crop[None], target)[0]
                    written = gradcam.save_overlay(out / f"{stem}_{name}.png", face.crop, cam, name, note=path.name)
                    cams[name].append(cam)
                    print(f"{written}: {name} {classifier.classes[cam.class_index]} {cam.probability:.2f}")
                crops.append(face.crop)
                captions.append(stem)
    if not crops:
        print("fer3d gradcam: no face in any input", file=sys.stderr)
        return 1
    grid = gradcam.save_grid(out / "grid.png", np.stack(crops), cams, captions)
    print(f"{grid}: {len(crops)} face(s) x {len(models)} model(s)")
    return 0


# -- viewer ---------------------------------------------------------------------------------------
def add_viewer(subparsers) -> None:
    p = subparsers.add_parser(
        "viewer",
        help="the 3D face mesh of a photo as an offline HTML viewer (and PNG)",
        description="Find the face(s) (or take a 48x48 crop), get MediaPipe's 478 landmarks as the pipeline does and "
        "write a self-contained, rotatable HTML view (no CDN) and optionally a PNG, coloured by the "
        "displacement from the neutral mean training face or by what a 3D landmark model attends to "
        "(gradient saliency of its predicted class).",
    )
    p.add_argument("image", metavar="IMAGE", help="a photo or a face crop")
    p.add_argument("--out", default="face.html", help="HTML output (default: face.html)")
    p.add_argument("--png", default=None, help="also write a PNG render here")
    p.add_argument(
        "--color",
        choices=("displacement", "attention"),
        default="displacement",
        help="per-point colour (default: displacement)",
    )
    p.add_argument(
        "--model",
        default="landmark_mlp",
        help="3D model file whose FaceMesh settings and mean face are used; with --color attention it must take "
        "landmarks (landmark_mlp, landmark_cnn, mesh_gnn; default: landmark_mlp)",
    )
    add_face_options(p)
    p.set_defaults(func=cmd_viewer)


def cmd_viewer(args) -> int:
    import numpy as np

    from fer3d.app import mesh_view
    from fer3d.face3d import viewer
    from fer3d.inference import Classifier
    from fer3d.reporting import gradcam

    path = Path(args.image)
    for option, value in (("--out", args.out), ("--png", args.png)):
        if value and Path(value).is_dir():
            raise ValueError(f"{option} {value} is a folder; give a file name")
    classifier = Classifier.from_file(Path(args.models_dir) / f"{args.model}.pt")
    if classifier.mesh_settings is None:
        raise ValueError(f"--model {args.model} is a 2D model; the viewer needs a 3D one (its FaceMesh settings)")
    found = mesh_view.face_meshes(path, classifier.mesh_settings, args.crops, args.align)
    meshes = [(i, face, pts) for i, (face, pts) in enumerate(found) if pts is not None]
    for i, (face, pts) in enumerate(found):
        if pts is None:
            print(f"fer3d viewer: {path} face {i} (box {face.box}): no FaceMesh mesh on its crop", file=sys.stderr)
    if not meshes:
        raise ValueError(f"{path}: no face mesh found on any of its {len(found)} face(s)")
    points = np.stack([pts for _, _, pts in meshes])
    if args.color == "attention":
        values, probs = gradcam.point_saliency(classifier, points)
        captions = [
            f"{path.name} face {i}: {args.model} says {classifier.classes[p.argmax()]} {p.max():.2f}"
            for (i, _, _), p in zip(meshes, probs)
        ]
        label = f"gradient saliency of {args.model} (predicted class)"
    else:
        values = gradcam.displacement(points, np.asarray(classifier.stats["mean_face"], np.float32))
        captions = [f"{path.name} face {i}" for i, _, _ in meshes]
        label = "distance from the mean training face"
    faces = list(zip(points, values, captions))
    triangles = mesh_view.triangles()
    written = [viewer.mesh_html(args.out, faces, triangles, title=f"fer3d: {path.name}", value_label=label)]
    if args.png:
        images = [face.crop for _, face, _ in meshes]
        written.append(viewer.mesh_png(args.png, faces, triangles, images=images, value_label=label))
    print(f"{len(meshes)} face mesh(es) of {path}: " + ", ".join(map(str, written)))
    return 0


# -- evaluate-folder ------------------------------------------------------------------------------
def add_evaluate_folder(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate-folder",
        help="score every model and fusion row on a labelled face folder, with 95%% intervals",
        description="Score the model files in --models-dir (and the fusion rows of its fusion.json) on a labelled "
        "folder: <class>/* or <split>/<class>/* (class names such as happy, happiness or HA; any image format and "
        "size). Photos are searched for faces and cut like FER2013; 48x48 images are crops already. Prints "
        "accuracy and macro-F1 with 95%% intervals from a bootstrap over groups (--group) or images, and writes JSON.",
    )
    p.add_argument("folder", metavar="FOLDER", help="the labelled folder")
    p.add_argument(
        "--group",
        default=None,
        metavar="REGEX",
        help="regex on each file's path below FOLDER naming its group (the first capture group, else the match), "
        "e.g. 'S\\d+' for CK+ subjects: the bootstrap resamples whole groups (default: each image its own group)",
    )
    p.add_argument("--split", default=None, help="score only this split of a <split>/<class>/* folder (e.g. test)")
    p.add_argument("--models", default=None, help="comma-separated model and/or fusion names (default: all)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--out", default="folder_scores.json", help="JSON output (default: folder_scores.json; '-': none)")
    add_face_options(p)
    p.set_defaults(func=cmd_evaluate_folder)


def cmd_evaluate_folder(args) -> int:
    from fer3d.app import evaluate_folder
    from fer3d.app.faces import face_finder
    from fer3d.data import folders
    from fer3d.inference import Predictor
    from fer3d.io import save_json

    if args.resamples < 100:
        raise ValueError(f"--resamples must be >= 100 for a 95% interval, found {args.resamples}")
    if args.out != "-" and Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a folder; give a file name for the JSON")
    folder = folders.scan(args.folder)
    if args.split:
        folder = folder.only_split(args.split)
    folder.groups(args.group)  # a bad pattern fails before the models load
    with Predictor.from_dir(args.models_dir, model_names(args.models)) as predictor, face_finder(args.crops) as finder:
        result = evaluate_folder.evaluate_folder(
            predictor, folder, finder, args.group, args.crops, args.align, args.resamples, args.seed
        )
    counts = ", ".join(f"{c} {n}" for c, n in result["classes"].items())
    print(f"{folder.root}: {result['used']} of {result['images']} image(s) scored ({counts})")
    for reason, d in result["dropped"].items():
        print(f"dropped {d['count']}: {reason} (e.g. {', '.join(d['examples'][:3])})")
    for note, n in result["notes"].items():
        print(f"{n} image(s): {note}")
    print(evaluate_folder.table(result, predictor.names))
    print(result["interval"])
    if args.out != "-":
        save_json(args.out, result)
        print(f"scores: {args.out}")
    return 0


# -- serve ----------------------------------------------------------------------------------------
def add_serve(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="an HTTP API (POST /predict, /explain) and a web page for the models",
        description="Load the models and face detectors once and serve them over HTTP (FastAPI + uvicorn): the page "
        "at /, POST /predict (an image, as multipart field 'file' or the raw body -> the JSON of `fer3d predict` for "
        "one file), POST /explain (per face: Grad-CAM overlays of the 2D models and the 3D mesh viewer), GET /health, "
        "the API description at /openapi.json and /docs (works offline). Requests are handled one at a time.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--models-dir", default="models", help="folder of <name>.pt files (default: models)")
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated model and/or fusion names; default: every <name>.pt in --models-dir and every "
        "fusion row of its fusion.json",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=10.0, help="largest image accepted, in MiB (default: 10); larger: 413"
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import uvicorn

    from fer3d.app.faces import FaceFinder
    from fer3d.app.service import create_app
    from fer3d.inference import Predictor

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be in 1..65535, found {args.port}")
    if not args.max_upload_mb > 0:
        raise ValueError(f"--max-upload-mb must be > 0, found {args.max_upload_mb}")
    with Predictor.from_dir(args.models_dir, model_names(args.models)) as predictor, FaceFinder() as finder:
        app = create_app(predictor, finder, args.max_upload_mb)
        print(f"fer3d serve: {', '.join(predictor.names)} from {args.models_dir}", flush=True)
        url = f"http://{args.host}:{args.port}"
        print(f"fer3d serve: the page {url}/, the API's description {url}/docs", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


# -- log-model ------------------------------------------------------------------------------------
def add_log_model(subparsers) -> None:
    p = subparsers.add_parser(
        "log-model",
        help="log the whole predictor as an MLflow pyfunc model (for `mlflow models serve` and the registry)",
        description="Log the model files of --models-dir, their fusion rows, face detection and FaceMesh as one "
        "MLflow pyfunc model (with the fer3d code, pinned requirements, a signature and an input example) in a new "
        "run, optionally registered. `mlflow models serve -m <printed URI> --env-manager local` then answers "
        "POST /invocations with what `fer3d predict` writes per file. Store: --tracking-uri, else as for training "
        "(MLFLOW_TRACKING_URI, DAGSHUB_REPO, else the project's sqlite:///mlflow.db).",
    )
    p.add_argument("--models-dir", default="models", help="folder of <name>.pt files (default: models)")
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated model and/or fusion names; default: every <name>.pt in --models-dir and every "
        "fusion row of its fusion.json",
    )
    p.add_argument("--registered-model-name", default=None, help="also register it under this name")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: as for training)")
    p.add_argument("--experiment", default="fer3d", help="MLflow experiment (default: fer3d)")
    p.add_argument("--artifact-path", default="fer3d", help="the model's name in the run (default: fer3d)")
    p.set_defaults(func=cmd_log_model)


def cmd_log_model(args) -> int:
    from mlflow.exceptions import MlflowException

    from fer3d.app.pyfunc import log_predictor
    from fer3d.training.tracking import redact

    names = model_names(args.models)
    try:
        logged = log_predictor(
            args.models_dir, names, args.registered_model_name, args.artifact_path, args.tracking_uri, args.experiment
        )
    except MlflowException as e:  # server down, auth, a name the registry refuses: one line, no traceback
        raise ValueError(f"MLflow refused the model: {redact(' '.join(str(e).split()))[:500]}") from None
    print(f"tracking: {redact(logged.tracking_uri)}")
    print(f"model: {logged.model_uri}")
    if logged.registered_uri:
        print(f"registered: {logged.registered_uri}")
    uri = shlex.quote(redact(logged.tracking_uri))
    model = logged.registered_uri or logged.model_uri
    print(f"serve: MLFLOW_TRACKING_URI={uri} mlflow models serve -m {model} --env-manager local --port 5001")
    return 0


# -- export ---------------------------------------------------------------------------------------
def add_export(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export model files to ONNX, runnable with onnxruntime alone (no torch)",
        description="Write <name>.onnx for each model file of --models-dir into --out, with its fusion.json: "
        "one .onnx file keeps everything prediction needs (classes, input kind and statistics, flip "
        "averaging, training prior, FaceMesh settings) in its metadata. Each export is checked against the "
        "torch model before it is written. Use them with `fer3d predict --backend onnx --models-dir OUT`.",
    )
    p.add_argument("--format", required=True, choices=("onnx",), help="export format (only onnx)")
    p.add_argument(
        "--models", default=None, help="comma-separated model names (default: every <name>.pt in --models-dir)"
    )
    p.add_argument("--models-dir", default="models", help="folder of <name>.pt files (default: models)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from fer3d.inference.onnx_export import export_models

    names = model_names(args.models)
    for r in export_models(args.models_dir, args.out, names):
        print(f"{r['path']}: {r['bytes'] / 1e6:.1f} MB, max |probability - torch| {r['max_diff']:.1e}")
    return 0


# -- wiring ---------------------------------------------------------------------------------------
COMMANDS: list[Callable] = [
    add_remote,
    add_predict,
    add_gradcam,
    add_viewer,
    add_evaluate_folder,
    add_serve,
    add_log_model,
    add_export,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer3d", description="FER2013: 2D image vs 3D face-mesh emotion models")
    parser.add_argument("--version", action="version", version=f"fer3d {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        if os.environ.get("FER3D_DEBUG"):
            raise
        where = " ".join(str(part) for part in (args.command, getattr(args, "kind", None)) if part)
        raise SystemExit(f"fer3d {where}: error: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
