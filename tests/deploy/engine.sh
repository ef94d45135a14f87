# engine.sh: the container engine for the container tests, sourced by them (bash).
#
#   engine_init              picks docker (when its daemon answers) or podman, as $ENGINE
#   E ARGS...                runs the engine
#   engine_base_image        makes sure debian:bookworm-slim is there: pulled from a
#                            registry when one answers, else made here with debootstrap
#                            from the host's Debian mirror
#   engine_healthcheck NAME  the running container's HEALTHCHECK passes
#   engine_build SECONDS TAG DIR ...
#                            builds DIR/Dockerfile within SECONDS (extra args go to the build)
#
# Podman on a host without systemd as PID 1 (a CI box, a container) needs a few settings,
# written to a containers.conf of our own under $ENGINE_STATE: cgroupfs instead of the systemd
# cgroup manager, a file for events instead of the journal, runc when it is installed (crun
# refuses hybrid cgroup layouts), and default ulimits no higher than the caller's hard limits
# (raising them needs CAP_SYS_RESOURCE, which such hosts may not grant).

BASE_IMAGE=docker.io/library/debian:bookworm-slim
ENGINE_STATE=${ENGINE_STATE:-/var/tmp/moviesd-engine}
# Extra `run` arguments for a run that gives --ulimit: podman then drops every default ulimit
# of containers.conf, and its own nproc default is more than such hosts allow.
ENGINE_RUN_ULIMITS=()

engine_init() {
    if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
        ENGINE=docker
    elif command -v podman >/dev/null; then
        ENGINE=podman
        if [[ ! -d /run/systemd/system ]]; then
            mkdir -p "$ENGINE_STATE"
            local nofile nproc runtime=""
            nofile=$(ulimit -Hn); [[ $nofile == unlimited ]] && nofile=1048576
            nproc=$(ulimit -Hu); [[ $nproc == unlimited || $nproc -gt 4096 ]] && nproc=4096
            command -v runc >/dev/null && runtime='runtime = "runc"'
            cat >"$ENGINE_STATE/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:$nofile", "nproc=$nproc:$nproc"]
[engine]
$runtime
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
            export CONTAINERS_CONF=$ENGINE_STATE/containers.conf
            ENGINE_RUN_ULIMITS=(--ulimit "nproc=$nproc:$nproc")
        fi
    else
        echo "engine: neither a docker daemon nor podman (deps/test.txt installs podman)" >&2
        return 1
    fi
}

# Podman without systemd logs a D-Bus complaint on every call: keep it out of the output.
E() { "$ENGINE" "$@" 2> >(grep -v 'systemd connection\|dbus' >&2); }

# The Debian mirror apt uses here, so debootstrap goes where the host's packages come from.
engine_debian_mirror() {
    local m
    m=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
    [[ -n $m ]] || m=$(awk '/^deb .*debian/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
    echo "${m:-http://deb.debian.org/debian}"
}

# Makes a debian:bookworm-slim stand-in: a minbase debootstrap, slimmed as the official image
# is (no docs, man pages or locales; apt caches cleaned after each install), imported and
# tagged with the official name so that FROM lines work unchanged.
engine_debootstrap_base() {
    local mirror rootfs
    mirror=$(engine_debian_mirror)
    command -v debootstrap >/dev/null || { echo "engine: debootstrap is missing" >&2; return 1; }
    rootfs=$(mktemp -d /var/tmp/moviesd-rootfs.XXXXXX) || return 1
    chmod 755 "$rootfs"   # mktemp's 0700 would become the image's /, unreadable to USER 10001
    echo "engine: debootstrap bookworm (minbase) from $mirror" >&2
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
        tail -20 "$rootfs.log" >&2; rm -rf "$rootfs" "$rootfs.log"; return 1
    fi
    # Bookworm from the chosen mirror, whatever release the host runs.
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" >"$rootfs/etc/apt/sources.list.d/debian.sources"
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null
    rm -rf "$rootfs"/usr/share/{man,info}/* "$rootfs"/var/cache/apt/archives/*.deb \
           "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    local quiet=(); [[ $ENGINE == podman ]] && quiet=(-q)
    tar -C "$rootfs" -c . | E import "${quiet[@]}" --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    local rc=$?
    rm -rf "$rootfs" "$rootfs.log"
    return $rc
}

engine_base_image() {
    E image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    if timeout 60 "$ENGINE" pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        echo "engine: pulled $BASE_IMAGE" >&2
        return 0
    fi
    echo "engine: no registry answers; making $BASE_IMAGE here" >&2
    engine_debootstrap_base
}

# Runs the image's HEALTHCHECK once: podman runs it on request; docker runs it on its own
# schedule, so wait for the state it reports.
engine_healthcheck() {
    if [[ $ENGINE == podman ]]; then
        E healthcheck run "$1"
        return
    fi
    local state
    for _ in $(seq 1 60); do
        state=$(E inspect -f '{{.State.Health.Status}}' "$1")
        [[ $state == healthy ]] && return 0
        [[ $state == unhealthy ]] && return 1
        sleep 1
    done
    return 1
}

engine_build() {
    local seconds=$1 tag=$2 dir=$3; shift 3
    if [[ $ENGINE == podman ]]; then
        # docker format keeps HEALTHCHECK (OCI drops it); the base is local, never pulled.
        set -- --pull=never --format docker "$@"
    fi
    timeout "$seconds" "$ENGINE" build -t "$tag" "$@" "$dir"
}
