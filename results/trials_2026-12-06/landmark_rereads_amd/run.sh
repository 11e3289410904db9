#!/bin/bash
# 3D models under blur: FaceMesh readings of blurred training crops mixed into landmark_mlp's training
# rows (100 epochs, against /work/trials/short_amd's landmark_mlp at 100). The full AMD run is paused meanwhile.
set -u
PG=31516
cd /work/main
export PATH=/work/main/.venv/bin:$PATH FER3D_PROGRESS=0 FER3D_TRACKING=off PYTHONPATH=/work/main
trap 'kill -CONT -- -$PG; echo "== resumed full run $(date -u +%T)"' EXIT
echo "== full run still paused $(date -u +%T)"
T=/work/trials/lm_blur
# shift_landmarks val: done 14:53-14:56 (214 s)
echo "== reread blur train $(date -u +%T)"; python $T/reread.py $T/train_blur.npz blur:1 > $T/reread_blur.log 2>&1 || exit 1
echo "== mix $(date -u +%T)"; python $T/mix.py $T/train_blur.npz $T/mix/data/landmarks.npz 0.5 0 > $T/mix.log 2>&1 || exit 1
echo "== train mix $(date -u +%T)"; FER3D_ROOT=$T/mix /usr/bin/time -v python -m stages.train landmark_mlp > $T/train_mix.log 2>&1 || exit 1
echo "== score $(date -u +%T)"; cd $T && python score.py base100=/work/trials/short_amd/models/landmark_mlp.pt mix100=$T/mix/models/landmark_mlp.pt > $T/score.log 2>&1
echo "== done $(date -u +%T)"
