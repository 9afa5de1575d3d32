#!/usr/bin/env bash
# Is the Docker engine able to run the project's containers? A dockerd can answer `docker info`
# and still be broken: its default bridge interface deleted (by another dockerd that shared the
# name docker0, say), so every `docker run` and every build with RUN fails minutes later.
#
#   check-engine.sh bridge            the default bridge network exists and, for a local engine,
#                                     its Linux interface too (cheap; needs no image)
#   check-engine.sh container IMAGE   a container of IMAGE starts on the default bridge
#
# Prints nothing and exits 0 when the engine is fine; prints what is wrong and exits 1 otherwise.
# DOCKER_HOST selects the engine, as for the docker CLI.
set -euo pipefail

broken() { printf 'the Docker engine%s %s\n' "${DOCKER_HOST:+ at $DOCKER_HOST}" "$*"; exit 1; }

check_bridge() {
    local name
    if ! name="$(timeout 20 docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}' 2>&1)"; then
        broken "has no default bridge network (docker network inspect bridge: ${name##*$'\n'}); restart dockerd without --bridge none"
    fi
    name="${name:-docker0}"
    case "${DOCKER_HOST:-unix://}" in
        unix://*) ;;
        *) return 0 ;;  # a remote engine's interfaces are not ours to see
    esac
    # A rootless engine (its bridge is inside rootlesskit's namespace) or another context
    # (Docker Desktop, a remote one): its interfaces are not in this /sys either.
    case "$(timeout 20 docker info --format '{{.SecurityOptions}} {{.Name}}' 2>/dev/null)" in
        *rootless*) return 0 ;;
    esac
    if [ "$(timeout 20 docker context show 2>/dev/null || echo default)" != default ]; then
        return 0
    fi
    if [ ! -e "/sys/class/net/$name" ]; then
        broken "has lost its default bridge interface $name (containers cannot start); restart dockerd to recreate it"
    fi
}

check_container() {
    local image="$1" output
    if ! output="$(timeout 60 docker run --rm --network bridge --log-driver none "$image" true 2>&1)"; then
        broken "cannot start a container on the default bridge: ${output##*$'\n'}"
    fi
}

case "${1:-}" in
    bridge) check_bridge ;;
    container) check_container "${2:?an image to run}" ;;
    *) echo "usage: $0 bridge | container IMAGE" >&2; exit 2 ;;
esac
