#!/bin/bash
cd /work/amd_short
export PATH=/work/main/.venv/bin:$PATH
export FER3D_PROGRESS=0
date -u
/usr/bin/time -v dvc exp run -n amd-90 \
  -S models.resnet.epochs=12 -S models.resnet.tta_shift=0 \
  -S models.cnn.epochs=5 -S models.vgg.epochs=1 -S models.landmark_mlp.epochs=80 \
  -S models.landmark_cnn.epochs=10 -S models.distance_cnn.epochs=10 \
  -S models.voxel_cnn.epochs=1 -S models.mesh_gnn.epochs=10
echo "rc=$?"
date -u
