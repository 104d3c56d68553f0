#!/usr/bin/env bash
# Soak: clusterdns (the kubeadm Corefile's plugins) watching a real kube-apiserver while dnsperf
# drives a steady mixed load over UDP for SOAK_SECONDS and objects churn through the API.
#
#   bash benches/load/soak.sh [BINARY]          (default target/release/clusterdns)
#
# The load: cluster names (ClusterIP, headless, endpoint names, SRV, PTR), search-path misses
# (api.demo.svc.cluster.local.demo.svc.cluster.local), names of churning services, and names
# forwarded to a local dnsmasq (answers and NXDOMAIN), at SOAK_QPS queries per second. The churn:
# every SOAK_CHURN_PERIOD seconds a Service and its EndpointSlice are created and the ones made
# SOAK_CHURN_WINDOW steps before deleted (every other one headless), with curl as the API's
# administrator; clusterdns reads the API with a token only list/watch is granted to.
#
# Every SOAK_INTERVAL seconds one line: answers per second, lost queries, error rcodes (anything
# but NOERROR and NXDOMAIN), p50/p99 latency, clusterdns's RSS and open descriptors, churn
# operations, sdrops: queries the kernel dropped at clusterdns's socket for a full receive
# buffer (the server did not read them in time; the summary also counts such drops machine-wide,
# dnsperf's and dnsmasq's sockets included), runq_ms: how long the server's threads were
# runnable but waiting for a CPU, and the 1-minute load average. Then dnsperf's summary and a
# verdict; the exit status is 1 when queries were lost below saturation (the answered rate
# reached 90% of SOAK_QPS), when any error rcode came, or when RSS or descriptors grew from the
# second interval to the last by more than SOAK_MAX_RSS_GROWTH_KIB / SOAK_MAX_FD_GROWTH.
# Latency is printed, never judged.
#
# Environment (defaults): SOAK_SECONDS (600), SOAK_INTERVAL (10), SOAK_QPS (2000),
# SOAK_CHURN_PERIOD (0.2), SOAK_CHURN_WINDOW (20), SOAK_MAX_RSS_GROWTH_KIB (8192),
# SOAK_MAX_FD_GROWTH (8), SOAK_KEEP (set: keep the work directory and print its path).
#
# Needs the e2e peers (bash tests/e2e/build-peers.sh, run here if missing), dnsperf, dig, curl,
# openssl and dnsmasq (apt-get install -y dnsperf bind9-dnsutils curl openssl dnsmasq-base).
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh
bin=${1:-target/release/clusterdns}
seconds=${SOAK_SECONDS:-600}
interval=${SOAK_INTERVAL:-10}
qps=${SOAK_QPS:-2000}
churn_period=${SOAK_CHURN_PERIOD:-0.2}
churn_window=${SOAK_CHURN_WINDOW:-20}
max_rss_growth=${SOAK_MAX_RSS_GROWTH_KIB:-8192}
max_fd_growth=${SOAK_MAX_FD_GROWTH:-8}
need_tools
[ "$seconds" -ge $((3 * interval)) ] || { echo "SOAK_SECONDS must be at least 3 intervals ($((3 * interval)))" >&2; exit 1; }
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }
bash tests/e2e/build-peers.sh

work=$(mktemp -d)
pids=()
cleanup() {
  local p
  # SIGKILL: a graceful kube-apiserver waits for its watches, and etcd goes at the same time.
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${SOAK_KEEP:-}" ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ peers and the cluster
start_kube_apiserver "$work"
pids+=("$APISERVER_PID" "$ETCD_PID")
start_dnsmasq "$work" --address=/soak.test/192.0.2.10 --address=/nx.test/ --local-ttl=30
pids+=("$DNSMASQ_PID")

for ns in demo soak; do
  api POST /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}" >/dev/null
done
# service NS NAME HEADLESS: a Service with ports http/80 and metrics/9090.
service_json() {
  local ip=""
  [ "$3" = headless ] && ip='"clusterIP":"None",'
  printf '{"apiVersion":"v1","kind":"Service","metadata":{"name":"%s","namespace":"%s"},"spec":{%s"ports":[{"name":"http","port":80,"protocol":"TCP"},{"name":"metrics","port":9090,"protocol":"TCP"}]}}' \
    "$2" "$1" "$ip"
}
# slice_json NS NAME SERVICE ENDPOINTS: ENDPOINTS is the JSON of the endpoint list.
slice_json() {
  printf '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"%s","namespace":"%s","labels":{"kubernetes.io/service-name":"%s"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":%s}' \
    "$2" "$1" "$3" "$4"
}
api POST /api/v1/namespaces/demo/services "$(service_json demo api clusterip)" >/dev/null
api POST /apis/discovery.k8s.io/v1/namespaces/demo/endpointslices \
  "$(slice_json demo api-1 api '[{"addresses":["10.244.1.5"],"conditions":{"ready":true}},{"addresses":["10.244.2.5"],"conditions":{"ready":true}}]')" >/dev/null
