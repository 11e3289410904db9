#!/bin/bash
# The README's short-schedule experiment, model by model, on the 2-core AMD EPYC (fp32), alone.
cd /work/main
export PATH=/work/main/.venv/bin:$PATH FER3D_ROOT=/work/trials/short_amd FER3D_PROGRESS=0 FER3D_TRACKING=off
for m in resnet vgg landmark_mlp; do
  echo "== $m start $(date -u +%T)"
  /usr/bin/time -v python -m stages.train $m > /work/trials/short_amd/train_$m.log 2>&1
  echo "== $m end $(date -u +%T) rc=$?"
done
