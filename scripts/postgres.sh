#!/usr/bin/env bash
# PostgreSQL for the tests: use the server on 127.0.0.1:5432 when it answers; otherwise start
# the Debian cluster that is installed, or install Debian's package and start its cluster.
# The tests connect as `postgres` over TCP with trust auth on 127.0.0.1 (the Debian default
# is scram for TCP: the script adds a trust line for 127.0.0.1/32 to a cluster it starts).
# Each test run creates its own throwaway database and drops it (tests/postgres_kit.py).
set -euo pipefail

answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if command -v pg_isready >/dev/null && answers; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! $sudo grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
  # first match wins: the trust line goes on top, for the local test user only
  $sudo sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
fi
$sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
  || $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 60); do
  answers && exit 0
  sleep 0.5
done
echo "PostgreSQL did not answer on 127.0.0.1:5432" >&2
exit 1
