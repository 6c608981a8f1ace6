#!/usr/bin/env bash
# Issue 7, item 1, as an operator would see it: events acknowledged after retention purged the
# whole outbox. Runs `tagless serve` of the checkout given (default: this one) on a temporary
# config with `outbox: {retention_hours: 0.0005}` and a `file` destination, sends 200 events,
# waits until they are delivered and purged, sends 50 more, and prints what was delivered and
# what `tagless status` says. Before the fix: "delivered 0 of 50", pending 0.
#   usage: bash tests/process/repro_purged_outbox.sh [checkout-dir]
set -euo pipefail
repo=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
tagless="$repo/.venv/bin/tagless"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/stores"
cat >"$work/tagless.yaml" <<YAML
server: {host: 127.0.0.1, port: $port}
outbox: {path: $work/tagless.db, retention_hours: 0.0005, wal_checkpoint_secs: 1}
admin: {host: 127.0.0.1, port: $admin, token: repro-token}
logging: {level: warning, format: json}
YAML
cat >"$work/stores/shop.yaml" <<YAML
store: shop
write_keys: [shop-key]
destinations:
  - {id: archive, type: file, path: $work/delivered.jsonl}
YAML
"$tagless" serve --config "$work" 2>"$work/serve.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done

send() {  # send PREFIX COUNT: one /v1/track per event; prints how many answered 200
  local ok=0
  for i in $(seq 1 "$2"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -u shop-key: -H 'Content-Type: application/json' \
      "http://127.0.0.1:$port/v1/track" \
      -d "{\"messageId\": \"$1-$i\", \"userId\": \"u1\", \"event\": \"Order Completed\"}")
    [ "$code" = 200 ] && ok=$((ok + 1))
  done
  echo "$ok"
}
delivered() { grep -c "\"$1-" "$work/delivered.jsonl" 2>/dev/null || true; }
stored() { sqlite3 "$work/tagless.db" 'SELECT count(*) FROM events'; }

echo "first 200 events: $(send first 200) answered 200"
for _ in $(seq 100); do [ "$(delivered first)" = 200 ] && [ "$(stored)" = 0 ] && break; sleep 0.1; done
echo "first 200 events: delivered $(delivered first), left in the outbox $(stored) (purged)"
echo "next 50 events: $(send second 50) answered 200"
sleep 5  # 5 maintenance rounds: delivery is immediate, a purge follows within seconds
echo "next 50 events: delivered $(delivered second) of 50, left in the outbox $(stored)"
"$tagless" status --config "$work"
