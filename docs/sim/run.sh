#!/usr/bin/env bash
# Re-runs every `hearsay sim` figure in docs/membership.md and writes each
# command with its output to docs/sim/<name>.txt. Takes about an hour on
# 2 cores (the 10,000-member runs are most of it).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
sim=target/release/hearsay
out=docs/sim
run() {
  local name=$1; shift
  {
    echo "\$ hearsay sim $*"
    "$sim" sim "$@" -q
  } > "$out/$name.txt"
  echo "wrote $out/$name.txt"
}
for seed in 1 2 3; do
  run "crash-1000-seed$seed" --members 1000 --duration 10m --loss 0.01 --crash 50 --seed "$seed"
  run "pause-lifeguard-on-seed$seed" --members 1000 --duration 10m --loss 0.01 --crash 50 --pause 0.05:3s --lifeguard on --seed "$seed"
  run "pause-lifeguard-off-seed$seed" --members 1000 --duration 10m --loss 0.01 --crash 50 --pause 0.05:3s --lifeguard off --seed "$seed"
done
run partition-1000 --members 1000 --duration 3m --partition 0.5:60s:60s
run broadcast-1000 --members 1000 --duration 3m --latency 50ms --broadcast-rate 10
run broadcast-crash-restart-1000 --members 1000 --duration 10m --latency 50ms --broadcast-rate 10 --crash 50 --restart
run kv-crash-restart-1000 --members 1000 --duration 3m --latency 50ms --broadcast-rate 10 --crash 50 --restart --kv-rate 10
for n in 100 1000 10000; do
  run "scale-$n" --members "$n" --duration 10m --loss 0.01 --crash 10 --json
  run "scale-$n-crash50" --members "$n" --duration 10m --loss 0.01 --crash 50 --json
done
