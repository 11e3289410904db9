"""One report of a pipeline run: reports/report.md (PNGs by relative path) and reports/report.html
(self-contained: PNGs embedded as data URIs, no external links), from the metrics the stages wrote.

Sections: the comparison table, confusion matrices, per-class recall, training curves, Grad-CAM
samples, face meshes, MediaPipe detection rates and timings. A missing metrics file leaves its
section saying which file is missing; the report itself never fails on it.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import EMOTIONS, SPLIT_NAMES, SPLITS, Paths
from ..evaluation.protocol import COMPARISON_HEAD, comparison_notes, comparison_rows
from ..io import atomic_path, save_text

# ------------------------------------------------------------------ document model


@dataclass
class Doc:
    """Blocks rendered to both markdown and HTML: (kind, payload)."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def h(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, head: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (head, rows)))

    def image(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))


def to_markdown(doc: Doc, base: Path) -> str:
    out = [f"# {doc.title}", ""]
    for kind, payload in doc.blocks:
        if kind == "h2":
            out += [f"## {payload}", ""]
        elif kind == "p":
            out += [str(payload), ""]
        elif kind == "table":
            head, rows = payload
            out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += ["| " + " | ".join(r) + " |" for r in rows] + [""]
        elif kind == "img":
            path, alt = payload
            out += [f"![{alt}]({path.relative_to(base).as_posix()})", ""]
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:20px auto;padding:0 12px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}"
    "p{line-height:1.45}"
)


