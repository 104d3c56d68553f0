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
measure clusterdns "$port" "$work/queries" "$duration" -- "$bin" -conf "$work/Corefile" -quiet
