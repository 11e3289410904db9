"""`dvc plots show` draws validation accuracy only where an epoch was validated. The validation
schedule leaves val_acc empty on the other epochs, and vega reads an empty cell as 0, so every curve
plot goes through .dvc/plots/linear_validated.json: DVC's linear template plus a filter on the y
field. Checked through DVC itself on the committed training curves (real runs' files)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / ".dvc" / "plots" / "linear_validated.json"
CURVES = sorted((ROOT / "metrics" / "train").glob("*_curve.csv"))


def val_acc_plots(dvc_yaml: dict) -> list[tuple[str, dict]]:
    """(name, properties) of every plot dvc.yaml declares whose y is val_acc: stage outputs and
    the top-level plots."""
    found = []
    for name, stage in dvc_yaml["stages"].items():
        for entry in stage.get("do", stage).get("plots", []):
            for path, props in entry.items():
                if props.get("y") == "val_acc":
                    found.append((f"{name}: {path}", props))
    for entry in dvc_yaml.get("plots", []):
        for name, props in entry.items():
            if isinstance(props.get("y"), dict) and set(props["y"].values()) == {"val_acc"}:
                found.append((name, props))
    return found


def test_every_validation_curve_plot_uses_the_template():
    plots = val_acc_plots(yaml.safe_load((ROOT / "dvc.yaml").read_text()))
    assert len(plots) >= 3  # train_2d's and train_3d's outputs, the top-level comparison
    assert [name for name, props in plots if props.get("template") != "linear_validated"] == []


def test_template_is_dvcs_linear_plus_the_filter():
    """Kept in step with the installed dvc-render: a new linear template there fails here."""
    from dvc_render.vega_templates import LinearTemplate

    ours = json.loads(TEMPLATE.read_text())
    assert ours.pop("transform") == [{"filter": "isValid(datum['<DVC_METRIC_Y>']) && datum['<DVC_METRIC_Y>'] !== ''"}]
    assert ours == LinearTemplate.DEFAULT_CONTENT


def kept_rows(spec: dict) -> list[dict]:
    """The rows vega draws after the spec's top-level filter (the expression the template writes,
    evaluated here: a present, non-empty value of the field it names)."""
    (expression,) = [t["filter"] for t in spec["transform"]]
    fields = set(re.findall(r"datum\['([^']+)'\]", expression))
    assert len(fields) == 1, expression
    field = fields.pop()
    return [row for row in spec["data"]["values"] if row.get(field) not in (None, "")]


def test_dvc_plots_show_keeps_only_validated_epochs(tmp_path):
    assert CURVES, "no committed training curves in metrics/train"
    dvc = [str(Path(sys.executable).parent / "dvc")]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    for rel in ("dvc.yaml", "params.yaml", ".dvc/plots/linear_validated.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
    (tmp_path / "metrics" / "train").mkdir(parents=True)
    for curve in CURVES:
        shutil.copy2(curve, tmp_path / "metrics" / "train" / curve.name)
    # every plot dvc.yaml declares, so none fails to load (a named top-level plot is not a target)
    shutil.copytree(ROOT / "metrics" / "confusion", tmp_path / "metrics" / "confusion")
    shown = subprocess.run(
        [*dvc, "plots", "show", "--json"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    shown = json.loads(shown.stdout)
    assert "errors" not in shown, shown["errors"]
    specs = {name: [p["content"] for p in plots] for name, plots in shown["data"].items()}

    with (tmp_path / "metrics" / "train" / "resnet_curve.csv").open() as f:
        rows = list(csv.DictReader(f))
    validated = [r["epoch"] for r in rows if r["val_acc"]]
    assert 0 < len(validated) < len(rows), "the committed resnet curve should have unvalidated epochs"
    (resnet,) = specs["metrics/train/resnet_curve.csv"]
    kept = kept_rows(resnet)
    assert [r["epoch"] for r in kept] == validated
    assert all(float(r["val_acc"]) > 0.3 for r in kept)

    (together,) = specs["Validation accuracy per epoch (PublicTest)"]
    kept = kept_rows(together)
    per_file = {}
    for row in kept:
        per_file.setdefault(row["filename"], []).append(row["epoch"])
    for curve in CURVES:
        with curve.open() as f:
            assert per_file[curve.name] == [r["epoch"] for r in csv.DictReader(f) if r["val_acc"]], curve.name
