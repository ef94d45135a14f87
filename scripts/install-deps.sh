#!/bin/sh
# Installs the Debian packages moviesd needs. The lists live in deps/*.txt and are shared
# with the Dockerfile and .ci/run, so a missing package shows up everywhere at once.
# Usage: install-deps.sh [build] [runtime] [test] [bench]   (default: build test bench)
#   build    what building and running the daemon from a checkout needs (the -dev packages
#            bring the shared libraries with them)
#   runtime  the shared libraries alone, by their Debian 12 names, for the image's runtime
#            stage (Ubuntu 24.04 names some of them differently; its -dev packages still match)
#   test     what the test suite needs besides build
#   bench    what bench/side_by_side.py needs besides build: the seed's scrapers' Python
#            packages, matplotlib, nginx and wrk (the suite's bench_smoke runs it briefly;
#            nginx is only installed, the benchmark starts its own as a plain process)
# test also installs the npm tools of deps/npm/package.json (the OpenAPI linter, and on
# x86-64 the Node.js it needs) into deps/npm/node_modules, from the npm registry, exactly as
# deps/npm/package-lock.json pins them; npm itself comes from Debian (deps/npm.txt) when
# there is none yet.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
lists=${*:-build test bench}
pkgs=
for l in $lists; do
    [ -f "$here/deps/$l.txt" ] || { echo "install-deps: no list deps/$l.txt" >&2; exit 2; }
    pkgs="$pkgs $(cat "$here/deps/$l.txt")"
done
npm_tools=
case " $lists " in *" test "*) npm_tools=1 ;; esac
if [ -n "$npm_tools" ] && ! command -v npm >/dev/null 2>&1; then
    pkgs="$pkgs $(cat "$here/deps/npm.txt")"
fi
# As root apt runs directly; otherwise through sudo, which keeps no environment: the
# frontend is passed on the command line so that no package stops to ask a question.
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs
if [ -n "$npm_tools" ]; then
    # Not as root through sudo: the tools belong to the checkout, like a build directory.
    (cd "$here/deps/npm" && npm ci --no-audit --no-fund)
fi
