#!/usr/bin/env bash
# Make Debian's `prometheus` binary available for the tests (tests/integration/test_prometheus.py
# starts its own server on a free loopback port with a temporary config). Quiet and idempotent:
# installs the package only when `prometheus` is not on PATH. Prints nothing on stdout.
set -euo pipefail
log() { echo "prometheus.sh: $*" >&2; }

command -v prometheus >/dev/null 2>&1 && exit 0

log "installing Debian's prometheus"
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_log=$(mktemp)
trap 'rm -f "$apt_log"' EXIT
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends prometheus; } \
    >"$apt_log" 2>&1; then
  tail -n 30 "$apt_log" >&2
  log "installing prometheus failed"
  exit 1
fi
# The package enables a system service on port 9090; the tests start their own server, so stop
# it where a service manager runs it (containers usually have none: nothing is started there).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $sudo systemctl disable --now prometheus >&2 || true
fi
command -v prometheus >/dev/null 2>&1 || { log "prometheus is still not on PATH"; exit 1; }
