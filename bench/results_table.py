"""Print the README's results tables from the committed metrics (after `dvc repro`).

python bench/results_table.py [PROJECT]               # another copy's metrics, e.g. results/ferplus
python bench/results_table.py NEW --against OLD       # two runs side by side: what each minute bought
"""

import argparse
import json
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", nargs="?", type=Path, default=PROJECT, help="a folder holding metrics/")
    parser.add_argument("--against", type=Path, help="an older run's folder: print the two side by side")
    args = parser.parse_args()
    for folder in (args.project, args.against):
        if folder is not None and not (folder / "metrics" / "summary.json").is_file():
            parser.error(f"{folder}: expected metrics/summary.json there (a project after `dvc repro`)")
    if args.against is not None:
        print_old_vs_new(args.against, args.project)
        return
    print_tables(args.project)


def print_tables(root: Path) -> None:
    print_glance_table(root)
    print((root / "metrics" / "comparison.md").read_text())
    print(
        "| model | parameters | epochs run (best) | epochs validated | train minutes | s/epoch | train samples/s "
        "| test images/s |\n|---|---|---|---|---|---|---|---|"
    )
    params_file = root / "params.yaml"  # the run's own (results/ copies may keep none: no views tag then)
    run_params = (yaml.safe_load(params_file.read_text()) or {}) if params_file.exists() else {}
    models, default_flip = run_params.get("models") or {}, (run_params.get("train") or {}).get("tta_flip", True)
    total = 0.0
    for path in sorted((root / "metrics" / "train").glob("*.json")):
        t = json.loads(path.read_text())
        ev = json.loads((root / "metrics" / "eval" / path.name).read_text())
        total += t["train_minutes"]
        section = models.get(t["model"]) or {}
        flip = section.get("tta_flip", default_flip)
        views = (2 if flip else 1) * (5 if section.get("tta_shift") else 1)  # the face and 4 shifts, each mirrored
        tags = [f"{views} views"] if views > 2 else []
        tags += ["bf16"] if ev.get("scoring_precision") == "bf16" else []
        scored = f"{ev.get('images_per_second')}" + (f" ({', '.join(tags)})" if tags else "")
        print(
            f"| {t['model']} | {t['parameters']:,} | {t['epochs_run']} ({t['best_epoch']}) | "
            f"{t.get('epochs_validated', t['epochs_run'])} | {t['train_minutes']} | {t['seconds_per_epoch']} | "
            f"{t['train_samples_per_second']} | {scored} |"
        )
    stages = sum(
        json.loads((root / "metrics" / f"{s}.json").read_text())["seconds"]
        for s in ("data", "landmarks", "meshes", "voxels")
    )
    summary = json.loads((root / "metrics" / "summary.json").read_text())
    for row, fusion in summary["fusions"].items():
        print(
            f"\n`{row}` weights (fitted on PublicTest): "
            + ", ".join(f"{m} {w:g}" for m, w in zip(fusion["models"], fusion["weights"]))
        )
    print_minutes_table(root, summary, total)
    print_shift_table(root)
    print(
        f"\ntraining {total:.1f} min + data stages {stages / 60:.1f} min + evaluate {summary['seconds'] / 60:.1f} min "
        f"= {total + stages / 60 + summary['seconds'] / 60:.1f} min of stage time"
    )


def print_glance_table(root: Path) -> None:
    """README's "At a glance": per model and fusion row the split that chose it, the one reported,
    the shift suite's mean, training minutes and the weight in `fusion`; 2D then 3D models, each by
    PrivateTest accuracy, then the fusion rows."""
    metrics = root / "metrics"
    summary = json.loads((metrics / "summary.json").read_text())
    shifted = json.loads((metrics / "shifts.json").read_text())["models"]
    fusion = summary["fusions"].get("fusion", {"models": [], "weights": []})
    weight = dict(zip(fusion["models"], fusion["weights"]))
    evaluated = {name: json.loads((metrics / "eval" / f"{name}.json").read_text()) for name in summary["test_acc"]}
    by_accuracy = lambda family: sorted(
        (n for n, e in evaluated.items() if e.get("family") == family), key=lambda n: -summary["test_acc"][n]
    )
    print(
        "| model | family | PublicTest (chooses) | PrivateTest (reported) | shifted PrivateTest | training minutes "
        "| weight in `fusion` |\n|---|---|---:|---:|---:|---:|---:|"
    )
    for name in [*by_accuracy("2d"), *by_accuracy("3d"), *summary["fusions"]]:
        train = metrics / "train" / f"{name}.json"
        minutes = f"{json.loads(train.read_text())['train_minutes']:.1f}" if train.is_file() else "–"
        print(
            f"| {name} | {evaluated[name].get('family', 'fusion')} | {evaluated[name]['val_acc']:.2%} | "
            f"{summary['test_acc'][name]:.2%} | {shifted[name]['test']['shifted']:.2%} | {minutes} | "
            + (f"{weight[name]:.2f}" if name in weight else "–")
            + " |"
        )
    print()


