#!/usr/bin/env bash
# Builds every example (Examples/) and runs each on small sizes, checks that bad command lines are
# refused with a one-line error and that --help prints the usage, then builds CustomModel as a
# separate package (scripts/check-external-example.sh). Exits non-zero if any build or check
# fails; every check runs even after a failure, and a summary lists them all.
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
    "Ternarize --shape 128x256 --ranks 0,4,16,64 --batches 1,5 --repeat 3"
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

# Bad command lines: each must be refused with exit status 1 and one "error: ..." line on stderr
# (not a crash with a stack trace, not a silent default, not ArgumentParser's usage block and
# exit 64: each example's main() reduces parse, validation and run-time errors to that line).
# Run directly: milliseconds each.
bad_runs=(
    "RSRWalkthrough --batch abc"
    "RSRWalkthrough --k 0"
    "BackendABTest --shape 12y"
    "BackendABTest --batch 0"
    "BackendABTest --repeat"
    "CustomModel --bogus"
    "CustomModel --hidden 12"
    "Generation --backend nope"
    "Generation --top-p 1.5"
    "Generation --threads"
    "CheckpointRoundTrip --seed x"
    "CheckpointRoundTrip --hidden 12"
    "Ternarize --shape 12y"
    "Ternarize --ranks 4,-1"
)
echo
echo "== bad arguments (expected: exit 1, one line on stderr) and --help"
err=$(mktemp)
for run in "${bad_runs[@]}"; do
    # shellcheck disable=SC2086  # the arguments are meant to split
    .build/$CONFIG/$run >/dev/null 2>"$err"
    status=$?
    message=$(head -c 200 "$err")
    if [ $status -eq 1 ] && [ "$(wc -l <"$err")" -eq 1 ] && [[ $message == "error: "* ]]; then
        result="ok (refused)"
    else
        result="FAILED ($status)"; failures=$((failures + 1))
    fi
    line=$(printf '%-12s %7s  %s  →  %s' "$result" "" "$run" "$message")
    echo "$line"; summary+=("$line")
done
for name in RSRWalkthrough BackendABTest CustomModel Generation CheckpointRoundTrip Ternarize; do
    usage=$(.build/$CONFIG/$name --help 2>"$err")
    status=$?
    # ArgumentParser's help: "OVERVIEW: ..." then "USAGE: <name> ..." on stdout, nothing on stderr.
    if [ $status -eq 0 ] && [[ $usage == *"USAGE: $name "* ]] && [ ! -s "$err" ]; then result="ok"; else result="FAILED ($status)"; failures=$((failures + 1)); fi
    line=$(printf '%-12s %7s  %s' "$result" "" "$name --help")
    echo "$line"; summary+=("$line")
done
rm -f "$err"

# CustomModel built in a package of its own that depends on this one by path: the public API is enough.
echo
echo "== scripts/check-external-example.sh (builds TernaryKit again in a temporary package)"
t0=$(date +%s.%N)
bash scripts/check-external-example.sh
status=$?
seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [ $status -eq 0 ]; then result="ok"; else result="FAILED ($status)"; failures=$((failures + 1)); fi
summary+=("$(printf '%-12s %6ss  %s' "$result" "$seconds" "CustomModel as an external package")")

echo
echo "== examples summary ($CONFIG)"
printf '%s\n' "${summary[@]}"
echo "total $(( $(date +%s) - start )) s, $failures failure(s)"
[ $failures -eq 0 ]
