#!/bin/bash
# p = 0.5: each epoch draws which training rows take the blurred reading (dynamic), 100 epochs
source "$(dirname "$0")/preamble.sh"
echo "== train dyn50 $(date -u +%T)"; FER3D_ROOT=$T/dyn50 /usr/bin/time -v python $T/train_reread.py $T/train_blur.npz 0.5 > $T/train_dyn50.log 2>&1 || exit 1
echo "== score $(date -u +%T)"; cd $T && python score.py base100=/work/trials/short_amd/models/landmark_mlp.pt dyn50=$T/dyn50/models/landmark_mlp.pt > $T/score_dyn50.log 2>&1
echo "== done $(date -u +%T)"
