#!/usr/bin/env bash
# container.sh: builds the image from the Dockerfile and runs it the hardened way
# (--read-only --cap-drop=ALL --security-opt no-new-privileges) against the fake upstream
# on this host: /healthz and /movies answer, the HEALTHCHECK passes, SIGTERM ends it with
# status 0, and the image stays under 100 MB. Prints the image size and the build and run
# wall times, and ends with a "container: N passed, N failed" line.
#
# Builds with docker when its daemon answers, else podman (rootful: run as root, or through
# sudo). When no registry answers, the debian:bookworm-slim base is made here from the Debian
# mirror with debootstrap (tests/deploy/engine.sh); it is kept, so later runs reuse it.
#
# Networking: the container shares the host's network namespace (--network host), so the
# daemon listens on 127.0.0.1:<free port> and reaches the fake upstream on 127.0.0.1
# directly. A bridge network would need the fake upstream bound to a non-loopback address
# and traffic through the bridge's private range; host networking keeps every byte on
# loopback and needs no port publishing or firewall rules.
#
# Usage: tests/deploy/container.sh [--rmi]    (--rmi: remove the image afterwards; kept by
#        default so that a rerun builds from the layer cache)
# Env:   CONTAINER_TAG (default localhost/moviesd:test)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=engine.sh
. "$repo/tests/deploy/engine.sh"
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

if [[ $(id -u) != 0 ]]; then exec sudo -n "$0" "$@"; fi
engine_init || { echo "FAIL: no container engine"; exit 1; }

