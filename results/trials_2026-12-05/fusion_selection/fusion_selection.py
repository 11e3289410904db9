"""Issue 13 trial (2026-12-05): choosing the fusion's members instead of fitting weights for all of
them. The committed `fusion` row fits 8 non-negative weights by cross-entropy on PublicTest; a pair
(resnet + landmark_mlp) scores higher on PublicTest than all eight. Here each candidate member set is
judged by 5-fold cross-validation on PublicTest (weights fitted on 4 folds, accuracy on the 5th), as
an evaluate stage could choose it, and reported on PrivateTest after fitting on all of PublicTest:
every set that contains resnet (2^7 = 128), and greedy forward selection by cross-validated accuracy.
On the committed run's stored probabilities (metrics/probabilities.npz).

    python results/trials_2026-12-05/fusion_selection/fusion_selection.py     # from the repo root
"""

import itertools
import sys

import numpy as np
import torch

sys.path.insert(0, "bench")
import fusion_members  # bench/: a finished run's stored probabilities

from fer3d.config import TEST, VAL, Paths
from fer3d.inference.fusion import fit_weights, fuse

FOLDS = 5


def main() -> None:
    torch.set_num_threads(1)
    run = fusion_members.stored_run(Paths("."))
    stored, has_mesh, fusion = run.probas, run.has_mesh.astype(bool), run.fusions["fusion"]
    label, split = run.labels.label[run.rows].astype(np.int64), run.split
    family = dict(zip(fusion.members, fusion.families))
    takes = {m: (has_mesh if family[m] == "3d" else np.ones_like(has_mesh)) for m in fusion.members}
    val, test = np.flatnonzero(split == VAL), np.flatnonzero(split == TEST)
    fold = np.random.default_rng(0).permutation(len(val)) % FOLDS

    def accuracy(members, fit_rows, score_rows) -> float:
        w = fit_weights([stored[m][fit_rows] for m in members], label[fit_rows], [takes[m][fit_rows] for m in members])
        p = fuse([stored[m][score_rows] for m in members], w, [takes[m][score_rows] for m in members])
        return float((p.argmax(1) == label[score_rows]).mean())

    def cross_validated(members) -> float:
        return float(np.mean([accuracy(members, val[fold != k], val[fold == k]) for k in range(FOLDS)]))

    results = []
    others = [m for m in fusion.members if m != "resnet"]
    for r in range(len(others) + 1):
        for extra in itertools.combinations(others, r):
            members = ["resnet", *extra]
            scores = (cross_validated(members), accuracy(members, val, val), accuracy(members, val, test))
            results.append((*scores, members))
    results.sort(key=lambda t: -t[0])
    print("| members | PublicTest 5-fold | PublicTest (fit on all) | PrivateTest |")
    print("|---|---|---|---|")
    everything = next(t for t in results if len(t[3]) == len(fusion.members))
    for cv, v, t, members in [*results[:10], everything]:
        print(f"| {', '.join(members)} | {100 * cv:.2f} | {100 * v:.2f} | {100 * t:.2f} |")
    rank = [t[3] for t in results].index(everything[3]) + 1
    print(f"\nall eight rank {rank} of {len(results)} by cross-validated accuracy")
    # greedy forward selection from resnet, adding the member that raises CV accuracy most
    chosen, best = ["resnet"], cross_validated(["resnet"])
    while True:
        trials = [(cross_validated([*chosen, m]), m) for m in fusion.members if m not in chosen]
        if not trials or max(trials)[0] <= best:
            break
        best, m = max(trials)
        chosen.append(m)
    print(f"greedy: {chosen}: PublicTest 5-fold {100 * best:.2f}, PrivateTest {100 * accuracy(chosen, val, test):.2f}")


if __name__ == "__main__":
    main()
