#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for a bounded time each,
# one after another, starting from the committed seeds.
#
#   fuzz/run.sh [seconds-per-target] [target...]     (default: 60, all)
#
# cargo-fuzz passes nightly-only flags to rustc (sanitizer, coverage
# instrumentation): it runs on the nightly toolchain when rustup has one,
# and otherwise on the default toolchain with RUSTC_BOOTSTRAP=1, which lets
# stable rustc accept them. CARGO_TARGET_DIR, if set, is where it builds.
# New inputs go to fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>
# (both git-ignored); see fuzz/README.md for reproducing one.
set -euo pipefail

secs="${1:-60}"
shift || true
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz() { cargo +nightly fuzz "$@"; }
else
    export RUSTC_BOOTSTRAP=1
    fuzz() { cargo fuzz "$@"; }
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(fuzz list)
fi

fuzz build

failed=()
for t in "${targets[@]}"; do
    echo "=== $t: ${secs}s"
    mkdir -p "corpus/$t" "seeds/$t"
    # -timeout: an input that takes longer than 10 s is reported as a hang;
    # -rss_limit_mb: more than 2 GiB is reported as out-of-memory.
    if ! fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran ${secs}s without a finding"
