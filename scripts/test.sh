#!/bin/sh
# The whole test suite, as README.md gives it and .ci/run runs it: a normal build and an
# ASan+UBSan build, each warning-free and each running every CTest test; the libFuzzer
# targets built with clang; the container image.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
extra=
# CI has the real Douban pages beside the clone; there their absence is an error.
[ -n "${CI:-}" ] && extra="-DMOVIESD_REQUIRE_REAL_PAGES=ON"

for variant in build:OFF build-asan:ON; do
    dir=${variant%%:*}
    sanitize=${variant##*:}
    echo "== $dir (sanitizers $sanitize)"
    # shellcheck disable=SC2086
    cmake -S . -B "$dir" -DMOVIESD_SANITIZE="$sanitize" -DMOVIESD_WERROR=ON $extra
    cmake --build "$dir" -j "$jobs"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600
done

# libFuzzer targets (clang, ASan+UBSan): seeds and regression inputs replayed whole, then
# each target fuzzed for a bounded time (tests/fuzz/README.md).
echo "== build-fuzz (libFuzzer)"
# shellcheck disable=SC2086
CC=clang cmake -S . -B build-fuzz -DMOVIESD_FUZZ=ON -DMOVIESD_WERROR=ON $extra
cmake --build build-fuzz -j "$jobs"
ctest --test-dir build-fuzz -L fuzz --output-on-failure -j "$jobs"

# The container image, built and run for real (rootful podman; minutes, so once).
echo "== container"
bash tests/deploy/container.sh
