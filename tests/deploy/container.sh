#!/usr/bin/env bash
# container.sh: builds the image from the Dockerfile and runs it the hardened way
# (--read-only --cap-drop=ALL --security-opt no-new-privileges) against the fake upstream
# on this host: /healthz and /movies answer, the HEALTHCHECK passes, SIGTERM ends it with
# status 0, and the image stays under 100 MB. Prints the image size and the build and run
# wall times, and ends with a "container: N passed, N failed" line.
#
# Needs root (rootful podman). The build goes through ../shared/tools/container-build.sh
# beside the repo, which brings podman/runc, a local debian:bookworm-slim and the engine
# settings this kind of host needs; the run uses the same settings.
#
# Networking: the container shares the host's network namespace (--network host), so the
# daemon listens on 127.0.0.1:<free port> and reaches the fake upstream on 127.0.0.1
# directly. A bridge network would need the fake upstream bound to a non-loopback address
# and traffic through the bridge's private range; host networking keeps every byte on
# loopback and needs no port publishing or firewall rules.
#
# Usage: tests/deploy/container.sh [--rmi]    (--rmi: remove the image afterwards; kept by
#        default so that a rerun builds from the layer cache)
# Env:   CONTAINER_TAG (default localhost/moviesd:test), CB_STATE (the build script's state)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cb="$repo/../shared/tools/container-build.sh"
tag=${CONTAINER_TAG:-localhost/moviesd:test}
name=moviesd-test-$$
max_bytes=100000000          # 100 MB
build_timeout=1800           # seconds; a cold build downloads the toolchain
rmi=0
[[ ${1:-} == --rmi ]] && rmi=1

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
finish() { echo "container: $passed passed, $failed failed"; ((failed == 0 && passed > 0)); exit $?; }

if [[ $(id -u) != 0 ]]; then echo "FAIL: needs root for rootful podman"; exit 1; fi
if [[ ! -f $cb ]]; then echo "FAIL: no container build script at $cb"; exit 1; fi

export CONTAINERS_CONF=${CB_STATE:-/var/tmp/container-build}/containers.conf
# Without systemd podman logs an error per call about its missing D-Bus connection.
P() { podman "$@" 2> >(grep -v 'systemd connection\|dbus' >&2); }

upstream_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    P rm -f -t 2 "$name" >/dev/null 2>&1
    if [[ -n $upstream_pid ]]; then kill "$upstream_pid" 2>/dev/null; wait "$upstream_pid" 2>/dev/null; fi
    ((rmi)) && P rmi -f "$tag" >/dev/null 2>&1
    rm -rf "$tmp"
}
tmp=$(mktemp -d /tmp/moviesd-container.XXXXXX)
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. build -------------------------------------------------------------------------------
t0=$(date +%s.%N)
if timeout "$build_timeout" bash "$cb" --no-run -t "$tag" "$repo" >"$tmp/build.log" 2>&1; then
    ok "image builds"
else
    fail "image builds (last lines of the log follow)"; tail -40 "$tmp/build.log"; finish
fi
t1=$(date +%s.%N)
build_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

size=$(P image inspect "$tag" --format '{{.Size}}')
echo "image size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }'))"
check "image under 100 MB" test "$size" -lt "$max_bytes"
cfg=$(P image inspect "$tag" --format 'user={{.Config.User}} stop={{.Config.StopSignal}} entry={{.Config.Entrypoint}} health={{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}')
echo "image config: $cfg"
check "numeric non-root user" grep -q 'user=10001:10001' <<<"$cfg"
check "SIGTERM stop signal" grep -q 'stop=SIGTERM' <<<"$cfg"
check "HEALTHCHECK runs moviesd health" grep -q 'health=\[CMD /usr/local/bin/moviesd health\]' <<<"$cfg"
check "no curl or wget in the image" \
    test "$(P run --rm --network none --entrypoint /bin/sh "$tag" -c 'command -v curl wget || echo none' 2>/dev/null)" = none

# 2. run against the fake upstream on loopback ------------------------------------------
t2=$(date +%s.%N)
python3 "$repo/tests/fake_upstream.py" --port 0 --movies 40 >"$tmp/upstream.out" 2>"$tmp/upstream.err" &
upstream_pid=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$tmp/upstream.out" && break; sleep 0.1; done
upstream=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$tmp/upstream.out" | head -1)
[[ -n $upstream ]] || { fail "fake upstream starts"; cat "$tmp/upstream.err"; finish; }
port=$(free_port)
base=http://127.0.0.1:$port

P run -d --name "$name" --network host --read-only --cap-drop=ALL \
    --security-opt no-new-privileges --pids-limit 256 \
    -e MOVIESD_LISTEN="127.0.0.1:$port" -e MOVIESD_UPSTREAM="http://$upstream" \
    "$tag" >/dev/null || { fail "container starts"; finish; }

up=1
for _ in $(seq 1 100); do
    curl -fsS -m 2 "$base/healthz" >"$tmp/healthz" 2>/dev/null && { up=0; break; }
    [[ $(P inspect -f '{{.State.Running}}' "$name") == true ]] || break
    sleep 0.2
done
check "/healthz answers 200" test $up -eq 0
check "/healthz says ok" grep -q '"status" *: *"ok"' "$tmp/healthz"
code=$(curl -sS -m 30 -o "$tmp/movies" -w '%{http_code}' "$base/movies?city=beijing")
check "/movies?city=beijing answers 200" test "$code" = 200
count=$(python3 -c 'import json,sys
d=json.load(open(sys.argv[1])); m=d.get("movies") if isinstance(d,dict) else d
print(len(m) if isinstance(m,list) else -1)' "$tmp/movies" 2>/dev/null || echo -1)
echo "movies for beijing: $count"
check "/movies lists movies" test "$count" -gt 0
check "HEALTHCHECK passes (podman healthcheck run)" P healthcheck run "$name"
check "runs as uid 10001" grep -q '^Uid:[[:space:]]*10001' <(P exec "$name" cat /proc/1/status)
check "no effective capabilities" grep -q '^CapEff:[[:space:]]*0*$' <(P exec "$name" cat /proc/1/status)
check "no new privileges" grep -q '^NoNewPrivs:[[:space:]]*1' <(P exec "$name" cat /proc/1/status)
check "root file system is read-only" \
    test -z "$(P exec "$name" sh -c 'touch /usr/local/bin/x && echo writable' 2>/dev/null)"

P stop -t 15 "$name" >/dev/null
status=$(P inspect -f '{{.State.ExitCode}}' "$name")
check "SIGTERM -> exit status 0 (got $status)" test "$status" = 0
P logs "$name" >"$tmp/container.log" 2>&1
check "logged 'listening on'" grep -q 'listening on' "$tmp/container.log"
t3=$(date +%s.%N)
run_s=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.1f", b - a }')
echo "--- container log (last lines) ---"; tail -15 "$tmp/container.log"
echo "wall time: build ${build_s} s, run ${run_s} s"
finish
