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

# ---------------------------------------------------------------- a real API server (soak.sh)

# free_port: prints a port that no TCP or UDP socket of this machine has bound right now.
free_port() {
  local port hex
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    hex=$(printf ':%04X ' "$port")
    if ! cat /proc/net/tcp /proc/net/udp /proc/net/tcp6 /proc/net/udp6 2>/dev/null |
        awk '{print $2 " "}' | grep -qF "$hex"; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port" >&2
  return 1
}

# api METHOD PATH [JSON]: one request to the API server of start_kube_apiserver as its
# administrator; the body on stdout, non-zero on a transport error or an HTTP status >= 400.
api() {
  local method=$1 path=$2 body=${3:-}
  local args=(-sS -k --max-time 10 -X "$method" -H "Authorization: Bearer $API_ADMIN_TOKEN"
    -H 'Content-Type: application/json' -H 'Accept: application/json' -w '\n%{http_code}')
  [ -n "$body" ] && args+=(--data-binary "$body")
  local out code
  out=$(curl "${args[@]}" "$API_URL$path") || return 1
  code=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}"
  [ "$code" -lt 400 ]
}

# start_kube_apiserver DIR: etcd and kube-apiserver, the e2e tier's peers (built by
# tests/e2e/build-peers.sh into ${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}/bin), on
# loopback with their state under DIR, flags as tests/e2e/cluster.rs runs them: a self-signed
# serving certificate, static tokens, RBAC. Grants the user of DIR/clusterdns.kubeconfig (named
# like deploy/'s ServiceAccount) list and watch of what the kubernetes plugin reads, nothing
# else. Sets API_URL, API_ADMIN_TOKEN, ETCD_PID, APISERVER_PID (the caller stops them).
start_kube_apiserver() {
  local dir=$1
  local cache=${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}
  local etcd_bin=$cache/bin/etcd apiserver_bin=$cache/bin/kube-apiserver
  [ -x "$etcd_bin" ] && [ -x "$apiserver_bin" ] || {
    echo "no kube-apiserver/etcd in $cache/bin: bash tests/e2e/build-peers.sh" >&2; return 1; }
  command -v openssl >/dev/null || { echo "openssl missing: apt-get install -y openssl" >&2; return 1; }
  command -v curl >/dev/null || { echo "curl missing: apt-get install -y curl" >&2; return 1; }
  mkdir -p "$dir/etcd" "$dir/certs"
  local etcd_port etcd_peer api_port
  etcd_port=$(free_port); etcd_peer=$(free_port); api_port=$(free_port)
  "$etcd_bin" --name=soak --data-dir="$dir/etcd/data" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="soak=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level=warn \
    > "$dir/etcd.log" 2>&1 &
  ETCD_PID=$!
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/sa.key" 2>/dev/null
  openssl ec -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  API_ADMIN_TOKEN=soak-admin-token
  local dns_token=soak-coredns-token dns_user=system:serviceaccount:kube-system:coredns
  printf '%s,soak-admin,soak-admin,"system:masters"\n%s,%s,soak-coredns,"system:serviceaccounts"\n' \
    "$API_ADMIN_TOKEN" "$dns_token" "$dns_user" > "$dir/tokens.csv"
  "$apiserver_bin" --etcd-servers="http://127.0.0.1:$etcd_port" --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 --secure-port="$api_port" --cert-dir="$dir/certs" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$dir/sa.pub" --service-account-signing-key-file="$dir/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --token-auth-file="$dir/tokens.csv" \
    --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount --profiling=false \
    > "$dir/kube-apiserver.log" 2>&1 &
  APISERVER_PID=$!
  API_URL="https://127.0.0.1:$api_port"
  local ready=""
  for _ in $(seq 600); do
    if [ "$(curl -sk --max-time 2 -H "Authorization: Bearer $API_ADMIN_TOKEN" "$API_URL/readyz" 2>/dev/null)" = ok ]; then
      ready=1; break
    fi
    kill -0 "$APISERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$ready" ] || {
    echo "kube-apiserver not ready; last lines of its log:" >&2
    tail -n 20 "$dir/kube-apiserver.log" >&2; tail -n 5 "$dir/etcd.log" >&2; return 1; }
  api POST /apis/rbac.authorization.k8s.io/v1/clusterroles '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"soak:clusterdns"},"rules":[{"apiGroups":[""],"resources":["services","namespaces","pods"],"verbs":["list","watch"]},{"apiGroups":["discovery.k8s.io"],"resources":["endpointslices"],"verbs":["list","watch"]}]}' >/dev/null
  api POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"soak:clusterdns\"},\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"soak:clusterdns\"},\"subjects\":[{\"kind\":\"User\",\"apiGroup\":\"rbac.authorization.k8s.io\",\"name\":\"$dns_user\"}]}" >/dev/null
  printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: soak\n  cluster:\n    server: %s\n    insecure-skip-tls-verify: true\nusers:\n- name: soak\n  user:\n    token: %s\ncontexts:\n- name: soak\n  context:\n    cluster: soak\n    user: soak\ncurrent-context: soak\n' \
    "$API_URL" "$dns_token" > "$dir/clusterdns.kubeconfig"
}

# start_dnsmasq DIR ARGS...: dnsmasq on a free loopback port answering only from ARGS (no
# resolv.conf, no hosts file); sets DNSMASQ_PORT and DNSMASQ_PID.
start_dnsmasq() {
  local dir=$1
  shift
  command -v dnsmasq >/dev/null || { echo "dnsmasq missing: apt-get install -y dnsmasq-base" >&2; return 1; }
  DNSMASQ_PORT=$(free_port)
  # --keep-in-foreground, not --no-daemon: in debug mode dnsmasq serves TCP inline.
  dnsmasq --keep-in-foreground --port "$DNSMASQ_PORT" --listen-address 127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --pid-file= --user="$(id -un)" --group="$(id -gn)" --log-facility=- \
    "$@" > "$dir/dnsmasq.log" 2>&1 &
  DNSMASQ_PID=$!
  sleep 0.3
  kill -0 "$DNSMASQ_PID" 2>/dev/null || { cat "$dir/dnsmasq.log" >&2; return 1; }
}
