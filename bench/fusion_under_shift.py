"""Fusion weights fitted on the shift suite's PublicTest beside the plain one: does choosing the
weights on faces from "other cameras" as well hold the fusion's accuracy under shift better, and at
what price in plain accuracy? (Issue 13: "use the suite to choose ..., alongside plain accuracy";
every choice on PublicTest, reported on PrivateTest.)

    python bench/fusion_under_shift.py [--run DIR] [--rows fusion,fusion_3d] [--cache FILE] [--json out.json]

For each fusion row of the run (models/fusion.json) the members' weights are fitted as the evaluate
stage fits them (fer3d.inference.fusion.fit_weights, non-negative, log-loss on PublicTest) on three
pools of PublicTest faces: `plain` (the stage's own choice), `pooled` (the plain faces and each
shifted copy once: the suite weighs 8/9) and `balanced` (the plain faces repeated once per shift:
plain and the suite weigh half each). Each fit is scored on both splits, plain and shifted (the
mean over the suite, as metrics/shifts.json), and on PrivateTest against the `plain` fit on the
same images with a 95% bootstrap interval over images (for the shifted column each image counts
its mean over the suite).

Needs a finished run: models/*.pt, models/fusion.json, metrics/probabilities.npz (the plain scores,
as evaluate_shifts reads them) and data/shift_landmarks.npz made with `shifts.splits: [val, test]`
(the default scores PrivateTest only). Every member is scored under every shift as the
evaluate_shifts stage scores it (params' device, `shifts.backend`, `train.threads`), so a call
takes about as long as that stage. --cache keeps those probabilities (a file made from FER2013:
keep it out of git) so that a second call only fits."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fer3d import params
from fer3d.config import TEST, VAL, Paths
from fer3d.data import labels as label_set
from fer3d.device import resolve_device
from fer3d.evaluation import shifts
from fer3d.evaluation.metrics import paired_difference, paired_score_difference
from fer3d.inference.fusion import Fusion, fit_weights, load_fusions
from fer3d.inference.onnx_export import bulk_classifier
from fer3d.inference.threads import fix_cpu_threads
from fer3d.io import load_npz, save_json, save_npz
from stages.evaluate_shifts import check_made_for, plain_probabilities

FITS = ("plain", "pooled", "balanced")


def suite_probabilities(paths: Paths, members: list[str]) -> dict[str, np.ndarray]:
    """Every member's probabilities on the run's shifted rows, plain first then each shift:
    {"label", "split", "found" (V, N), "shifts", and each member (V, N, C)}."""
    p = params.load(paths.params)
    suite = shifts.parse_suite(params.get(p, "shifts.suite", list), f"{paths.params}: shifts.suite")
    splits = shifts.parse_splits(params.get(p, "shifts.splits", list), f"{paths.params}: shifts.splits")
    if "val" not in splits:
        raise ValueError(
            f"{paths.params}: shifts.splits is {list(splits)}; fitting on shifted PublicTest needs val among them "
            "(`dvc exp run -S 'shifts.splits=[val,test]'`, or set it and `dvc repro evaluate_shifts`)"
        )
    fer, shifted = load_npz(paths.fer2013), load_npz(paths.shift_landmarks)
    check_made_for(paths, shifted, suite, splits)
    labels = label_set.load(paths, str(params.get(p, "data.labels", str)))
    kept = np.flatnonzero(labels.kept[shifted["rows"]])
    rows = shifted["rows"][kept]
    # one read of metrics/probabilities.npz, which also checks that its rows hold these
    plain = plain_probabilities(paths, [*members, "has_mesh"], rows)
    plain_found = plain.pop("has_mesh")
    crops = fer["images"][rows]
    # scored as the evaluate_shifts stage scores: its device, backend and thread count
    device = resolve_device(str(params.get(p, "device")))
    backend = params.get(p, "shifts.backend", str)
    threads = fix_cpu_threads(params.get(p, "train.threads", int))
    out = {
        "rows": rows,
        "models": np.array(model_digests(paths, members)),
        "label": labels.label[rows],
        "split": fer["split"][rows],
        "found": np.stack([plain_found, *(shifted["found"][i][kept] for i in range(len(suite)))]),
        "shifts": np.array([s.name for s in suite]),
    }
    for name in members:
        classifier = bulk_classifier(paths.model(name), device, backend, threads)
        versions = [plain[name]]
        for i, shift in enumerate(suite):
            points = shifted["landmarks"][i][kept].astype(np.float32)
            versions.append(
                classifier.predict_proba(crops=shift(crops, rows), points=points, has_mesh=shifted["found"][i][kept])
            )
        out[name] = np.stack(versions).astype(np.float32)
        print(f"fusion_under_shift: scored {name} under {len(suite)} shifts", file=sys.stderr)
    return out


def model_digests(paths: Paths, members: list[str]) -> list[str]:
    """name:md5 of each member's model file, so that a cache scored with other models is noticed."""
    return [f"{m}:{hashlib.md5(paths.model(m).read_bytes()).hexdigest()}" for m in members]


