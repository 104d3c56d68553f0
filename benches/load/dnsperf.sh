#!/usr/bin/env bash
# Whole-server load on loopback: runs clusterdns on the demo cluster (without the per-query `log`
# plugin) and drives it with dnsperf over UDP; prints queries per second, server CPU time per
# query and resident memory. Bounded: DURATION seconds of load (default 10), loopback only.
#
#   bash benches/load/dnsperf.sh [BINARY] [DURATION]
#
# Needs dnsperf (apt-get install -y dnsperf). The figures depend on the machine; compare runs
# made on the same one.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/clusterdns}
duration=${2:-10}
command -v dnsperf >/dev/null || { echo "dnsperf missing: apt-get install -y dnsperf" >&2; exit 1; }
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }

work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

port=$((20000 + RANDOM % 20000))
cp corefile/demo-cluster.yaml "$work/"
cat > "$work/Corefile" <<COREFILE
.:$port {
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests demo-cluster.yaml
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
}
COREFILE
# A mix of what pods ask: service names (hits), search-path misses (NXDOMAIN), SRV, PTR.
cat > "$work/queries" <<'QUERIES'
api.demo.svc.cluster.local A
api.demo.svc.cluster.local AAAA
kubernetes.default.svc.cluster.local A
kube-dns.kube-system.svc.cluster.local A
db.demo.svc.cluster.local A
db-0.db.demo.svc.cluster.local A
_http._tcp.api.demo.svc.cluster.local SRV
frontend.web.svc.cluster.local A
api.demo.svc.cluster.local.demo.svc.cluster.local A
api.demo.svc.cluster.local.svc.cluster.local A
10.0.96.10.in-addr.arpa PTR
10-244-1-5.demo.pod.cluster.local A
QUERIES

"$bin" -conf "$work/Corefile" -quiet > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do
  dig @127.0.0.1 -p "$port" +time=1 +tries=1 api.demo.svc.cluster.local A >/dev/null 2>&1 && break
  sleep 0.1
done

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
before=$(cpu)
dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$duration" -c 4 -Q 1000000 -q 256 > "$work/perf.txt" 2>&1
after=$(cpu)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")

completed=$(awk '/Queries completed:/ {print $3}' "$work/perf.txt")
qps=$(awk '/Queries per second:/ {print $4}' "$work/perf.txt")
lost=$(awk '/Queries lost:/ {print $3}' "$work/perf.txt")
latency=$(awk '/Average Latency/ {print $4}' "$work/perf.txt")
cpu_s=$(awk -v a="$after" -v b="$before" -v t="$ticks" 'BEGIN {printf "%.2f", (a-b)/t}')
us_per_q=$(awk -v a="$after" -v b="$before" -v t="$ticks" -v n="$completed" \
  'BEGIN {if (n > 0) printf "%.2f", (a-b)/t*1e6/n; else print "n/a"}')
echo "queries completed:      $completed (lost $lost) in ${duration}s"
echo "queries per second:     $qps"
echo "average latency:        ${latency}s"
echo "server CPU:             ${cpu_s}s, ${us_per_q} µs per query"
echo "server memory:          RSS ${rss_kb} KiB, peak ${hwm_kb} KiB"
