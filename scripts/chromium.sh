#!/usr/bin/env bash
# Make Debian's `chromium` available for the browser tests (tests/e2e/test_ui.py drives it with
# Playwright, headless, from /usr/bin/chromium; Playwright never downloads a browser). Quiet and
# idempotent: installs the package only when /usr/bin/chromium is missing. Prints nothing on stdout.
set -euo pipefail
log() { echo "chromium.sh: $*" >&2; }

[ -x /usr/bin/chromium ] && exit 0

log "installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_log=$(mktemp)
trap 'rm -f "$apt_log"' EXIT
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends chromium; } \
    >"$apt_log" 2>&1; then
  tail -n 30 "$apt_log" >&2
  log "installing chromium failed"
  exit 1
fi
[ -x /usr/bin/chromium ] || { log "/usr/bin/chromium is still missing"; exit 1; }
