#!/usr/bin/env bash
# Issue 13's figures on a machine of many cores, in one run that fits a device machine's loan
# (16 cores, 128 GB, Python 3.12, no network, 10 minutes a command): the walk, `analyze()` and
# the "what grew and why" loop by thread count at 10M objects (loop_bench.py, objgraph's loop
# beside), then heap_bench.py on a heap of 100M objects (heaplens alone: objgraph's steps would
# take most of the loan there).
#
# Here, first (the wheel for the machine's CPython, and objgraph's, into ignored folders):
#
#   HEAPLENS_WHEELS_ONLY=3.12.1 .ci/wheels
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl objgraph
#
# There, with dist and .whl carried (each report is also written under $OUT, as it goes):
#
#   bash bench/device.sh
#
# LOOP_OBJECTS and BIG_OBJECTS change the two sizes (a trial here: LOOP_OBJECTS=1e6
# BIG_OBJECTS=1e6); PYTHON the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
mkdir -p "$out"
python=${PYTHON:-python3}
tag=$("$python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
wheel=$(ls dist/heaplens-*-"$tag"-*.whl 2>/dev/null | tail -n1 || true)
if [ -z "$wheel" ]; then
    echo "no heaplens wheel for $tag in dist/ (make it with .ci/wheels)" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip install --quiet --no-index --no-deps --no-compile --target "$work/heaplens" "$wheel"
peers=""
if ls .whl/objgraph-*.whl >/dev/null 2>&1; then
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --target "$work/peers" .whl/objgraph-*.whl
    peers="$work/peers"
fi
export PYTHONUNBUFFERED=1
cores=$(nproc)
threads=(1 2)
for t in 4 8 16 32 64; do
    if [ "$t" -lt "$cores" ]; then threads+=("$t"); fi
done
if [ "$cores" -gt 2 ]; then threads+=("$cores"); fi
echo "$("$python" --version 2>&1), $cores cores, $(basename "$wheel"), threads ${threads[*]}" | tee "$out/device.txt"

loop_args=(--objects "${LOOP_OBJECTS:-10e6}" --threads "${threads[@]}")
[ -n "$peers" ] || loop_args+=(--no-objgraph)
PYTHONPATH="$work/heaplens${peers:+:$peers}" timeout 240 "$python" bench/loop_bench.py \
    "${loop_args[@]}" 2>&1 | tee "$out/loop_bench.txt" || echo "loop_bench.py: exit $?" | tee -a "$out/device.txt"

PYTHONPATH="$work/heaplens" timeout 330 "$python" bench/heap_bench.py \
    --objects "${BIG_OBJECTS:-100e6}" --no-slow-peers 2>&1 | tee "$out/heap_bench.txt" \
    || echo "heap_bench.py: exit $?" | tee -a "$out/device.txt"
if [ "$out" != bench/results ]; then
    cp bench/results/[0-9]*.json "$out"/ 2>/dev/null || true
fi