def check_cache(cache: Path, scored: dict, paths: Paths, members: list[str]) -> None:
    """A cache scored for another suite, other rows or other model files would answer silently wrong."""
    p = params.load(paths.params)
    suite = [s.name for s in shifts.parse_suite(params.get(p, "shifts.suite", list), f"{paths.params}: shifts.suite")]
    shifted = load_npz(paths.shift_landmarks)
    labels = label_set.load(paths, str(params.get(p, "data.labels", str)))
    rows = shifted["rows"][labels.kept[shifted["rows"]]]
    cached_models = set(scored.get("models", np.array([])).tolist())
    differs = [
        what
        for what, same in (
            ("shift suite", scored["shifts"].tolist() == suite),
            ("rows", "rows" in scored and np.array_equal(scored["rows"], rows)),
            ("model files", set(model_digests(paths, members)) <= cached_models),
        )
        if not same
    ]
    if differs:
        raise ValueError(f"--cache {cache} does not match {paths.root}: its {', '.join(differs)} differ; delete it")


def pool(fit: str, shifts_count: int) -> list[int]:
    """The versions (0 = plain, 1.. = the shifts) a fit's PublicTest pool holds, repeats included."""
    suite = list(range(1, shifts_count + 1))
    return {"plain": [0], "pooled": [0, *suite], "balanced": [0] * shifts_count + suite}[fit]


def fitted(fusion: Fusion, fit: str, scored: dict[str, np.ndarray]) -> Fusion:
    """`fusion`'s members with weights fitted on the PublicTest pool of `fit`."""
    val = scored["split"] == VAL
    versions = pool(fit, len(scored["shifts"]))
    found = scored["found"]
    members = [np.concatenate([scored[m][v][val] for v in versions]) for m in fusion.members]
    takes_part = [
        np.concatenate([found[v][val] if family == "3d" else np.ones(int(val.sum()), bool) for v in versions])
        for family in fusion.families
    ]
    weights = fit_weights(members, np.concatenate([scored["label"][val]] * len(versions)), takes_part)
    return Fusion(fusion.name, fusion.members, [float(w) for w in weights], fusion.families, fusion.prior)


def correct_per_version(fusion: Fusion, scored: dict[str, np.ndarray]) -> np.ndarray:
    """(V, N) bool: the fused answer right, per version (plain, each shift) and face."""
    return np.stack(
        [
            fusion.combine({m: scored[m][v] for m in fusion.members}, scored["found"][v]).argmax(1) == scored["label"]
            for v in range(len(scored["found"]))
        ]
    )


def row_results(fusion: Fusion, scored: dict[str, np.ndarray]) -> dict[str, dict]:
    """Each fit of one row: weights, plain and shifted accuracy on both splits, and on PrivateTest its
    difference from the `plain` fit."""
    out, correct = {}, {}
    for fit in FITS:
        row = fitted(fusion, fit, scored)
        correct[fit] = correct_per_version(row, scored)
        out[fit] = {"weights": dict(zip(row.members, (round(w, 4) for w in row.weights)))}
        for key, s in (("val", VAL), ("test", TEST)):
            where = scored["split"] == s
            out[fit][key] = {
                "plain": round(float(correct[fit][0][where].mean()), 5),
                "shifted": round(float(correct[fit][1:][:, where].mean()), 5),
            }
    test = scored["split"] == TEST
    for fit in FITS[1:]:
        a, b = correct[fit][:, test], correct["plain"][:, test]
        out[fit]["against_plain_test"] = {
            "plain": paired_difference(a[0], b[0]),
            "shifted": paired_score_difference(a[1:].mean(0), b[1:].mean(0)),
        }
    return out


def interval_text(d: dict) -> str:
    low, high = d["interval_95"]
    return f"{100 * d['difference']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def print_table(results: dict[str, dict]) -> None:
    print(
        "| row | fit | PublicTest plain | shifted | PrivateTest plain | shifted | "
        "PrivateTest plain, against `plain` | shifted, against `plain` | weights |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for name, fits in results.items():
        for fit, r in fits.items():
            against = r.get("against_plain_test")
            versus = f"{interval_text(against['plain'])} | {interval_text(against['shifted'])}" if against else "– | –"
            weights = ", ".join(f"{m} {w}" for m, w in r["weights"].items())
            print(
                f"| {name} | {fit} | {100 * r['val']['plain']:.2f} | {100 * r['val']['shifted']:.2f} | "
                f"{100 * r['test']['plain']:.2f} | {100 * r['test']['shifted']:.2f} | {versus} | {weights} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=".", help="a finished run's folder (models, metrics/probabilities.npz, data)")
    ap.add_argument("--rows", help="comma-separated fusion rows of models/fusion.json (default: all)")
    ap.add_argument("--cache", help="an .npz to keep the scored probabilities in, and to read them from next time")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    paths = Paths(args.run)
    try:
        fusions = load_fusions(paths.fusion)
        names = args.rows.split(",") if args.rows else list(fusions)
        unknown = [n for n in names if n not in fusions]
        if unknown:
            sys.exit(f"--rows {unknown}: not rows of {paths.fusion} ({', '.join(fusions)})")
        members = sorted({m for n in names for m in fusions[n].members})
        cache = Path(args.cache) if args.cache else None
        scored = dict(load_npz(cache)) if cache and cache.exists() else suite_probabilities(paths, members)
        missing = [m for m in members if m not in scored]
        if missing:
            sys.exit(f"--cache {cache}: holds no probabilities of {missing}; delete it to score them")
        if cache and cache.exists():
            check_cache(cache, scored, paths, members)
        if cache and not cache.exists():
            save_npz(cache, **scored)
    except (params.ParamError, ValueError, FileNotFoundError) as e:
        sys.exit(f"fusion_under_shift: {e}")
    results = {n: row_results(fusions[n], scored) for n in names}
    print_table(results)
    if args.json:
        save_json(args.json, results)


if __name__ == "__main__":
    main()