api POST /api/v1/namespaces/demo/services "$(service_json demo db headless)" >/dev/null
api POST /apis/discovery.k8s.io/v1/namespaces/demo/endpointslices \
  "$(slice_json demo db-1 db '[{"addresses":["10.244.1.10"],"hostname":"db-0","conditions":{"ready":true}},{"addresses":["10.244.2.11"],"hostname":"db-1","conditions":{"ready":true}},{"addresses":["10.244.1.12"],"hostname":"db-2","conditions":{"ready":false}}]')" >/dev/null
for i in $(seq 0 49); do
  api POST /api/v1/namespaces/demo/services "$(service_json demo "svc$i" clusterip)" >/dev/null
done

# ------------------------------------------------------------------ clusterdns
dns_port=$(free_port)
metrics_port=$(free_port)
cat > "$work/Corefile" <<COREFILE
.:$dns_port {
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       kubeconfig $work/clusterdns.kubeconfig
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus 127.0.0.1:$metrics_port
    forward . 127.0.0.1:$DNSMASQ_PORT {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    loadbalance
}
COREFILE
"$bin" -conf "$work/Corefile" > "$work/clusterdns.log" 2>&1 &
dns_pid=$!
pids+=("$dns_pid")
up=""
for _ in $(seq 300); do
  if [ "$(dig @127.0.0.1 -p "$dns_port" +time=1 +tries=1 +short svc49.demo.svc.cluster.local A 2>/dev/null)" != "" ]; then
    up=1; break
  fi
  kill -0 "$dns_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$up" ] || { echo "clusterdns does not answer; its log:" >&2; tail -n 30 "$work/clusterdns.log" >&2; exit 1; }

# ------------------------------------------------------------------ the query mix
{
  for i in $(seq 0 49); do
    echo "svc$i.demo.svc.cluster.local A"
    echo "svc$i.demo.svc.cluster.local.demo.svc.cluster.local A"
    echo "svc$i.demo.svc.cluster.local.svc.cluster.local A"
  done
  for _ in $(seq 5); do
    cat <<'QUERIES'
api.demo.svc.cluster.local A
api.demo.svc.cluster.local.demo.svc.cluster.local A
api.demo.svc.cluster.local.svc.cluster.local A
api.demo.svc.cluster.local.cluster.local A
kubernetes.default.svc.cluster.local A
kubernetes.default.svc.cluster.local.demo.svc.cluster.local A
_https._tcp.kubernetes.default.svc.cluster.local SRV
_http._tcp.api.demo.svc.cluster.local SRV
db.demo.svc.cluster.local A
db-0.db.demo.svc.cluster.local A
_http._tcp.db.demo.svc.cluster.local SRV
1.0.96.10.in-addr.arpa PTR
10-244-1-5.demo.pod.cluster.local A
nope.demo.svc.cluster.local A
QUERIES
  done
  for i in $(seq 0 99); do echo "churn-$((i % churn_window * 3)).soak.svc.cluster.local A"; done
  for i in $(seq 0 499); do echo "host$i.soak.test A"; echo "host$i.soak.test.demo.svc.cluster.local A"; done
  for i in $(seq 0 99); do echo "gone$i.nx.test A"; done
} > "$work/queries.raw"
shuf --random-source=<(yes) "$work/queries.raw" > "$work/queries"
echo "soak: ${seconds}s at $qps q/s, $(wc -l < "$work/queries") queries in the mix, churn every ${churn_period}s," \
  "clusterdns pid $dns_pid on 127.0.0.1:$dns_port, kube-apiserver $API_URL, dnsmasq 127.0.0.1:$DNSMASQ_PORT"

