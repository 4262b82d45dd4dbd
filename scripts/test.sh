#!/usr/bin/env bash
# Builds and runs splitnet's whole test suite through ctest, and exits non-zero on any failure:
#   1. format check (clang-format-16)
#   2. release: g++ -O2, every test (integration tests too when root), header checks with and
#      without exceptions, install consumers, fuzz corpus replay; benchmarks and examples built
#   3. asan: g++ with AddressSanitizer + UndefinedBehaviorSanitizer, unit tests and fuzz replay
#   4. tsan: clang with ThreadSanitizer, unit tests (threads over shared memory included);
#      this build also proves clang 14 compiles everything
#   5. fuzz: clang libFuzzer targets (only those are built), each fuzzing for
#      SPLITNET_FUZZ_SECONDS (default 30)
# Stages can be picked: scripts/test.sh release asan. Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(format release asan tsan fuzz)
fuzz_seconds=${SPLITNET_FUZZ_SECONDS:-30}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
export CTEST_PARALLEL_LEVEL=${CTEST_PARALLEL_LEVEL:-$(nproc)}
logs=build/logs
mkdir -p "$logs"
failed=()

stage() { printf '\n==== %s ====\n' "$*"; }

# Some sanitizer reports do not change an exit code (DPDK greps its logs for the same reason).
check_log() {
    if grep -nE 'runtime error:|ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer' "$1" | head -20; then
        echo "sanitizer report in $1" >&2
        return 1
    fi
}

run_preset() {
    local preset=$1
    shift
    stage "$preset"
    local extra=()
    [ "$preset" = fuzz ] && extra=(-DSPLITNET_FUZZ_SECONDS="$fuzz_seconds")
    cmake --preset "$preset" "${extra[@]}" >"$logs/$preset-configure.log" ||
        { cat "$logs/$preset-configure.log"; return 1; }
    cmake --build --preset "$preset" "$@" || return 1
    ctest --preset "$preset" --output-log "$logs/$preset-ctest.log" || return 1
    check_log "$logs/$preset-ctest.log"
}

for s in "${stages[@]}"; do
    case "$s" in
    format)
        stage format
        if ! git ls-files '*.hpp' '*.cpp' | xargs clang-format-16 --dry-run -Werror; then
            echo "format: run: git ls-files '*.hpp' '*.cpp' | xargs clang-format-16 -i" >&2
            failed+=(format)
        fi
        ;;
    release | asan | tsan | debug) run_preset "$s" || failed+=("$s") ;;
    fuzz) run_preset fuzz --target splitnet_fuzzers || failed+=(fuzz) ;;
    *) echo "test.sh: unknown stage $s (format release asan tsan fuzz debug)" >&2; exit 2 ;;
    esac
done

if [ ${#failed[@]} -ne 0 ]; then
    printf '\nFAILED: %s (logs in %s)\n' "${failed[*]}" "$logs" >&2
    exit 1
fi
printf '\nall stages passed: %s\n' "${stages[*]}"
