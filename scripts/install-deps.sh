#!/bin/sh
# Installs the Debian packages moviesd needs. The lists live in deps/*.txt and are shared
# with the Dockerfile and .ci/run, so a missing package shows up everywhere at once.
# Usage: install-deps.sh [build] [runtime] [test]   (default: build runtime test)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
lists=${*:-build runtime test}
pkgs=
for l in $lists; do
    [ -f "$here/deps/$l.txt" ] || { echo "install-deps: no list deps/$l.txt" >&2; exit 2; }
    pkgs="$pkgs $(cat "$here/deps/$l.txt")"
done
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
# shellcheck disable=SC2086
$sudo apt-get install -y --no-install-recommends $pkgs
