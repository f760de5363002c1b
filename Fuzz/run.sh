#!/bin/sh
# Runs each libFuzzer target for SECONDS from its seeds (make fuzz, make fuzz-smoke).
# What a run learns goes to .build-fuzz/corpus/<target>/ (the seeds in Fuzz/corpus/ stay as
# committed); a crash leaves its input in .build-fuzz/artifacts/ and fails the run, after
# every target has had its turn.
# Usage: Fuzz/run.sh SECONDS TARGET…
set -u
seconds=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/.build-fuzz
failed=""
for target in "$@"; do
    mkdir -p "$out/corpus/$target" "$out/artifacts"
    log=$out/$target.log
    "$out/debug/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$target-" \
        "$out/corpus/$target" "$root/Fuzz/corpus/$target" >"$log" 2>&1
    code=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ "$code" -eq 0 ]; then
        echo "fuzz $target: ${runs:-?} runs in ${seconds}s, no crash"
    else
        echo "fuzz $target: FAILED (exit $code) after ${runs:-?} runs; see $log and $out/artifacts/"
        grep -m 5 -E 'ERROR|Fatal error|SUMMARY|Test unit written' "$log"
        failed="$failed $target"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: crashes in$failed" >&2
    exit 1
fi
