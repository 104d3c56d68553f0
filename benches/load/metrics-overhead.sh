#!/usr/bin/env bash
# Query-path cost of the `prometheus` plugin: the demo cluster (as in dnsperf.sh) served twice
# under the same dnsperf load, without and with `prometheus 127.0.0.1:PORT`; prints server CPU
# per query for both (and, at the end, a few lines of the /metrics it exported).
#
#   [QPS=N] bash benches/load/metrics-overhead.sh [BINARY] [DURATION]   (defaults: target/release/clusterdns 10)
# QPS caps dnsperf's rate (default: as fast as it goes); at a fixed rate both variants serve the
# same load, which makes CPU per query comparable on a busy machine.
#
# Needs dnsperf, dig and curl (apt-get install -y dnsperf bind9-dnsutils curl). Compare figures
# from one run only: dnsperf shares the machine's cores with the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh
bin=${1:-target/release/clusterdns}
duration=${2:-10}
need_tools
command -v curl >/dev/null || { echo "curl missing: apt-get install -y curl" >&2; exit 1; }
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
metrics_port=$((40000 + RANDOM % 10000))
for variant in without with; do
  port=$((20000 + RANDOM % 20000))
  extra=""
  [ "$variant" = with ] && extra="prometheus 127.0.0.1:$metrics_port"
  demo_workload "$work" "$port" "$extra"
  if [ "$variant" = with ]; then
    # Scrape while the server still runs: measure stops it.
    ( sleep $((duration / 2 + 1)); curl -s "http://127.0.0.1:$metrics_port/metrics" > "$work/metrics.txt" ) &
  fi
  measure "$variant-prom" "$port" "$work/queries" "$duration" -- "$bin" -conf "$work/Corefile.$port" -quiet
done
wait
echo "--- sample of /metrics (with-prom) ---"
grep -E '^coredns_dns_(requests|responses)_total' "$work/metrics.txt" | head -n 12 || true
