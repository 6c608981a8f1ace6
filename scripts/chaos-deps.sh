#!/usr/bin/env bash
# What the fault suite needs beyond the virtualenv, from Debian's packages: libfaketime, which
# runs a `tagless serve` on an accelerated or jumped clock (tests/chaos/clock.py). Idempotent;
# `make test` and `make chaos` run it.
set -euo pipefail

lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$lib" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "chaos-deps: libfaketime missing; install it with: sudo apt-get install -y faketime" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
