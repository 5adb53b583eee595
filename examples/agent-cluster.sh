#!/usr/bin/env bash
# Three hearsay agents on this machine sharing a gossip key: members, a
# broadcast, the replicated map, tags and a Prometheus scrape, then a graceful
# leave. Every agent is stopped on exit. Build first: cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
H=target/release/hearsay
[ -x "$H" ] || { echo "build first: cargo build --release" >&2; exit 1; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
KEY=$($H keys generate)
$H agent --name n1 --bind 127.0.0.1:7946 --http 127.0.0.1:8946 --key "$KEY" & pids+=($!)
$H agent --name n2 --bind 127.0.0.1:7947 --http 127.0.0.1:8947 --key "$KEY" --join 127.0.0.1:7946 & pids+=($!)
$H agent --name n3 --bind 127.0.0.1:7948 --http 127.0.0.1:8948 --key "$KEY" --join 127.0.0.1:7946 --zone rack-2 --tag role=cache & pids+=($!)
for _ in $(seq 100); do
  [ "$($H members 2>/dev/null | grep -c ' alive ')" = 3 ] && break
  sleep 0.1
done
set -x
$H members
$H broadcast "hello, cluster" --http 127.0.0.1:8947
sleep 0.2
$H read --http 127.0.0.1:8948
$H kv set color blue
sleep 0.2
$H kv get color --http 127.0.0.1:8948
$H keys list --http 127.0.0.1:8947
$H tags set version=2 --http 127.0.0.1:8947
sleep 0.2
$H members --tag 'role=cache|db'
curl -s 127.0.0.1:8946/metrics | grep -E '^hearsay_(members|delivered_total|datagrams_total|probe_rtt_seconds_count|local_health|datagrams_refused_total\{reason="decrypt"\})'
kill -TERM "${pids[2]}"; sleep 1.5
$H members
