#!/usr/bin/env bash
# Make sure a Docker daemon answers `docker info`. Idempotent:
#  - daemon already reachable            -> exit 0 at once
#  - dockerd/docker missing              -> apt-get update once, apt-get install -y docker.io
#  - daemon not running                  -> start `dockerd --iptables=false --ip6tables=false`
#                                           in the background (log: /tmp/dockerd.log) and
#                                           wait up to 60 s for `docker info`.
# With --iptables=false, ports published on 127.0.0.1 (`-p 127.0.0.1::6443`)
# still work: docker-proxy forwards them in user space.
set -euo pipefail

log() { echo "[ensure-docker] $*"; }
die() { echo "[ensure-docker] ERROR: $*" >&2; exit 1; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  log "docker daemon already running"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || die "docker is not installed and this is not root (cannot apt-get install docker.io)"
  log "installing docker.io with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/tmp/ensure-docker-apt.log 2>&1 \
    || { tail -5 /tmp/ensure-docker-apt.log >&2; die "apt-get update failed"; }
  apt-get install -y -qq docker.io >>/tmp/ensure-docker-apt.log 2>&1 \
    || { tail -5 /tmp/ensure-docker-apt.log >&2; die "apt-get install docker.io failed"; }
  command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after installing docker.io"
fi

# The apt package may have started the daemon (systemd hosts); give it a moment.
if docker info >/dev/null 2>&1; then
  log "docker daemon running"
  exit 0
fi

dockerd_pid=$(cat /var/run/docker.pid 2>/dev/null || true)
if [[ -z "$dockerd_pid" ]] || ! kill -0 "$dockerd_pid" 2>/dev/null; then
  [[ $(id -u) -eq 0 ]] || die "dockerd is not running and this is not root (cannot start it)"
  log "starting dockerd --iptables=false --ip6tables=false (log: /tmp/dockerd.log)"
  # containerd is started by dockerd itself when no system containerd answers.
  nohup dockerd --iptables=false --ip6tables=false >/tmp/dockerd.log 2>&1 </dev/null &
  disown || true
else
  log "dockerd process exists but does not answer yet; waiting"
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "docker daemon ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 1
done
tail -20 /tmp/dockerd.log >&2 2>/dev/null || true
die "docker daemon did not answer 'docker info' within 60 s (see /tmp/dockerd.log)"
