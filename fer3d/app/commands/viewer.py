"""`fer3d viewer`: a face's mesh as a self-contained, rotatable HTML page."""

from __future__ import annotations

import sys
from pathlib import Path

from .options import add_face_options, check_output


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
    check_output(args.out)
    check_output(args.png, "--png")
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
