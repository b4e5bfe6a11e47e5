#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for a set time
# each, one after another; see docs/fuzzing.md.
#
#   scripts/fuzz.sh                  # every target, 60 s each, with AddressSanitizer
#   scripts/fuzz.sh --seconds 600 jwt routes
#   scripts/fuzz.sh --merge          # folds what the runs found into fuzz/corpus/
#
# Options: --seconds N (per target; default $FUZZ_SECONDS or 60), --merge
# (instead of fuzzing, adds to the committed corpus the inputs of the
# scratch corpus that reach code it does not; keep it small), then target
# names (default: every target, `cargo fuzz list`).
#
# CI does not run this (an instrumented build of every dependency costs
# minutes): `cargo test -p herald-fuzz-targets` replays the committed corpus
# through the same target functions on the ordinary build.
#
# Inputs libFuzzer finds go to a scratch corpus, target/fuzz/corpus/<target>/,
# kept between runs; the committed seeds in fuzz/corpus/<target>/ are read,
# never written. A crash stops the script: the input is in
# fuzz/artifacts/<target>/, and the line to replay it is printed. Each
# target's log is in target/fuzz/logs/, and a summary (executions, time,
# corpus, crashes) at the end.
#
# Only stable Rust is installed here; cargo-fuzz passes nightly-only flags
# (-Zsanitizer, ...), which RUSTC_BOOTSTRAP=1 lets the stable compiler take.
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh

seconds="${FUZZ_SECONDS:-}"
merge=false
targets=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --merge) merge=true; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

export RUSTC_BOOTSTRAP=1
ensure_cargo_fuzz

seconds="${seconds:-60}"
build=(--release --debug-assertions --target-dir target/fuzz-asan)
binaries="target/fuzz-asan/$(rustc -vV | sed -n 's/^host: //p')/release"
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
cargo fuzz build "${build[@]}"
echo "fuzz targets built in $(( $(date +%s) - start )) s"
# As cargo-fuzz runs them: ODR violations are reported for Rust code that is
# fine (several codegen units define the same static).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

mkdir -p target/fuzz/logs
summary=()
for target in "${targets[@]}"; do
    scratch="target/fuzz/corpus/$target"
    mkdir -p "$scratch" "fuzz/corpus/$target"
    if $merge; then
        echo "==> merging $scratch into fuzz/corpus/$target"
        "$binaries/$target" -merge=1 "fuzz/corpus/$target" "$scratch"
        continue
    fi
    echo "==> $target, ${seconds} s"
    log="target/fuzz/logs/$target.log"
    status=0
    mkdir -p "fuzz/artifacts/$target"
    "$binaries/$target" -artifact_prefix="fuzz/artifacts/$target/" -max_total_time="$seconds" -timeout=10 \
        -print_final_stats=1 "$scratch" "fuzz/corpus/$target" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        grep -E -A 30 'panicked|ERROR: libFuzzer|==[0-9]+==ERROR' "$log" | head -60 >&2 || tail -40 "$log" >&2
        echo "$target: FAILED (exit $status); log $log, crash input in fuzz/artifacts/$target/;" \
            "replay: $binaries/$target <input>" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    summary+=("$(printf '%-18s %12s executions in %4s s, corpus %s inputs' "$target" "${runs:-?}" "$seconds" \
        "$(find "$scratch" "fuzz/corpus/$target" -type f | wc -l)")")
done

if ! $merge; then
    echo
    echo "fuzzing done in $(( $(date +%s) - start )) s, no crash:"
    printf '  %s\n' "${summary[@]}"
fi
