#!/bin/bash
cd /work/amd_short
export PATH=/work/main/.venv/bin:$PATH FER3D_PROGRESS=0
date -u
/usr/bin/time -v python -m stages.shift_landmarks 2>&1 | grep -vE 'absl|XNNPACK|inference_feedback|landmark_projection|^W0000|^I0000'
date -u
/usr/bin/time -v python /work/main/bench/fusion_under_shift.py --run . --cache /work/logs/fus_cache.npz --json /work/logs/fusion_under_shift.json
echo rc=$?
date -u
