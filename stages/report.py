"""report: figures and the one-page report from the metrics files (no model is re-scored) →
reports/confusion.png, per_class_recall.png, training_curves.png, gradcam/<2D model>.png and
reports/report.{md,html}. Grad-CAM reads the 2D model files and a few PrivateTest images."""

import json
import sys

import numpy as np

from fer3d import params
from fer3d.config import Paths
from fer3d.data import labels as label_set
from fer3d.inference import Classifier
from fer3d.inference.threads import fix_cpu_threads
from fer3d.io import load_npz
from fer3d.reporting import gradcam, plots, report


def main() -> None:
    p, paths = params.load(), Paths()
    n_gradcam = params.positive(p, "report.gradcam_samples", int, allow_zero=True)
    fix_cpu_threads(params.get(p, "train.threads", int))  # the Grad-CAM images' bits, as evaluate's
    evals = {f.stem: json.loads(f.read_text()) for f in sorted(paths.eval_metrics.glob("*.json"))}
    if not evals:
        raise FileNotFoundError(f"{paths.eval_metrics}: no metrics; run the evaluate stage first")
    plots.confusion_grid(
        paths.reports / "confusion.png",
        {n: e["scores"]["test"]["confusion"] for n, e in evals.items()},
        list(next(iter(evals.values()))["scores"]["test"]["per_class"]),  # the label set's classes
    )
    image_models = [Classifier.from_file(paths.model(n)) for n in params.models_of_family(p, "2d")]
    if n_gradcam:
        fer = load_npz(paths.fer2013)
        labels = label_set.load(paths, str(params.get(p, "data.labels", str)))  # what the models were scored on
        split = np.where(labels.kept, fer["split"], -1)
        images, label = fer["images"], labels.label
        gradcam.gradcam_samples(paths.gradcam, image_models, images, label, split, labels.classes, n_gradcam)
    md, page = report.write_report(paths)
    print(f"report: {md} and {page}")


if __name__ == "__main__":
    try:
        main()
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"report: {e}")
