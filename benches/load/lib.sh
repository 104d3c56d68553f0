# Shared by the load scripts: start a DNS server, drive it with dnsperf, print its CPU per query
# and memory. Loopback only; every run is bounded by its duration.

# measure NAME PORT QUERYFILE DURATION -- COMMAND...
# Starts COMMAND in the background, waits until PORT answers, runs dnsperf for DURATION seconds,
# prints one block of figures, stops the server.
measure() {
  local name=$1 port=$2 queries=$3 duration=$4
  shift 5
  "$@" > "$work/$name.log" 2>&1 &
  local pid=$!
  local probe
  probe=$(head -n 1 "$queries")
  for _ in $(seq 100); do
    # shellcheck disable=SC2086
    dig @127.0.0.1 -p "$port" +time=1 +tries=1 $probe >/dev/null 2>&1 && break
    sleep 0.1
  done
  local ticks before after
  ticks=$(getconf CLK_TCK)
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l "$duration" -c 4 -Q "${QPS:-1000000}" -q 256 \
    > "$work/$name.perf" 2>&1
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local rss completed qps lost
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  completed=$(awk '/Queries completed:/ {print $3}' "$work/$name.perf")
  qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$work/$name.perf")
  lost=$(awk '/Queries lost:/ {print $3}' "$work/$name.perf")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  awk -v n="$name" -v a="$after" -v b="$before" -v t="$ticks" -v c="$completed" -v q="$qps" \
      -v l="$lost" -v r="$rss" -v d="$duration" 'BEGIN {
    printf "%-12s %9s q in %ss (lost %s), %7s q/s, server CPU %6.2fs = %5.2f us/query, RSS %6d KiB\n",
      n, c, d, l, q, (a-b)/t, (c > 0 ? (a-b)/t*1e6/c : 0), r }'
}

need_tools() {
  command -v dnsperf >/dev/null || { echo "dnsperf missing: apt-get install -y dnsperf" >&2; exit 1; }
  command -v dig >/dev/null || { echo "dig missing: apt-get install -y bind9-dnsutils" >&2; exit 1; }
}

# demo_workload DIR PORT [EXTRA_DIRECTIVE]
# Writes the demo cluster's load: DIR/demo-cluster.yaml, DIR/queries (a mix of what pods ask:
# service names, search-path misses, SRV, PTR, pod names) and DIR/Corefile.PORT serving it on
# 127.0.0.1:PORT without the per-query `log` plugin, plus EXTRA_DIRECTIVE if given.
demo_workload() {
  local dir=$1 port=$2 extra=${3:-}
  cp corefile/demo-cluster.yaml "$dir/"
  cat > "$dir/queries" <<'QUERIES'
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
  cat > "$dir/Corefile.$port" <<COREFILE
.:$port {
    bind 127.0.0.1
    errors
    $extra
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests demo-cluster.yaml
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
}
COREFILE
}