def to_html(doc: Doc) -> str:
    out = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(doc.title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(doc.title)}</h1>"
    ]
    for kind, payload in doc.blocks:
        if kind == "h2":
            out.append(f"<h2>{html.escape(str(payload))}</h2>")
        elif kind == "p":
            out.append(f"<p>{_inline(str(payload))}</p>")
        elif kind == "table":
            head, rows = payload
            out.append(
                "<table><tr>"
                + "".join(f"<th>{_inline(h)}</th>" for h in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                + "</table>"
            )
        elif kind == "img":
            path, alt = payload
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            out.append(f"<p><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'></p>")
    out.append("</body></html>")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then render `code` spans (the only markdown the blocks use)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


# ------------------------------------------------------------------ reading metrics


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _curve(path: Path) -> list[dict]:
    """An epoch's row; an empty cell (an epoch that was not validated: train.validate_*) is None."""
    with open(path, newline="") as f:
        return [{k: float(v) if v != "" else None for k, v in row.items()} for row in csv.DictReader(f)]


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _num(v, fmt: str = "{:,.1f}") -> str:
    return "–" if v is None else fmt.format(v)


def _ordered(by_model: dict[str, dict], evals: dict[str, dict]) -> dict[str, dict]:
    """The models in the comparison table's order (2D, 3D, fusion; best first), others after."""
    rank = {row[0]: i for i, row in enumerate(comparison_rows(evals))}
    return dict(sorted(by_model.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


# ------------------------------------------------------------------ figures


def _classes(evals: dict[str, dict]) -> list[str]:
    """The class names of the per-class scores (the label set's: 7 for FER2013, 8 for FER+)."""
    with_classes = [e["scores"]["test"]["per_class"] for e in evals.values() if e["scores"]["test"].get("per_class")]
    return list(with_classes[0]) if with_classes else list(EMOTIONS)


def per_class_recall_png(path: Path, evals: dict[str, dict]) -> Path:
    """Grouped bars: PrivateTest recall of each class, one bar per model."""
    from .plots import _pyplot, _save

    plt = _pyplot()
    names = [n for n, e in evals.items() if e["scores"]["test"].get("per_class")]
    classes = _classes(evals)
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(classes))
    for k, name in enumerate(names):
        recall = [evals[name]["scores"]["test"]["per_class"][c]["recall"] for c in classes]
        ax.bar(x + (k - (len(names) - 1) / 2) * width, recall, width, label=name)
    ax.set_xticks(x, classes)
    ax.set(ylabel="recall (PrivateTest)", ylim=(0, 1))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(9, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------ sections


def _comparison(doc: Doc, evals: dict[str, dict], summary: dict | None) -> None:
    doc.h("Model comparison")
    if summary:
        fusions = summary.get("fusions") or {}
        described = "; ".join(
            f"`{row}` = " + " + ".join(f"{w:g}·log p(`{m}`)" for m, w in zip(f["models"], f["weights"]))
            for row, f in fusions.items()
        )
        doc.p(
            f"Protocol: {summary.get('protocol', '?')}. Best 2D: `{summary.get('best_2d')}`, best 3D: "
            f"`{summary.get('best_3d')}`."
            + (f" Late fusions (weights fitted on PublicTest): {described}." if fusions else "")
        )
    if not evals:
        doc.p("(no comparison table: metrics/eval/ is empty)")
        return
    doc.table(COMPARISON_HEAD, comparison_rows(evals))
    if summary and summary.get("subset_sizes"):
        classes = tuple(summary.get("classes") or EMOTIONS)
        doc.p(comparison_notes(summary["subset_sizes"], classes, summary.get("labels", "fer2013")))


def _per_class(doc: Doc, reports: Path, evals: dict[str, dict]) -> None:
    doc.h("Per-class recall (PrivateTest)")
    with_classes = {n: e for n, e in evals.items() if e["scores"]["test"].get("per_class")}
    if not with_classes:
        doc.p("(no per-class scores in metrics/eval/)")
        return
    doc.image(per_class_recall_png(reports / "per_class_recall.png", with_classes), "per-class recall")
    classes = _classes(with_classes)
    doc.table(
        ["model", *classes],
        [[n] + [_pct(e["scores"]["test"]["per_class"][c]["recall"]) for c in classes] for n, e in with_classes.items()],
    )


def _curves(doc: Doc, reports: Path, train_dir: Path) -> None:
    from .plots import training_curves

    doc.h("Training curves")
    curves = {p.name[: -len("_curve.csv")]: _curve(p) for p in sorted(train_dir.glob("*_curve.csv"))}
    if not curves:
        doc.p(f"(no {train_dir}/*_curve.csv)")
        return
    doc.image(training_curves(reports / "training_curves.png", curves), "training curves")


def _detection(doc: Doc, lm: dict | None) -> None:
    doc.h("MediaPipe face-mesh detection rates")
    if not lm:
        doc.p("(metrics/landmarks.json is missing)")
        return
    doc.p(
        f"Faces found in {lm['all']['found']:,} of {lm['all']['images']:,} images ({_pct(lm['all']['rate'])}); "
        "a 3D model answers the others with its training class prior."
    )
    rows, classes = [], list(lm["per_class"])  # the source's classes (FER2013's, or a folder's)
    for split in SPLITS:
        per_class = lm["per_split_class"][split]
        rows.append(
            [SPLIT_NAMES[split], _pct(lm["per_split"][split]["rate"])] + [_pct(per_class[c]["rate"]) for c in classes]
        )
    rows.append(["all", _pct(lm["all"]["rate"])] + [_pct(lm["per_class"][c]["rate"]) for c in classes])
    doc.table(["split", "all classes", *classes], rows)
    attempts = lm.get("found_by_attempt") or []
    if attempts:
        doc.table(
            ["attempt", "pad", "fill", "scale", "contrast", "faces found"],
            [
                [
                    str(a["attempt"]),
                    str(a["pad"]),
                    a["fill"],
                    str(a["scale"]),
                    str(a["contrast"]).lower(),
                    f"{a['found']:,}",
                ]
                for a in attempts
            ],
        )


def _timings(doc: Doc, metrics: Path, summary: dict | None, evals: dict[str, dict]) -> None:
    doc.h("Timings")
    stages = [
        ("download", "data.json", None),
        ("landmarks", "landmarks.json", "images_per_second"),
        ("meshes", "meshes.json", None),
        ("voxelize", "voxels.json", "faces_per_second"),
    ]
    rows = []
    for stage, name, rate in stages:
        m = _json(metrics / name) or {}
        rows.append([stage, _num(m.get("seconds")), _num(m.get(rate)) + (" items/s" if rate and m.get(rate) else "")])
    rows.append(["evaluate (scoring)", _num((summary or {}).get("seconds")), "–"])
    doc.table(["stage", "seconds", "throughput"], rows)
    train = _ordered({p.stem: _json(p) for p in sorted((metrics / "train").glob("*.json"))}, evals)
    if train:
        doc.table(
            [
                "model",
                "family",
                "parameters",
                "epochs run",
                "best epoch",
                "train minutes",
                "s/epoch",
                "train samples/s",
                "eval images/s",
                "device",
            ],
            [
                [
                    n,
                    t.get("family", "?"),
                    _num(t.get("parameters"), "{:,}"),
                    str(t.get("epochs_run", "–")),
                    str(t.get("best_epoch", "–")),
                    _num(t.get("train_minutes"), "{:.2f}"),
                    _num(t.get("seconds_per_epoch")),
                    _num(t.get("train_samples_per_second")),
                    _num(evals.get(n, {}).get("images_per_second")),
                    str(t.get("device", "?")),
                ]
                for n, t in train.items()
            ],
        )
        total = sum(t.get("train_minutes") or 0 for t in train.values())
        doc.p(f"Training, all models: {total:.1f} minutes.")


def _shifts(doc: Doc, shifts: dict | None, evals: dict[str, dict]) -> None:
    """Accuracy under the shift suite (metrics/shifts.json), PrivateTest, one row per model."""
    doc.h("Accuracy under shift (PrivateTest)")
    if not shifts:
        doc.p("(metrics/shifts.json is missing: run `dvc repro evaluate_shifts`)")
        return
    suite = shifts["suite"]
    doc.p(
        "PrivateTest images re-taken as another camera would (params `shifts.suite`): zoom = the crop as a "
        "fraction of the face box, gamma, contrast about each image's mean, Gaussian blur sigma, unsharp "
        "amount, rotation ±degrees. 3D models see the points FaceMesh finds on the shifted image. "
        "shifted = the mean over the suite; drop = plain − shifted. With `shifts.splits: [val, test]`, "
        "PublicTest's numbers (for choosing recipes) are in metrics/shifts.json too."
    )
    models = _ordered(shifts["models"], evals)
    doc.table(
        ["model", "plain", *suite, "shifted", "drop"],
        [
            [n, *(_pct(m["test"][k]) for k in ("plain", *suite, "shifted")), _num(100 * m["test"]["drop"], "{:.1f}")]
            for n, m in models.items()
        ],
    )
    found = shifts.get("faces_found") or {}
    if found:
        doc.p(
            "Faces FaceMesh finds on the shifted PrivateTest images: "
            + ", ".join(f"{k} {_pct(v['test'])}" for k, v in found.items())
            + "."
        )


def _images(doc: Doc, title: str, paths: list[Path], text: str) -> None:
    present = [p for p in paths if p.exists()]
    if present:
        doc.h(title)
        doc.p(text)
        for p in present:
            doc.image(p, p.stem)


def build(paths: Paths) -> Doc:
    metrics, reports = paths.metrics, paths.reports
    summary = _json(paths.summary)
    evals = {p.stem: _json(p) for p in sorted(paths.eval_metrics.glob("*.json"))}
    evals = _ordered(evals, evals)
    data = _json(metrics / "data.json") or {}
    from_folder = "classes" in data  # the download stage records a folder source's own class names
    run = summary or {}
    classes = run.get("classes") or data.get("classes") or []
    labels = "the folder's" if from_folder else run.get("labels", "fer2013")
    dataset = "labelled face folder" if from_folder else "FER2013"
    doc = Doc(f"fer3d: {dataset} emotion recognition, 2D images vs 3D face meshes")
    doc.p(
        f"Data: {data.get('source', '?')}, {_num(data.get('rows'), '{:,}')} rows (limit {data.get('limit', '?')}; "
        f"0 = all); labels: {labels}, {len(classes) or '?'} classes. "
        "All numbers come from the DVC pipeline's metrics files; `dvc repro` rewrites this report."
    )
    _comparison(doc, evals, summary)
    _images(doc, "Confusion matrices", [reports / "confusion.png"], "Row-normalised (true class per row), PrivateTest.")
    _shifts(doc, _json(paths.shifts), evals)
    _per_class(doc, reports, evals)
    _curves(doc, reports, metrics / "train")
    _images(
        doc,
        "Grad-CAM (2D models)",
        sorted((reports / "gradcam").glob("*.png")),
        "Where each 2D model finds the evidence for the class it predicts, on fixed PrivateTest samples "
        "(red title: wrong prediction).",
    )
    _images(
        doc,
        "Face meshes",
        [reports / "meshes" / "samples.png"],
        "MediaPipe's 478 landmarks on sample training faces, coloured by distance from the mean face.",
    )
    _detection(doc, _json(metrics / "landmarks.json"))
    _timings(doc, metrics, summary, evals)
    return doc


def write_report(paths: Paths) -> tuple[Path, Path]:
    """reports/report.md and reports/report.html from the metrics files and the figures beside them."""
    reports = paths.reports
    doc = build(paths)
    md = save_text(reports / "report.md", to_markdown(doc, reports))
    with atomic_path(reports / "report.html") as tmp:
        tmp.write_text(to_html(doc), encoding="utf-8")
    return md, reports / "report.html"
