#!/usr/bin/env bash
# Time `dvc push` and `dvc pull` of every pipeline output to a local S3 server (moto), as a
# stand-in for DagsHub's S3 endpoint. Run from the project root after `dvc repro`.
set -euo pipefail
port=${PORT:-5055}
work=$(mktemp -d)
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
moto_server -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port" >/dev/null && break; sleep 0.2; done
python - "$port" <<'PY'
import sys, boto3
boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1").create_bucket(Bucket="bench")
PY
dvc remote add -f --local bench s3://bench/dvc >/dev/null
dvc remote modify --local bench endpointurl "http://127.0.0.1:$port"
size=$(python -c "
import yaml; lock = yaml.safe_load(open('dvc.lock'))
print(sum(o.get('size', 0) for s in lock['stages'].values() for o in s.get('outs', []) if not o['path'].startswith('metrics/')))")
start=$(date +%s.%N); dvc push -q -r bench; push=$(echo "$(date +%s.%N) - $start" | bc)
mv .dvc/cache "$work/cache"
start=$(date +%s.%N); dvc pull -q -r bench --force; pull=$(echo "$(date +%s.%N) - $start" | bc)
rm -rf .dvc/cache && mv "$work/cache" .dvc/cache
dvc remote remove --local bench >/dev/null
printf '| cache pushed | dvc push | dvc pull (empty cache) |\n|---|---|---|\n| %.0f MB | %.1f s | %.1f s |\n' "$(echo "$size/1000000" | bc)" "$push" "$pull"
