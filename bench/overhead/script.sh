#!/usr/bin/env bash
# What a CI job would do by hand for the same matrix as matrix.yaml: for each variant, K at a
# time, `docker compose up -d --wait`, the checks, `logs`, `down -v`.
# Usage: script.sh OUT_DIR RUN_LABEL JOBS VARIANT...   (VARIANT: FLAVOR-SIZE, e.g. a-s)
# Writes OUT_DIR/<variant>/{times,junit.xml,tests.log,logs/all.log,exit}; `times` holds one
# "<phase> <epoch seconds>" line as each phase starts (up, tests, logs, down, end).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export here out=$1 run_label=$2
jobs=$3
shift 3

one_variant() {
    local variant=$1 dir project code=0
    export FLAVOR=${variant%-*} SIZE=${variant#*-} RUN_LABEL=$run_label
    dir=$out/$variant
    project=ovh-$variant-$run_label
    mkdir -p "$dir/logs"
    stamp() { echo "$1 $(date +%s.%N)" >>"$dir/times"; }
    dc() { docker compose -p "$project" -f "$here/compose.yaml" "$@"; }
    stamp up
    if dc up -d --wait >"$dir/up.log" 2>&1; then
        stamp tests
        ECHO_ADDR=$(dc port echo 7000) KV_ADDR=$(dc port kv 7000) EXPECT=$variant \
            JUNIT=$dir/junit.xml python3 "$here/checks.py" >"$dir/tests.log" 2>&1 || code=$?
    else
        code=$?
    fi
    stamp logs
    dc logs --no-color >"$dir/logs/all.log" 2>&1 || true
    stamp down
    dc down -v --remove-orphans >"$dir/down.log" 2>&1
    stamp end
    echo "$code" >"$dir/exit"
}
export -f one_variant

printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'one_variant "$1"' _ {}
