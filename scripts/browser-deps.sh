#!/usr/bin/env bash
# What the browser tests need, installed from Debian's packages and the npm registry:
# Chromium (driven by Playwright, whose own browser download cannot be used) and Segment's
# analytics.js (tests/browser/package.json). Idempotent; `make test` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "browser-deps: $* missing; install it with: sudo apt-get install -y $*" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ -x /usr/bin/chromium ] || apt_install chromium
command -v npm >/dev/null || apt_install nodejs npm

lock=tests/browser/package-lock.json
stamp=tests/browser/node_modules/.installed
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
