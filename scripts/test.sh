#!/bin/sh
# The whole test suite, as README.md gives it and .ci/run runs it: a normal build and an
# ASan+UBSan build, each warning-free and each running every CTest test; a ThreadSanitizer
# build running the unit and integration tests; the libFuzzer targets built with clang;
# then the container tests (the image, and the README's first command on a fresh Debian
# 12), once.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# Every test dependency must be there: a missing one fails instead of leaving tests out.
common="-DMOVIESD_WERROR=ON -DMOVIESD_REQUIRE_TEST_DEPS=ON"
# CI has the real Douban pages beside the clone; there their absence is an error.
[ -n "${CI:-}" ] && common="$common -DMOVIESD_REQUIRE_REAL_PAGES=ON"

for variant in build:OFF build-asan:ON; do
    dir=${variant%%:*}
    sanitize=${variant##*:}
    echo "== $dir (sanitizers $sanitize)"
    containers=OFF
    [ "$dir" = build ] && containers=ON
    # shellcheck disable=SC2086
    cmake -S . -B "$dir" -DMOVIESD_SANITIZE="$sanitize" -DMOVIESD_CONTAINER_TESTS=$containers $common
    cmake --build "$dir" -j "$jobs"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600 -LE container
done

# ThreadSanitizer: the parse workers share the process with the loop. The unit and
# integration tests run again against a TSan build, and any report fails them. Address-space
# randomisation is turned off for it where allowed: TSan's fixed shadow layout can clash with
# the high-entropy mmap randomisation of newer kernels.
echo "== build-tsan (ThreadSanitizer)"
# shellcheck disable=SC2086
cmake -S . -B build-tsan -DMOVIESD_TSAN=ON -DMOVIESD_CONTAINER_TESTS=OFF $common
cmake --build build-tsan -j "$jobs"
norandom=
setarch "$(uname -m)" -R true 2>/dev/null && norandom="setarch $(uname -m) -R"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    $norandom ctest --test-dir build-tsan --output-on-failure -j "$jobs" --timeout 900 \
    -R '^(unit|integration)_'

# libFuzzer targets (clang, ASan+UBSan): seeds and regression inputs replayed whole, then
# each target fuzzed for a bounded time (tests/fuzz/README.md).
echo "== build-fuzz (libFuzzer)"
# shellcheck disable=SC2086
CC=clang cmake -S . -B build-fuzz -DMOVIESD_FUZZ=ON $common
cmake --build build-fuzz -j "$jobs"
ctest --test-dir build-fuzz -L fuzz --output-on-failure -j "$jobs"

# The container tests: minutes each, and they need root (or sudo) for the engine.
echo "== containers"
ctest --test-dir build -L container --output-on-failure
