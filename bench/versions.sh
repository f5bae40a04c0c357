#!/usr/bin/env bash
# Runs heap_bench.py on every supported CPython this machine has (the interpreters .ci/run
# tests), each with heaplens' release wheel from dist/ (make them with .ci/wheels) and objgraph,
# guppy3 and Pympler left out unless asked for:
#
#   .ci/wheels && bench/versions.sh --objects 1e6 5e6
#
# Arguments go to heap_bench.py (default: --objects 1e6 --no-slow-peers). Each interpreter's
# report is printed under its name; results also land in bench/results/ as heap_bench writes
# them, overwritten by the next interpreter (copy them between runs to keep them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/interpreters.sh
source .ci/interpreters.sh
args=("$@")
[ "${#args[@]}" -gt 0 ] || args=(--objects 1e6 --no-slow-peers)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in "${!names[@]}"; do
    name=${names[$i]}
    tag=$("${pythons[$i]}" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
    wheel=$(ls dist/heaplens-*-"$tag"-*.whl 2>/dev/null | tail -n1 || true)
    if [ -z "$wheel" ]; then
        echo "== CPython $name: no wheel for $tag in dist/ (run .ci/wheels)"
        continue
    fi
    echo "== CPython $name ($("${pythons[$i]}" --version 2>&1)), $(basename "$wheel")"
    make_venv "$i" "$work/$name"
    "$work/$name/bin/python" -m pip install --quiet "$wheel" objgraph
    "$work/$name/bin/python" bench/heap_bench.py "${args[@]}"
done
