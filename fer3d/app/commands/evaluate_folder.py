"""`fer3d evaluate-folder`: every model and fusion row on a labelled face folder."""

from __future__ import annotations

from .options import add_face_options, check_output, model_names

MAX_RESAMPLES = 100_000  # 1,000 (the default) already gives a 95% interval; 10^5 x 1,000 groups: 0.8 GB a table


def add_evaluate_folder(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate-folder",
        help="score every model and fusion row on a labelled face folder, with 95%% intervals",
        description="Score the model files in --models-dir (and the fusion rows of its fusion.json) on a labelled "
        "folder: <class>/* or <split>/<class>/* (class names such as happy, happiness or HA; any image format and "
        "size). Photos are searched for faces and cut like FER2013; 48x48 images are crops already. Prints "
        "accuracy and macro-F1 with 95% intervals from a bootstrap over groups (--group) or images, and writes JSON.",
    )
    p.add_argument("folder", metavar="FOLDER", help="the labelled folder")
    p.add_argument(
        "--group",
        default=None,
        metavar="REGEX",
        help="regex on each file's path below FOLDER naming its group (the first capture group, else the match), "
        "e.g. 'S\\d+' for CK+ subjects: the bootstrap resamples whole groups (default: each image its own group)",
    )
    p.add_argument(
        "--split",
        default=None,
        help="which split of a <split>/<class>/* folder to score (default: test, as the evaluate_extra stage; "
        "`all`: every split, training images included)",
    )
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

    if not 100 <= args.resamples <= MAX_RESAMPLES:
        raise ValueError(
            f"--resamples must be 100..{MAX_RESAMPLES:,} (100 or more for a 95% interval; every resample is held "
            f"in memory at once), found {args.resamples}"
        )
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, found {args.seed}")
    check_output(args.out)
    folder = folders.scan(args.folder)
    split = None
    if folder.splits is not None:
        split = args.split or "test"
        if args.split is None:
            print(f"{folder.root}: scoring its test split, as the evaluate_extra stage does (--split all: every split)")
        if split != "all":
            folder = folder.only_split(split)
    elif args.split:
        folder.only_split(args.split)  # refused, naming the folder: it has no split folders
    folder.groups(args.group)  # a bad pattern fails before the models load
    with Predictor.from_dir(args.models_dir, model_names(args.models)) as predictor, face_finder(args.crops) as finder:
        result = evaluate_folder.evaluate_folder(
            predictor, folder, finder, args.group, args.crops, args.align, args.resamples, args.seed
        )
    result = {"set": result["set"], "split": split, **result}  # which faces were scored, beside the set
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
