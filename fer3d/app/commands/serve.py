"""`fer3d serve`: the web service and its page."""

from __future__ import annotations

from .options import model_names


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
