#!/usr/bin/env bash
# Runs the whole test suite once more under AddressSanitizer (Swift and the C kernels), in its
# own build folder (.build-asan), so an out-of-bounds read or write, a use after free or a bad
# free anywhere in the library fails the run. The tests that count allocations skip themselves
# there (AddressSanitizer replaces the malloc family they count).
#
#   bash scripts/asan.sh [extra swift test arguments, e.g. --filter Attention]
set -euo pipefail
cd "$(dirname "$0")/.."
# Leaks count too, except the toolchain's own (scripts/lsan.supp).
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
swift test --sanitize=address --scratch-path .build-asan "$@"