upstream_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    E rm -f "$name" >/dev/null 2>&1
    if [[ -n $upstream_pid ]]; then kill "$upstream_pid" 2>/dev/null; wait "$upstream_pid" 2>/dev/null; fi
    ((rmi)) && E rmi -f "$tag" >/dev/null 2>&1
    rm -rf "$tmp"
}
tmp=$(mktemp -d /tmp/moviesd-container.XXXXXX)
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. build -------------------------------------------------------------------------------
t0=$(date +%s.%N)
if engine_base_image; then ok "base image $BASE_IMAGE"; else fail "base image $BASE_IMAGE"; finish; fi
version=$(sed -n 's/^project(moviesd VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
# The origin when it is a public address; a clone of a local folder says nothing to others.
source_url=$(git -C "$repo" config --get remote.origin.url 2>/dev/null)
[[ $source_url =~ ^(https?|ssh|git)://|^git@ ]] || source_url=unknown
if engine_build "$build_timeout" "$tag" "$repo" --build-arg VERSION="$version" \
        --build-arg REVISION="$revision" --build-arg SOURCE="$source_url" >"$tmp/build.log" 2>&1; then
    ok "image builds"
else
    fail "image builds (last lines of the log follow)"; tail -40 "$tmp/build.log"; finish
fi
t1=$(date +%s.%N)
build_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

size=$(E image inspect "$tag" --format '{{.Size}}')
echo "image size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }'))"
check "image under 100 MB" test "$size" -lt "$max_bytes"
cfg=$(E image inspect "$tag" --format 'user={{.Config.User}} stop={{.Config.StopSignal}} entry={{.Config.Entrypoint}} health={{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}')
echo "image config: $cfg"
check "numeric non-root user" grep -q 'user=10001:10001' <<<"$cfg"
check "SIGTERM stop signal" grep -q 'stop=SIGTERM' <<<"$cfg"
check "HEALTHCHECK runs moviesd health" grep -q 'health=\[CMD /usr/local/bin/moviesd health\]' <<<"$cfg"
label() { E image inspect "$tag" --format "{{index .Config.Labels \"org.opencontainers.image.$1\"}}"; }
echo "labels: licenses=$(label licenses) version=$(label version) revision=$(label revision) source=$(label source)"
check "licenses label is MIT" test "$(label licenses)" = MIT
check "version label is the project's ($version)" test "$(label version)" = "$version"
check "revision label is the build's ($revision)" test "$(label revision)" = "$revision"
check "source label is set" test -n "$(label source)"
check "the image's daemon is that version" \
    test "$(E run --rm --network none "$tag" --version 2>/dev/null)" = "moviesd $version"
check "LICENSE shipped in the image" \
    test -n "$(E run --rm --network none --entrypoint /bin/sh "$tag" -c 'grep -l "MIT License" /usr/local/share/doc/moviesd/LICENSE' 2>/dev/null)"
check "no curl or wget in the image" \
    test "$(E run --rm --network none --entrypoint /bin/sh "$tag" -c 'command -v curl wget || echo none' 2>/dev/null)" = none

# 2. run against the fake upstream on loopback ------------------------------------------
t2=$(date +%s.%N)
python3 "$repo/tests/fake_upstream.py" --port 0 --movies 40 >"$tmp/upstream.out" 2>"$tmp/upstream.err" &
upstream_pid=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$tmp/upstream.out" && break; sleep 0.1; done
upstream=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$tmp/upstream.out" | head -1)
[[ -n $upstream ]] || { fail "fake upstream starts"; cat "$tmp/upstream.err"; finish; }
port=$(free_port)
base=http://127.0.0.1:$port

E run -d --name "$name" --network host --read-only --cap-drop=ALL \
    --security-opt no-new-privileges --pids-limit 256 --ulimit nofile=16384:16384 \
    "${ENGINE_RUN_ULIMITS[@]}" \
    -e MOVIESD_LISTEN="127.0.0.1:$port" -e MOVIESD_UPSTREAM="http://$upstream" \
    "$tag" >/dev/null || { fail "container starts"; finish; }

up=1
for _ in $(seq 1 100); do
    curl -fsS -m 2 "$base/healthz" >"$tmp/healthz" 2>/dev/null && { up=0; break; }
    [[ $(E inspect -f '{{.State.Running}}' "$name") == true ]] || break
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
check "HEALTHCHECK passes" engine_healthcheck "$name"
check "runs as uid 10001" grep -q '^Uid:[[:space:]]*10001' <(E exec "$name" cat /proc/1/status)
check "no capabilities even in the bounding set (--cap-drop=ALL)" \
    grep -q '^CapBnd:[[:space:]]*0*$' <(E exec "$name" cat /proc/1/status)
check "no new privileges" grep -q '^NoNewPrivs:[[:space:]]*1' <(E exec "$name" cat /proc/1/status)
check "root file system is mounted read-only" \
    grep -qE '^[^ ]+ / [^ ]+ ro[, ]' <(E exec "$name" cat /proc/mounts)
# One open file per API and upstream connection, and 64 spares: what the daemon raises its
# soft limit to, under the --ulimit the README's run command gives.
need=$(E exec "$name" /usr/local/bin/moviesd --check-config |
       awk '$1 == "max_connections" || $1 == "max_upstream_connections" { n += $3 } END { print n + 64 }')
soft=$(E exec "$name" cat /proc/1/limits | awk '/^Max open files/ { print $4 }')
echo "open-file limit: soft $soft, the settings need $need"
check "the open-file limit covers max_connections ($soft >= $need)" test "${soft:-0}" -ge "${need:-1}"

E stop -t 15 "$name" >/dev/null
status=$(E inspect -f '{{.State.ExitCode}}' "$name")
check "SIGTERM -> exit status 0 (got $status)" test "$status" = 0
E logs "$name" >"$tmp/container.log" 2>&1
check "logged 'listening on'" grep -q 'listening on' "$tmp/container.log"
check "no warning about the open-file limit" bash -c "! grep -q 'open-file limit' '$tmp/container.log'"
t3=$(date +%s.%N)
run_s=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.1f", b - a }')
echo "--- container log (last lines) ---"; tail -15 "$tmp/container.log"
echo "wall time: build ${build_s} s, run ${run_s} s"
finish
