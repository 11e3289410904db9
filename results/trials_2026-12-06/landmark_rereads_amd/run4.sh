#!/bin/bash
# p = 0.2 of the training rows take the blurred reading (static), 100 epochs; the full run paused meanwhile
set -u
PG=31516
cd /work/main
export PATH=/work/main/.venv/bin:$PATH FER3D_PROGRESS=0 FER3D_TRACKING=off PYTHONPATH=/work/main
trap 'kill -CONT -- -$PG; echo "== resumed full run $(date -u +%T)"' EXIT
kill -STOP -- -$PG; echo "== paused full run $(date -u +%T)"
T=/work/trials/lm_blur
:
echo "== train dyn50 $(date -u +%T)"; FER3D_ROOT=$T/dyn50 /usr/bin/time -v python $T/train_reread.py $T/train_blur.npz 0.5 > $T/train_dyn50.log 2>&1 || exit 1
echo "== score $(date -u +%T)"; cd $T && python score.py base100=/work/trials/short_amd/models/landmark_mlp.pt dyn50=$T/dyn50/models/landmark_mlp.pt > $T/score_dyn50.log 2>&1
echo "== done $(date -u +%T)"
