#!/bin/bash
# seed 43: the baseline (100 epochs) and dynamic blurred re-reading p 0.5, for the seed spread; the full run paused meanwhile
source "$(dirname "$0")/preamble.sh"
echo "== train base43 $(date -u +%T)"; FER3D_ROOT=$T/base43 python -m stages.train landmark_mlp > $T/train_base43.log 2>&1 || exit 1
echo "== train dyn50s43 $(date -u +%T)"; FER3D_ROOT=$T/dyn50s43 python $T/train_reread.py $T/train_blur.npz 0.5 > $T/train_dyn50s43.log 2>&1 || exit 1
echo "== score $(date -u +%T)"; cd $T && python score.py base43=$T/base43/models/landmark_mlp.pt dyn50s43=$T/dyn50s43/models/landmark_mlp.pt > $T/score_s43.log 2>&1
echo "== done $(date -u +%T)"
