# Sourced by run3.sh, run4.sh and run5.sh: the environment of a trial and the full run held stopped
# (process group PG) while it trains, resumed however the script ends.
set -u
PG=31516
cd /work/main
export PATH=/work/main/.venv/bin:$PATH FER3D_PROGRESS=0 FER3D_TRACKING=off PYTHONPATH=/work/main
trap 'kill -CONT -- -$PG; echo "== resumed full run $(date -u +%T)"' EXIT
kill -STOP -- -$PG; echo "== paused full run $(date -u +%T)"
T=/work/trials/lm_blur
