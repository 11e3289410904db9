"""evaluate: every model on the same test images → metrics/eval/<model>.json, metrics/summary.json,
metrics/confusion/<model>.csv (for `dvc plots`), metrics/comparison.md and reports/ (PNGs)."""
import csv
import io
import sys
import time

import numpy as np

from fer3d import EMOTIONS, evaluate, features, params, plots
from fer3d.artifacts import load_model
from fer3d.io import load_npz, save_json, save_text
from fer3d.train import predict_proba, resolve_device


def main() -> None:
    p = params.load()
    root = params.repo_root()
    fallback = params.get(p, "evaluate.fallback_3d", str)
    if fallback not in ("prior", "2d"):
        raise params.ParamError(f"params.yaml: evaluate.fallback_3d must be 'prior' or '2d', found {fallback!r}")
    device = resolve_device(str(params.get(p, "device")))
    tta = bool(params.get(p, "train.tta_flip"))
    start = time.perf_counter()
    fer = load_npz(root / "data" / "fer2013.npz")
    found = load_npz(root / "data" / "landmarks.npz")["found"]
    label, split = fer["label"].astype(np.int64), fer["split"]
    ferplus = root / params.get(p, "data.shared_dir", str) / "fer2013new.csv"
    sets = evaluate.subsets(fer["images"], split, fer["row"], found, ferplus)
    scored = np.flatnonzero(split >= evaluate.VAL)  # validation (for selection/fusion) + test
    val = np.flatnonzero(split == evaluate.VAL)
    prior = np.bincount(label[split == 0], minlength=len(EMOTIONS)) / max(1, (split == 0).sum())

    probas, info, feature_sets = {}, {}, {}
    for name in params.get(p, "models", dict):
        model, meta = load_model(root / "models" / f"{name}.pt", device)
        kind = meta["input"]
        if kind not in feature_sets:
            feature_sets[kind] = features.load(kind, root)
        fs = feature_sets[kind]
        proba = np.zeros((len(label), len(EMOTIONS)), np.float32)
        usable = scored[fs.usable[scored]]
        t = time.perf_counter()
        proba[usable] = predict_proba(model, fs, usable, device, tta_flip=tta)
        probas[name] = proba
        info[name] = {"family": meta["family"], "input": kind, "usable": fs.usable,
                      "images_per_second": round(len(usable) / (time.perf_counter() - t), 1)}

    def val_acc(proba):
        return float((proba[val].argmax(1) == label[val]).mean())

    best_2d = max((n for n in probas if info[n]["family"] == "2d"), key=lambda n: val_acc(probas[n]), default=None)
    if fallback == "2d" and best_2d is None:
        raise params.ParamError("evaluate.fallback_3d is '2d' but no 2D model is configured")
    for name, proba in probas.items():
        if info[name]["family"] == "3d":
            probas[name] = evaluate.fill_misses(proba, info[name]["usable"], probas[best_2d] if fallback == "2d" else prior)

    results = {name: {"family": info[name]["family"], "input": info[name]["input"], "val_acc": round(val_acc(pr), 5),
                      "images_per_second": info[name]["images_per_second"],
                      "scores": evaluate.score_model(pr, label, sets)} for name, pr in probas.items()}
    for row, members in fusion_members(params.get(p, "evaluate.fusion", dict), info).items():
        # a 3D model votes only where MediaPipe found a face; elsewhere the others decide alone
        takes_part = [found if info[m]["family"] == "3d" else np.ones_like(found) for m in members]
        weights = evaluate.fit_fusion_weights([probas[m][val] for m in members], label[val],
                                              [t[val] for t in takes_part])
        fused = evaluate.fuse([probas[m] for m in members], weights, takes_part)
        probas[row] = fused
        results[row] = {"family": "fusion", "input": " + ".join(members), "val_acc": round(val_acc(fused), 5),
                        "models": members, "weights": [round(float(w), 4) for w in weights],
                        "scores": evaluate.score_model(fused, label, sets)}

    for name, r in results.items():
        save_json(root / "metrics" / "eval" / f"{name}.json", r)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["actual", "predicted"])
        w.writerows((EMOTIONS[a], EMOTIONS[b]) for a, b in zip(label[sets.test], probas[name][sets.test].argmax(1)))
        save_text(root / "metrics" / "confusion" / f"{name}.csv", out.getvalue())
    best = lambda fam: max((n for n in results if results[n]["family"] == fam),  # noqa: E731
                           key=lambda n: results[n]["val_acc"], default=None)
    summary = {"protocol": "train=Training, select=PublicTest, report=PrivateTest", "fallback_3d": fallback,
               "subset_sizes": sets.sizes(),
               "best_2d": best("2d"), "best_3d": best("3d"),
               "test_acc": {n: r["scores"]["test"]["accuracy"] for n, r in results.items()},
               "found_only_acc": {n: r["scores"]["found_only"]["accuracy"] for n, r in results.items()},
               "seconds": round(time.perf_counter() - start, 1)}
    summary["fusions"] = {n: {"models": r["models"], "weights": r["weights"]}
                          for n, r in results.items() if r["family"] == "fusion"}
    save_json(root / "metrics" / "summary.json", summary)
    save_text(root / "metrics" / "comparison.md", evaluate.comparison_markdown(results, sets.sizes(), fallback))
    plots.confusion_grid(root / "reports" / "confusion.png", {n: r["scores"]["test"]["confusion"] for n, r in results.items()})
    print(evaluate.comparison_markdown(results, sets.sizes(), fallback))
    from fer3d import gradcam, report  # Grad-CAM sample sheets and the one-page report, after the metrics

    n_gradcam = params.positive(p, "evaluate.gradcam_samples", int, allow_zero=True)
    gradcam.gradcam_samples(root, [n for n in results if results[n]["family"] == "2d"], n_gradcam)
    md, page = report.write_report(root)
    print(f"evaluate: report in {md} and {page}")


def fusion_members(spec: dict, info: dict) -> dict[str, list[str]]:
    """params evaluate.fusion (row name -> all | 2d | 3d | [model, ...]) -> row -> member models."""
    out = {}
    for row, members in spec.items():
        if members in ("all", "2d", "3d"):
            chosen = [n for n in info if members == "all" or info[n]["family"] == members]
        elif isinstance(members, list) and members and all(m in info for m in members):
            chosen = list(members)
        else:
            raise params.ParamError(f"params.yaml: evaluate.fusion.{row} must be all, 2d, 3d or a list of "
                                    f"configured models ({', '.join(info)}), found {members!r}")
        if row in info:
            raise params.ParamError(f"params.yaml: evaluate.fusion.{row}: the name is a model's; pick another")
        if len(chosen) >= 2:  # one model is no fusion (e.g. a params set with a single 2D model)
            out[row] = chosen
    return out


if __name__ == "__main__":
    try:
        main()
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"evaluate: {e}")
