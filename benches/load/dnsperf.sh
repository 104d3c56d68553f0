#!/usr/bin/env bash
# Whole-server load on loopback: clusterdns on the demo cluster (without the per-query `log`
# plugin), driven by dnsperf over UDP with a mix of what pods ask (service names, search-path
# misses, SRV, PTR, pod names). Prints queries per second, server CPU time per query and
# resident memory.
#
#   bash benches/load/dnsperf.sh [BINARY] [DURATION]     (defaults: target/release/clusterdns 10)
#
# Needs dnsperf and dig (apt-get install -y dnsperf bind9-dnsutils). The figures depend on the
# machine (dnsperf shares its cores): compare runs made on the same one.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh
bin=${1:-target/release/clusterdns}
duration=${2:-10}
need_tools
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
demo_workload "$work" "$port"
measure clusterdns "$port" "$work/queries" "$duration" -- "$bin" -conf "$work/Corefile.$port" -quiet