def print_minutes_table(root: Path, summary: dict, total: float) -> None:
    """What each model's training minutes buy: its PrivateTest accuracy and its weight in `fusion`."""
    fusion = summary["fusions"].get("fusion", {"models": [], "weights": []})
    weight = dict(zip(fusion["models"], fusion["weights"]))
    print(
        "\n| model | train minutes | share of training | PrivateTest acc | weight in `fusion` |\n|---|---|---|---|---|"
    )
    for path in sorted(
        (root / "metrics" / "train").glob("*.json"), key=lambda p: -json.loads(p.read_text())["train_minutes"]
    ):
        t = json.loads(path.read_text())
        print(
            f"| {t['model']} | {t['train_minutes']:.1f} | {t['train_minutes'] / total:.0%} | "
            f"{summary['test_acc'][t['model']]:.2%} | {weight.get(t['model'], '–')} |"
        )


def print_shift_table(root: Path) -> None:
    """PrivateTest accuracy under the shift suite (metrics/shifts.json), when the stage has run."""
    path = root / "metrics" / "shifts.json"
    if not path.exists():
        return
    shifts = json.loads(path.read_text())
    suite = shifts["suite"]
    print("\n| model | plain | " + " | ".join(suite) + " | shifted | drop |\n|" + "---|" * (len(suite) + 4))
    for name, r in shifts["models"].items():
        test = r["test"]
        cells = [f"{100 * test[k]:.2f}%" for k in ("plain", *suite, "shifted")]
        print(f"| {name} | " + " | ".join(cells) + f" | {100 * test['drop']:.1f} |")


def run_numbers(folder: Path) -> dict[str, dict]:
    """Per model and fusion row: training minutes (models only), PrivateTest accuracy, shifted accuracy."""
    summary = json.loads((folder / "metrics" / "summary.json").read_text())
    shifts_path = folder / "metrics" / "shifts.json"
    shifted = json.loads(shifts_path.read_text())["models"] if shifts_path.exists() else {}
    rows: dict[str, dict] = {}

    def row(name: str) -> dict:
        return rows.setdefault(name, {"test": None, "minutes": None, "shifted": None})

    for name, acc in summary["test_acc"].items():
        row(name)["test"] = acc
    for path in (folder / "metrics" / "train").glob("*.json"):
        t = json.loads(path.read_text())
        row(t["model"])["minutes"] = t["train_minutes"]
    for name, r in shifted.items():
        row(name)["shifted"] = r["test"]["shifted"]
    return rows


def print_old_vs_new(old_folder: Path, new_folder: Path) -> None:
    """The two runs' minutes, PrivateTest and shifted accuracy per model and fusion row, and the change."""
    old, new = run_numbers(old_folder), run_numbers(new_folder)

    def pct(v):
        return "–" if v is None else f"{100 * v:.2f}%"

    def mins(v):
        return "–" if v is None else f"{v:.1f}"

    def delta(a, b):
        return "–" if a is None or b is None else f"{100 * (b - a):+.2f}"

    print(f"old: {old_folder}, new: {new_folder}\n")
    print(
        "| model | train minutes old → new | PrivateTest old | new | change | shifted old | new | change |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for name in [*old, *(n for n in new if n not in old)]:
        o, n = old.get(name, {}), new.get(name, {})
        print(
            f"| {name} | {mins(o.get('minutes'))} → {mins(n.get('minutes'))} | {pct(o.get('test'))} | "
            f"{pct(n.get('test'))} | {delta(o.get('test'), n.get('test'))} | {pct(o.get('shifted'))} | "
            f"{pct(n.get('shifted'))} | {delta(o.get('shifted'), n.get('shifted'))} |"
        )
    totals = [sum(r["minutes"] or 0 for r in run.values()) for run in (old, new)]
    print(f"\ntraining minutes in all: {totals[0]:.1f} → {totals[1]:.1f}")


if __name__ == "__main__":
    main()
