#!/usr/bin/env bash
# Start a Docker engine in the background unless one already answers `docker info`.
# Logs go to $DOCKERD_LOG; waits up to $DOCKER_START_TIMEOUT seconds for the engine.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKER_START_TIMEOUT=${DOCKER_START_TIMEOUT:-60}
PIDFILE=/var/run/docker.pid

engine_up() { timeout 10 docker info >/dev/null 2>&1; }
# Is PID a live (not zombie) process named NAME? (Here, killed processes can stay zombies for a
# while, and `kill -0` succeeds on a zombie: dockerd then waits on a dead containerd and fails.)
proc_alive() {
  local pid=$1 name=$2
  [[ -n "$pid" && -r "/proc/$pid/stat" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]] || return 1
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}
dockerd_alive() { proc_alive "$1" dockerd; }
server_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'; }

if engine_up; then
  echo "start-docker: engine already running (server $(server_version))"
  exit 0
fi

command -v dockerd >/dev/null 2>&1 || { echo "start-docker: dockerd not installed (run .ci/install-system.sh)" >&2; exit 1; }
command -v docker >/dev/null 2>&1 || { echo "start-docker: docker client not installed (run .ci/install-system.sh)" >&2; exit 1; }

# A dockerd left over from an earlier run (pid file of a dead process) blocks a new start.
if [[ -f "$PIDFILE" ]]; then
  old=$(cat "$PIDFILE" 2>/dev/null || true)
  if dockerd_alive "$old"; then
    echo "start-docker: dockerd (pid $old) is running but does not answer; waiting for it" >&2
  else
    rm -f "$PIDFILE"
  fi
fi

# Same for the containerd that dockerd manages.
CTR_PIDFILE=/var/run/docker/containerd/containerd.pid
if [[ -f "$CTR_PIDFILE" ]] && ! proc_alive "$(cat "$CTR_PIDFILE" 2>/dev/null || true)" containerd; then
  rm -f "$CTR_PIDFILE"
fi

start=$(date +%s.%N)
if ! { [[ -f "$PIDFILE" ]] && dockerd_alive "$(cat "$PIDFILE" 2>/dev/null)"; }; then
  mkdir -p "$(dirname "$DOCKERD_LOG")"
  echo "=== $(date -Is) start-docker.sh: starting dockerd" >>"$DOCKERD_LOG"
  setsid dockerd </dev/null >>"$DOCKERD_LOG" 2>&1 &
  dockerd_pid=$!
fi

deadline=$((SECONDS + DOCKER_START_TIMEOUT))
until engine_up; do
  if [[ -n "${dockerd_pid:-}" ]] && ! dockerd_alive "$dockerd_pid"; then
    echo "start-docker: dockerd exited during start-up; last lines of $DOCKERD_LOG:" >&2
    tail -n 25 "$DOCKERD_LOG" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "start-docker: engine did not answer 'docker info' within ${DOCKER_START_TIMEOUT}s; last lines of $DOCKERD_LOG:" >&2
    tail -n 25 "$DOCKERD_LOG" >&2
    exit 1
  fi
  sleep 0.3
done
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
echo "start-docker: dockerd started (pid $(cat "$PIDFILE" 2>/dev/null || echo "${dockerd_pid:-?}"), server $(server_version), ready in ${elapsed}s, log $DOCKERD_LOG)"
