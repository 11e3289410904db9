"""`fer3d export`: ONNX model files for onnxruntime."""

from __future__ import annotations

from .options import check_output, model_names


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

    names = model_names(args.models, example="cnn,resnet")  # fusion rows travel in fusion.json, not by name
    check_output(args.out, folder=True)
    for r in export_models(args.models_dir, args.out, names):
        print(f"{r['path']}: {r['bytes'] / 1e6:.1f} MB, max |probability - torch| {r['max_diff']:.1e}")
    return 0
