#!/bin/bash
# the reallocated short schedules, alone on the machine
cd /work/amd_short
export PATH=/work/main/.venv/bin:$PATH
export FER3D_PROGRESS=0
date -u
/usr/bin/time -v dvc exp run -n amd-90-realloc \
  -S models.resnet.epochs=18 -S models.resnet.tta_shift=0 \
  -S models.cnn.epochs=1 -S models.vgg.epochs=1 -S models.landmark_mlp.epochs=80 \
  -S models.landmark_cnn.epochs=1 -S models.distance_cnn.epochs=1 \
  -S models.voxel_cnn.epochs=1 -S models.mesh_gnn.epochs=1 -S "shifts.splits=[test]"
echo "rc=$?"
date -u
