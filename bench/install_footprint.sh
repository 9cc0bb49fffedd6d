#!/usr/bin/env bash
# Size and time of the two installs the Makefile makes (README "Installing"), each in a fresh
# virtualenv under a scratch folder: `make setup-demo` (the core: what fer-detect needs) and
# `make setup` (every extra: training, serving, Ray, tests). Each is built twice: the first run
# fills pip's cache (its time depends on the network), the second is the warm-cache figure.
#   bash bench/install_footprint.sh [core|full|both] [SCRATCH]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}
scratch=${2:-$(mktemp -d /tmp/fer-install.XXXXXX)}
mkdir -p "$scratch"

measure() {  # $1: label, $2: make target, $3: the Makefile variable naming the venv
  local label=$1 target=$2 var=$3
  for pass in cold-cache warm-cache; do
    local venv="$scratch/$label-$pass"
    rm -rf "$venv"
    local t0 t1
    t0=$(date +%s.%N)
    make --no-print-directory "$target" "$var=$venv" >"$scratch/$label-$pass.log" 2>&1
    t1=$(date +%s.%N)
    local size
    size=$(du -sm "$venv" | cut -f1)
    printf '%-5s %-10s %7.1f s %7d MB\n' "$label" "$pass" "$(echo "$t1 - $t0" | bc)" "$size"
  done
  # the same check the README's figure promises: the core import path runs
  "$scratch/$label-warm-cache/bin/fer-detect" examples/astronaut.png --json - >/dev/null
}

[[ $which == core || $which == both ]] && measure core setup-demo DEMO_VENV
[[ $which == full || $which == both ]] && measure full setup VENV
echo "venvs left in $scratch (delete them when done)"
