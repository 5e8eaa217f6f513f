#!/usr/bin/env bash
# Installs what TernaryKit needs on a fresh Debian machine: OpenBLAS (cblas) and LAPACKE.
# Swift 6.1 or later must already be on PATH. Safe to run again: it installs only what is missing.
set -euo pipefail
missing=()
for pkg in libopenblas-dev liblapacke-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
