#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for a bounded time each,
# one after another, starting from the committed seeds.
#
#   fuzz/run.sh [seconds-per-target] [target...]     (default: 60, all)
#
# Only stable Rust is available, so RUSTC_BOOTSTRAP=1 lets it accept the
# nightly-only flags cargo-fuzz passes (sanitizer, coverage instrumentation).
# New inputs go to fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>
# (both git-ignored); see fuzz/README.md for reproducing one.
set -euo pipefail

secs="${1:-60}"
shift || true
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build

failed=()
for t in "${targets[@]}"; do
    echo "=== $t: ${secs}s"
    mkdir -p "corpus/$t"
    # -timeout: an input that takes longer than 10 s is reported as a hang;
    # -rss_limit_mb: more than 2 GiB is reported as out-of-memory.
    if ! cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran ${secs}s without a finding"
