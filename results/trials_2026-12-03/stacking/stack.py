"""Trial (issue 13, 2026-12-03): a stacked fusion — multinomial logistic regression on every model's
log-probabilities and has_mesh, fitted on PublicTest — against the pipeline's log-linear fusion
(fer3d.inference.fusion.fit_weights), both judged by 5-fold cross-validation on PublicTest (the
split that may choose) and by PrivateTest after fitting on all of PublicTest.

    python results/trials_2026-12-03/stacking/stack.py     # from a finished run's root
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from fer3d.config import TEST, VAL
from fer3d.inference.fusion import fit_weights, fuse

MODELS = ["cnn", "resnet", "vgg", "landmark_mlp", "landmark_cnn", "distance_cnn", "voxel_cnn", "mesh_gnn"]
THREE_D = {"landmark_mlp", "landmark_cnn", "distance_cnn", "voxel_cnn", "mesh_gnn"}


def log_linear(probas, has_mesh, y, fit, score) -> np.ndarray:
    takes = [has_mesh if m in THREE_D else np.ones_like(has_mesh) for m in MODELS]
    w = fit_weights([probas[m][fit] for m in MODELS], y[fit], [t[fit] for t in takes])
    return fuse([probas[m][score] for m in MODELS], w, [t[score] for t in takes]).argmax(1)


def main() -> None:
    stored, fer = np.load("metrics/probabilities.npz"), np.load("data/fer2013.npz")
    rows, has_mesh = stored["rows"], stored["has_mesh"].astype(bool)
    y, split = fer["label"][rows].astype(int), fer["split"][rows]
    probas = {m: stored[m] for m in MODELS}
    features = np.concatenate([np.log(np.clip(probas[m], 1e-7, 1)) for m in MODELS] + [has_mesh[:, None]], 1)
    val, test = np.flatnonzero(split == VAL), np.flatnonzero(split == TEST)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(val, y[val]))

    cv = np.concatenate([log_linear(probas, has_mesh, y, val[a], val[b]) == y[val[b]] for a, b in folds])
    full = log_linear(probas, has_mesh, y, val, test) == y[test]
    print(
        f"log-linear (the pipeline's): cross-validated PublicTest {100 * cv.mean():.2f}%,",
        f"PrivateTest {100 * full.mean():.2f}%",
    )
    for c in (0.003, 0.01, 0.03, 0.1, 1.0):
        hits = []
        for a, b in folds:
            model = LogisticRegression(C=c, max_iter=5000).fit(features[val[a]], y[val[a]])
            hits.append(model.predict(features[val[b]]) == y[val[b]])
        model = LogisticRegression(C=c, max_iter=5000).fit(features[val], y[val])
        test_acc = (model.predict(features[test]) == y[test]).mean()
        print(
            f"stacked, C={c}: cross-validated PublicTest {100 * np.concatenate(hits).mean():.2f}%,",
            f"PrivateTest {100 * test_acc:.2f}%",
        )


if __name__ == "__main__":
    main()
