"""Print the README's results tables from the committed metrics (after `dvc repro`).

python bench/results_table.py [PROJECT]   # another copy's metrics, e.g. a clone run with data.labels: ferplus
"""

import json
import sys
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent


def main() -> None:
    print((ROOT / "metrics" / "comparison.md").read_text())
    print(
        "| model | parameters | epochs run (best) | train minutes | s/epoch | train samples/s | test images/s |\n"
        "|---|---|---|---|---|---|---|"
    )
    total = 0.0
    for path in sorted((ROOT / "metrics" / "train").glob("*.json")):
        t = json.loads(path.read_text())
        ev = json.loads((ROOT / "metrics" / "eval" / path.name).read_text())
        total += t["train_minutes"]
        print(
            f"| {t['model']} | {t['parameters']:,} | {t['epochs_run']} ({t['best_epoch']}) | {t['train_minutes']} | "
            f"{t['seconds_per_epoch']} | {t['train_samples_per_second']} | {ev.get('images_per_second')} |"
        )
    stages = sum(
        json.loads((ROOT / "metrics" / f"{s}.json").read_text())["seconds"]
        for s in ("data", "landmarks", "meshes", "voxels")
    )
    summary = json.loads((ROOT / "metrics" / "summary.json").read_text())
    for row, fusion in summary["fusions"].items():
        print(
            f"\n`{row}` weights (fitted on PublicTest): "
            + ", ".join(f"{m} {w:g}" for m, w in zip(fusion["models"], fusion["weights"]))
        )
    print_minutes_table(summary, total)
    print_shift_table()
    print(
        f"\ntraining {total:.1f} min + data stages {stages / 60:.1f} min + evaluate {summary['seconds'] / 60:.1f} min "
        f"= {total + stages / 60 + summary['seconds'] / 60:.1f} min of stage time"
    )


def print_minutes_table(summary: dict, total: float) -> None:
    """What each model's training minutes buy: its PrivateTest accuracy and its weight in `fusion`."""
    fusion = summary["fusions"].get("fusion", {"models": [], "weights": []})
    weight = dict(zip(fusion["models"], fusion["weights"]))
    print(
        "\n| model | train minutes | share of training | PrivateTest acc | weight in `fusion` |\n|---|---|---|---|---|"
    )
    for path in sorted(
        (ROOT / "metrics" / "train").glob("*.json"), key=lambda p: -json.loads(p.read_text())["train_minutes"]
    ):
        t = json.loads(path.read_text())
        print(
            f"| {t['model']} | {t['train_minutes']:.1f} | {t['train_minutes'] / total:.0%} | "
            f"{summary['test_acc'][t['model']]:.2%} | {weight.get(t['model'], '–')} |"
        )


def print_shift_table() -> None:
    """PrivateTest accuracy under the shift suite (metrics/shifts.json), when the stage has run."""
    path = ROOT / "metrics" / "shifts.json"
    if not path.exists():
        return
    shifts = json.loads(path.read_text())
    suite = shifts["suite"]
    print("\n| model | plain | " + " | ".join(suite) + " | shifted | drop |\n|" + "---|" * (len(suite) + 4))
    for name, r in shifts["models"].items():
        test = r["test"]
        cells = [f"{100 * test[k]:.2f}%" for k in ("plain", *suite, "shifted")]
        print(f"| {name} | " + " | ".join(cells) + f" | {100 * test['drop']:.1f} |")


if __name__ == "__main__":
    main()
