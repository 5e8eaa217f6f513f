#!/usr/bin/env bash
# Builds every example (Examples/) and runs each on small sizes. Exits non-zero if any build or
# run fails; every example runs even after a failure, and a summary lists them all.
#
#   bash scripts/run-examples.sh            # debug build, as CI runs it
#   CONFIG=release bash scripts/run-examples.sh
set -uo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-debug}"

start=$(date +%s)
echo "== swift build -c $CONFIG"
if ! swift build -c "$CONFIG" 2>&1 | tail -3; then
    echo "FAILED: swift build" >&2
    exit 1
fi
# (pipefail makes the `if` above see swift build's status through `tail`.)

# name and arguments of each run, small enough for a debug build
runs=(
    "RSRWalkthrough"
    "RSRWalkthrough --out 37 --in 300 --k 5 --batch 3"
    "BackendABTest --shape 256x512 --batch 2 --repeat 5"
    "BackendABTest --shape 100x300 --batch 3 --threads 2 --repeat 3"
    "CustomModel"
    "Generation --max-new-tokens 8"
    "Generation --model Tests/Fixtures/tiny-bitnet --backend rsr++ --max-new-tokens 8 --temperature 1 --top-k 5 --seed 3"
    "CheckpointRoundTrip"
)

summary=()
failures=0
for run in "${runs[@]}"; do
    echo
    echo "== swift run $run"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086  # the arguments are meant to split
    swift run -c "$CONFIG" --skip-build $run
    status=$?
    t1=$(date +%s.%N)
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ $status -eq 0 ]; then result="ok"; else result="FAILED ($status)"; failures=$((failures + 1)); fi
    summary+=("$(printf '%-12s %6ss  %s' "$result" "$seconds" "$run")")
done

echo
echo "== examples summary ($CONFIG)"
printf '%s\n' "${summary[@]}"
echo "total $(( $(date +%s) - start )) s, $failures failure(s)"
[ $failures -eq 0 ]
