#!/bin/bash
# `make repro-short`, timed, on a clean clone with an empty DVC cache, alone on the machine
cd /work/short48   # git clone of /work/main at ce760ab; `make install` run before, outside the timing
export FER3D_PROGRESS=0
date -u
/usr/bin/time -v make repro-short SHORT_NAME=amd-short-49
echo "rc=$?"
date -u