# ------------------------------------------------------------------ churn
churn() {
  local i=0 old
  while :; do
    local name="churn-$((i % (churn_window * 3)))" kind=clusterip
    [ $((i % 2)) -eq 1 ] && kind=headless
    if api POST /api/v1/namespaces/soak/services "$(service_json soak "$name" "$kind")" >/dev/null 2>&1 &&
       api POST /apis/discovery.k8s.io/v1/namespaces/soak/endpointslices \
         "$(slice_json soak "$name-1" "$name" "[{\"addresses\":[\"10.245.$((i / 250 % 250)).$((i % 250 + 1))\"],\"conditions\":{\"ready\":true}}]")" >/dev/null 2>&1; then
      echo ok >> "$work/churn.ops"
    else
      echo failed >> "$work/churn.ops"
    fi
    if [ "$i" -ge "$churn_window" ]; then
      old="churn-$(((i - churn_window) % (churn_window * 3)))"
      if api DELETE "/apis/discovery.k8s.io/v1/namespaces/soak/endpointslices/$old-1" >/dev/null 2>&1 &&
         api DELETE "/api/v1/namespaces/soak/services/$old" >/dev/null 2>&1; then
        echo ok >> "$work/churn.ops"
      else
        echo failed >> "$work/churn.ops"
      fi
    fi
    i=$((i + 1))
    sleep "$churn_period"
  done
}
: > "$work/churn.ops"
churn &
pids+=("$!")

# ------------------------------------------------------------------ load and per-interval lines
# dnsperf -v prints one line per answer ("> RCODE NAME TYPE SECONDS"), -W its timeouts on the same
# stream, -S a line per interval ("EPOCH: QPS"): awk turns each interval into one line, reading
# the server's RSS and descriptors from /proc at the same moment.
# UDP datagrams dropped machine-wide for a full receive buffer (a receiver starved of CPU).
udp_rcvbuf_errors() {
  awk '/^Udp: / { if (!h) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}
kdrops_before=$(udp_rcvbuf_errors)
printf '%6s %8s %6s %7s %9s %9s %9s %9s %6s %7s %6s %8s %6s\n' time q/s lost errors NXDOMAIN p50_ms p99_ms RSS_KiB fds churn sdrops runq_ms load
dnsperf -s 127.0.0.1 -p "$dns_port" -d "$work/queries" -l "$seconds" -Q "$qps" -c 4 -q 500 -t 2 \
    -S "$interval" -v -W 2> "$work/dnsperf.err" |
  tee "$work/dnsperf.raw" |
  awk -v pid="$dns_pid" -v ops="$work/churn.ops" -v porthex="$(printf '%04X' "$dns_port")" -v interval="$interval" -v out="$work/intervals" '
    function fds(   n, cmd) {
      cmd = "ls /proc/" pid "/fd 2>/dev/null | wc -l"; cmd | getline n; close(cmd); return n + 0
    }
    function rss(   line, f, v) {
      v = 0; f = "/proc/" pid "/status"
      while ((getline line < f) > 0) if (line ~ /^VmRSS:/) { split(line, a, " "); v = a[2] }
      close(f); return v
    }
    # datagrams the kernel dropped at the server socket (a full receive buffer)
    function sdrops(   line, f, v, a) {
      f = "/proc/net/udp"; v = 0
      while ((getline line < f) > 0) {
        split(line, a, " "); if (a[2] == "0100007F:" porthex) v += a[13]
      }
      close(f); return v + 0
    }
    # ms the server threads spent runnable but not running (waiting for a CPU), in total
    function waited(   line, cmd, a, v) {
      cmd = "cat /proc/" pid "/task/*/schedstat 2>/dev/null"; v = 0
      while ((cmd | getline line) > 0) { split(line, a, " "); v += a[2] }
      close(cmd); return v / 1e6
    }
    function load(   line, f, a) {
      f = "/proc/loadavg"; getline line < f; close(f); split(line, a, " "); return a[1]
    }
    function churned(   n, cmd) {
      cmd = "wc -l < " ops; cmd | getline n; close(cmd); return n + 0
    }
    # the latency (ms) below which `q` of this interval`s answers fall (10 us buckets)
    function pct(q,   need, seen, b) {
      if (answers == 0) return 0
      need = q * answers; seen = 0
      for (b = 0; b <= maxb; b++) { seen += hist[b]; if (seen >= need) return b / 100 }
      return maxb / 100
    }
    # a timed-out query: "> T NAME TYPE"
    /^> T / { lost++; next }
    /^> / {
      answers++
      if ($2 == "NXDOMAIN") nx++
      else if ($2 != "NOERROR") { errors++; rc[$2]++ }
      b = int($NF * 100000); hist[b]++; if (b > maxb) maxb = b
      next
    }
    /\[Timeout\]/ { next }
    /^[0-9]+\.[0-9]+: / {
      t += interval; c = churned(); r = rss(); f = fds(); kd = sdrops(); w = waited()
      line = sprintf("%5ds %8.0f %6d %7d %8.1f%% %9.2f %9.2f %9d %6d %7d %6d %8.0f %6s", t,
        answers / interval, lost, errors, (answers ? 100 * nx / answers : 0), pct(0.5), pct(0.99),
        r, f, c - lastc, kd - lastkd, w - lastw, load())
      lastkd = kd; lastw = w
      print line; fflush(); print line > (out ".table"); fflush(out ".table")
      printf "%d %d %d %d %d %.3f\n", t, answers, lost, errors, r, pct(0.99) > out
      fflush(out)
      for (k in rc) printf "        errors: %s %d\n", k, rc[k]
      delete rc; delete hist; answers = 0; nx = 0; errors = 0; lost = 0; maxb = 0; lastc = c
      samples[++n] = r " " f
      next
    }
    BEGIN { lastkd = sdrops(); lastw = waited() }
    END {
      # the rest after the last full interval
      if (answers + lost > 0) {
        line = sprintf("%5s  %8s %6d %7d %8.1f%% %9.2f %9.2f %9d %6d %7d %6d %8.0f %6s", "end", "-",
          lost, errors, (answers ? 100 * nx / answers : 0), pct(0.5), pct(0.99), rss(), fds(),
          churned() - lastc, sdrops() - lastkd, waited() - lastw, load())
        print line; print line > (out ".table")
        printf "%d %d %d %d %d %.3f\n", t, answers, lost, errors, rss(), pct(0.99) > out
      }
      for (i = 1; i <= n; i++) print samples[i] > (out ".samples")
    }'
kill -0 "$dns_pid" 2>/dev/null || { echo "clusterdns died during the soak; its log:" >&2; tail -n 30 "$work/clusterdns.log" >&2; exit 1; }

# ------------------------------------------------------------------ summary and verdict
echo
sed -n '/^Statistics:/,$p' "$work/dnsperf.raw" | sed '/^$/d'
sent=$(awk '/Queries sent:/ {print $3}' "$work/dnsperf.raw")
lost=$(awk '/Queries lost:/ {print $3}' "$work/dnsperf.raw")
achieved=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$work/dnsperf.raw")
errors=$(awk '{e += $4} END {print e + 0}' "$work/intervals")
churn_ok=$(grep -c '^ok$' "$work/churn.ops" || true)
churn_failed=$(grep -c '^failed$' "$work/churn.ops" || true)
read -r rss0 fd0 < <(sed -n 2p "$work/intervals.samples")
read -r rss1 fd1 < <(tail -n 1 "$work/intervals.samples")
p99_first=$(awk 'NR == 2 {print $6}' "$work/intervals")
p99_last=$(awk 'END {print $6}' "$work/intervals")
p99_max=$(awk '$6 > m {m = $6} END {print m + 0}' "$work/intervals")
echo "churn: $churn_ok API writes, $churn_failed failed"
kdrops=$(( $(udp_rcvbuf_errors) - kdrops_before ))
sdrops=$(awk '{ s += $11 } END { print s + 0 }' "$work/intervals.table" 2>/dev/null || echo 0)
echo "UDP datagrams dropped for a full receive buffer: $sdrops at clusterdns's socket, $kdrops machine-wide"
echo "clusterdns: RSS ${rss0} KiB -> ${rss1} KiB, descriptors ${fd0} -> ${fd1} (second interval -> last)"
echo "p99: ${p99_first} ms (second interval), ${p99_last} ms (last), ${p99_max} ms (worst interval)"
echo "summary: sent $sent, lost $lost, error rcodes $errors, $achieved q/s of $qps asked," \
  "RSS growth $((rss1 - rss0)) KiB, descriptor growth $((fd1 - fd0))"
verdict=0
saturated=$((achieved * 10 < qps * 9))
if [ "$saturated" -eq 1 ]; then
  echo "note: saturated ($achieved q/s of $qps asked): lost queries are not judged"
elif [ "${lost:-1}" -ne 0 ]; then
  echo "FAIL: $lost queries lost below saturation ($sdrops dropped unread at clusterdns's socket:" \
    "it was not scheduled in time; see the runq_ms and load columns)"; verdict=1
fi
[ "$errors" -eq 0 ] || { echo "FAIL: $errors answers with an error rcode"; verdict=1; }
[ $((rss1 - rss0)) -le "$max_rss_growth" ] || { echo "FAIL: RSS grew by $((rss1 - rss0)) KiB (> $max_rss_growth)"; verdict=1; }
[ $((fd1 - fd0)) -le "$max_fd_growth" ] || { echo "FAIL: descriptors grew by $((fd1 - fd0)) (> $max_fd_growth)"; verdict=1; }
[ "$churn_ok" -gt 0 ] || { echo "FAIL: no object churned (see $work/churn.ops)"; verdict=1; }
[ "$verdict" -eq 0 ] && echo "PASS"
exit "$verdict"
