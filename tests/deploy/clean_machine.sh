#!/usr/bin/env bash
# clean_machine.sh: the README's first command, taken verbatim from README.md, on a fresh
# minimal Debian 12 (the debian:bookworm-slim image, nothing added), twice: as root, and as a
# user with sudo. Each time the service must come up and answer /healthz, then the built
# `build/moviesd --version` must name the project's version, and SIGTERM must end the
# command with status 0. Prints what each step took and ends with a
# "clean_machine: N passed, N failed" line.
#
# The container shares the host's network (the Debian mirror, and 127.0.0.1 for the probe);
# MOVIESD_LISTEN moves the service to a free port without changing the command's text.
# Needs root (or sudo) for the container engine, and minutes: it installs the build
# packages from the mirror each time, as a new user would.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=engine.sh
. "$repo/tests/deploy/engine.sh"
step_timeout=1200   # seconds for the command to bring the service up (apt and the build)

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
finish() { echo "clean_machine: $passed passed, $failed failed"; ((failed == 0 && passed > 0)); exit $?; }

if [[ $(id -u) != 0 ]]; then exec sudo -n "$0" "$@"; fi
engine_init || { echo "FAIL: no container engine"; exit 1; }

tmp=$(mktemp -d /tmp/moviesd-clean.XXXXXX)
names=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    for n in "${names[@]}"; do E rm -f "$n" >/dev/null 2>&1; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# The README's first sh block, its command lines as written.
command=$(awk '/^```sh$/ { n++; next } /^```$/ { if (n == 1) exit } n == 1 && !/^#/' "$repo/README.md")
echo "README's first command: $command"
[[ -n $command ]] || { fail "README.md has a first command"; finish; }
version=$(sed -n 's/^project(moviesd VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")

# The checkout as a user would have it: the tracked and new files, no build trees.
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf "$tmp/src.tar" --ignore-failed-read)
else
    tar -C "$repo" --exclude='./build*' -cf "$tmp/src.tar" .
fi
chmod 644 "$tmp/src.tar"

engine_base_image || { fail "base image $BASE_IMAGE"; finish; }
ok "base image $BASE_IMAGE (minimal Debian 12)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Ends the service inside the container with SIGTERM (the image has no pkill or pidof).
stop_service() {
    E exec "$1" bash -c 'for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = moviesd ] && kill -TERM "${p#/proc/}"; done' >/dev/null 2>&1
}

# run_as WHO SETUP WRAP: WHO names the run; SETUP runs first as root (what that user's machine
# already has); WRAP runs the command in the checkout (root, or a user with sudo).
run_as() {
    local who=$1 setup=$2 wrap=$3 name=moviesd-clean-$1-$$ port t0 t1 up=1
    names+=("$name")
    port=$(free_port)
    printf '%s\n' "$command" >"$tmp/command.sh"
    t0=$(date +%s)
    E run -d --name "$name" --network host -e MOVIESD_LISTEN="127.0.0.1:$port" \
        -v "$tmp/src.tar:/src.tar:ro" -v "$tmp/command.sh:/command.sh:ro" "$BASE_IMAGE" \
        bash -c "set -e; $setup; $wrap" >/dev/null || { fail "$who: container starts"; return; }
    for _ in $(seq 1 $((step_timeout * 2))); do
        curl -fsS -m 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { up=0; break; }
        [[ $(E inspect -f '{{.State.Running}}' "$name") == true ]] || break
        sleep 0.5
    done
    t1=$(date +%s)
    if ! check "$who: the command brings the service up ($((t1 - t0)) s)" test $up -eq 0; then
        E logs "$name" 2>&1 | tail -40
        return
    fi
    local dir=/src; [[ $who == root ]] || dir=/home/dev/src
    local v
    v=$(E exec -w "$dir" "$name" build/moviesd --version 2>&1)
    check "$who: build/moviesd --version says 'moviesd $version' (got '$v')" test "$v" = "moviesd $version"
    stop_service "$name"
    local status
    status=$(timeout 30 "$ENGINE" wait "$name" 2>/dev/null | tail -1)
    check "$who: SIGTERM ends the command with status 0 (got ${status:-none})" test "${status:-x}" = 0
    E logs "$name" >"$tmp/$who.log" 2>&1
    echo "$who: $(grep -c '^Setting up' "$tmp/$who.log") packages installed; last lines:"
    tail -3 "$tmp/$who.log"
}

run_as root "mkdir /src && tar -C /src -xf /src.tar" "cd /src && bash /command.sh"
run_as sudo-user \
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sudo >/dev/null \
     && useradd -m dev && echo 'dev ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/dev \
     && rm -rf /var/lib/apt/lists/* && su dev -c 'mkdir ~/src && tar -C ~/src -xf /src.tar'" \
    "exec su dev -c 'cd ~/src && bash /command.sh'"
finish
