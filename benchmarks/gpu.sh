#!/usr/bin/env bash
# Every phase of benchmarks/gpu.py in its own process under its own timeout; the whole run stays under
# 8 minutes. Output: one JSON line per phase in ${OUT:-out}/gpu.jsonl (and on stdout).
#   bash benchmarks/gpu.sh            # on a machine with a CUDA device
#   bash benchmarks/gpu.sh --dry-run  # on the CPU, the CUDA kernel in numba's simulator, tiny sizes
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
OUT_DIR="${OUT:-out}"
mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/gpu.jsonl"
: > "$RESULTS"
status=0
for phase in equality kernel torch graph; do
  limit=150
  [ "$phase" = equality ] && limit=90
  if line=$(timeout "$limit" "$PYTHON" benchmarks/gpu.py --phase "$phase" "$@" | tail -n 1); then
    echo "$line" | tee -a "$RESULTS"
  else
    code=$?
    echo "{\"phase\": \"$phase\", \"failed\": \"exit $code (124: over its ${limit} s)\"}" | tee -a "$RESULTS"
    status=1
  fi
done
exit $status
