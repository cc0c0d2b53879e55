#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60) and prints, per
# target, the executions, the coverage libFuzzer reports and any crash.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain it sets
# RUSTC_BOOTSTRAP=1 so cargo-fuzz's -Z sanitizer flags are accepted; set
# FUZZ_TOOLCHAIN=nightly to use a nightly instead. Extra libFuzzer flags can be passed
# in FUZZ_ARGS (e.g. FUZZ_ARGS="-jobs=4 -workers=4"). Logs go to fuzz/logs/<target>.log,
# crashes to fuzz/artifacts/<target>/; new corpus entries stay in fuzz/corpus/<target>/
# (only the committed seed-* files are tracked).
set -u
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(wire stack packetdrill)
fi
if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    echo "(without it, 'cd fuzz && SEQACK_FUZZ_RANDOM=100000 cargo test --release' replays the corpus and random inputs)" >&2
    exit 2
fi
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    fuzz=(cargo "+$FUZZ_TOOLCHAIN" fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
mkdir -p logs
failed=0
for t in "${targets[@]}"; do
    log="logs/$t.log"
    # shellcheck disable=SC2086
    "${fuzz[@]}" run "$t" -- -max_total_time="$secs" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
    if [ "$execs" = 0 ]; then
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    fi
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "$t: ${secs}s, ${execs:-?} executions, ${cov:-no coverage line}, ${corpus:-}; no crash"
    else
        failed=1
        crash=$(grep -o 'artifacts/[^ ]*' "$log" | head -1)
        why=$(grep -m1 -A1 "panicked at" "$log" | tail -1)
        echo "$t: CRASH after ${execs:-?} executions (exit $rc): ${crash:-see $log}"
        [ -n "$why" ] && echo "    $why"
    fi
done
exit $failed
