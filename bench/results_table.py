"""Print the README's results tables from the committed metrics (after `dvc repro`)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    print(
        f"\ntraining {total:.1f} min + data stages {stages / 60:.1f} min + evaluate {summary['seconds'] / 60:.1f} min "
        f"= {total + stages / 60 + summary['seconds'] / 60:.1f} min of stage time"
    )


if __name__ == "__main__":
    main()
