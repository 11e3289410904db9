#!/bin/bash
# p = 0.2 of the training rows take the blurred reading (static), 100 epochs; the full run paused meanwhile
source "$(dirname "$0")/preamble.sh"
python $T/mix.py $T/train_blur.npz $T/mix20/data/landmarks.npz 0.2 0 > $T/mix20.log 2>&1 || exit 1
echo "== train mix20 $(date -u +%T)"; FER3D_ROOT=$T/mix20 /usr/bin/time -v python -m stages.train landmark_mlp > $T/train_mix20.log 2>&1 || exit 1
echo "== score $(date -u +%T)"; cd $T && python score.py base100=/work/trials/short_amd/models/landmark_mlp.pt mix20=$T/mix20/models/landmark_mlp.pt > $T/score20.log 2>&1
echo "== done $(date -u +%T)"
