"""`fer3d gradcam`: where each 2D model finds its evidence, one PNG per face."""

from __future__ import annotations

import sys
from pathlib import Path

from .options import add_face_options, check_output, model_names


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
        help="class to explain, one of the model's classes by name or index (FER2013's: angry, disgust, fear, happy, "
        "sad, surprise, neutral; default: the class fer3d predict gives)",
    )
    p.add_argument("--out", default="gradcam", help="output folder (default: gradcam/)")
    add_face_options(p)
    p.set_defaults(func=cmd_gradcam)


def cmd_gradcam(args) -> int:
    import numpy as np

    from fer3d.app.faces import InputError, face_finder, faces_in, list_inputs
    from fer3d.inference import Classifier
    from fer3d.reporting import gradcam

    out = Path(args.out)
    check_output(args.out, folder=True)
    names = model_names(args.model, "--model", "cnn,vgg")
    inputs = list_inputs(args.inputs)
    _refuse_same_stems(inputs, out, names[0])
    models = {n: Classifier.from_file(Path(args.models_dir) / f"{n}.pt") for n in names}
    for name, classifier in models.items():  # a class the model lacks is refused before any image is read
        gradcam.class_index(args.target, classifier.classes, name)
    crops, captions, cams = [], [], {name: [] for name in models}
    with face_finder(args.crops) as finder:
        for path in inputs:
            try:
                faces, _ = faces_in(path, finder, args.crops, args.align)
            except InputError as e:
                print(f"fer3d gradcam: {e}", file=sys.stderr)
                continue
            for i, face in enumerate(faces):
                stem = path.stem + (f"_face{i}" if len(faces) > 1 else "")
                for name, classifier in models.items():
                    cam = gradcam.cams_for_images(classifier, face.crop[None], args.target)[0]
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


def _refuse_same_stems(inputs: list[Path], out: Path, model: str) -> None:
    """Each face's PNG is named by its file's stem: two inputs sharing one would overwrite each other."""
    seen: dict[str, Path] = {}
    for path in inputs:
        if path.stem in seen:
            raise ValueError(
                f"{seen[path.stem]} and {path} would both write {out / f'{path.stem}_{model}.png'}; "
                "give them different names or run them apart"
            )
        seen[path.stem] = path
