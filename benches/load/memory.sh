#!/usr/bin/env bash
# Resident memory of clusterdns serving a generated cluster from manifests: SERVICES services in
# 100 namespaces, each with an EndpointSlice of ENDPOINTS ready endpoints and one Pod per
# endpoint. Prints RSS after the load, and the RSS of the same server with an empty cluster, so
# the difference is what the index costs.
#
#   bash benches/load/memory.sh [BINARY] [SERVICES] [ENDPOINTS]   (defaults: 10000 services, 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/clusterdns}
services=${2:-10000}
endpoints=${3:-10}
command -v dig >/dev/null || { echo "dig missing: apt-get install -y bind9-dnsutils" >&2; exit 1; }
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

awk -v n="$services" -v e="$endpoints" 'BEGIN {
  for (ns = 0; ns < 100; ns++) printf "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns%d\n", ns
  for (i = 0; i < n; i++) {
    ns = i % 100; a = int(i / 250); b = i % 250
    printf "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc%d\n  namespace: ns%d\nspec:\n  clusterIP: 10.96.%d.%d\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n", i, ns, a, b
    printf "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc%d-x\n  namespace: ns%d\n  labels:\n    kubernetes.io/service-name: svc%d\naddressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n", i, ns, i
    for (k = 0; k < e; k++) {
      ip = sprintf("10.%d.%d.%d", 100 + int(k / 250) % 100, (i * e + k) % 250, int((i * e + k) / 250) % 250)
      printf "- addresses: [\"%s\"]\n  conditions: {ready: true}\n  targetRef: {kind: Pod, name: svc%d-%d}\n", ip, i, k
      pods = pods sprintf("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: svc%d-%d\n  namespace: ns%d\nstatus:\n  phase: Running\n  podIP: %s\n", i, k, ns, ip)
    }
    printf "%s", pods; pods = ""
  }
}' > "$work/cluster.yaml"
: > "$work/empty.yaml"

rss_of() {
  local file=$1 port=$((20000 + RANDOM % 20000))
  printf '.:%s {\n    bind 127.0.0.1\n    kubernetes cluster.local {\n        manifests %s\n        pods verified\n    }\n}\n' "$port" "$file" > "$work/Corefile"
  local start=$SECONDS
  "$bin" -conf "$work/Corefile" -quiet > "$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    dig @127.0.0.1 -p "$port" +time=1 +tries=1 cluster.local SOA >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "$(awk '/VmRSS/ {print $2}' /proc/$pid/status) $(awk '/VmHWM/ {print $2}' /proc/$pid/status) $((SECONDS - start))"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}
read -r empty_rss _ _ < <(rss_of empty.yaml)
read -r rss hwm secs < <(rss_of cluster.yaml)
objects=$((services * (2 + endpoints)))
echo "cluster: $services services, $services EndpointSlices with $((services * endpoints)) endpoints, $((services * endpoints)) pods ($(du -h "$work/cluster.yaml" | cut -f1) of YAML)"
echo "RSS empty: ${empty_rss} KiB; loaded: ${rss} KiB (peak during load ${hwm} KiB, ${secs}s to serve)"
awk -v r="$rss" -v e="$empty_rss" -v n="$objects" 'BEGIN { printf "index: %.0f bytes per object (%d objects)\n", (r - e) * 1024 / n, n }'
