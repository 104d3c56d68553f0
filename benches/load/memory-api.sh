#!/usr/bin/env bash
# Resident memory and time to sync of clusterdns fed by the Kubernetes API source: a fake
# apiserver on loopback (examples/fake_apiserver.rs) serves SERVICES services in 100 namespaces
# (every tenth headless), ENDPOINTS ready endpoints each, and PODS pods; clusterdns runs with
# `endpoint http://127.0.0.1:PORT` and `pods verified`. Prints the time from launch until the
# last service answers (lists + index build), then VmRSS/VmHWM, and the RSS of the same server
# against an empty apiserver, so the difference is what the cluster costs.
#
#   cargo build --release --bin clusterdns --example fake_apiserver
#   bash benches/load/memory-api.sh [SERVICES] [ENDPOINTS] [PODS]   (defaults: 10000 10 50000)
set -euo pipefail
cd "$(dirname "$0")/../.."
services=${1:-10000}
endpoints=${2:-10}
pods=${3:-50000}
bin=target/release/clusterdns
fake=target/release/examples/fake_apiserver
command -v dig >/dev/null || { echo "dig missing: apt-get install -y bind9-dnsutils" >&2; exit 1; }
[ -x "$bin" ] && [ -x "$fake" ] || {
  echo "build first: cargo build --release --bin clusterdns --example fake_apiserver" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

now_ms() { date +%s%3N; }

# run SERVICES ENDPOINTS PODS NAME: prints "sync_ms rss_kb hwm_kb"
run() {
  local n=$1 e=$2 p=$3 name=$4
  "$fake" "$n" "$e" "$p" > "$work/fake.url" 2>"$work/fake.log" &
  local fpid=$!; pids+=("$fpid")
  for _ in $(seq 600); do [ -s "$work/fake.url" ] && break; sleep 0.1; done
  local url; url=$(head -1 "$work/fake.url")
  [ -n "$url" ] || { echo "fake apiserver did not start" >&2; cat "$work/fake.log" >&2; exit 1; }
  local port=$((20000 + RANDOM % 20000))
  printf '.:%s {\n    bind 127.0.0.1\n    kubernetes cluster.local {\n        endpoint %s\n        pods verified\n        startup_timeout 120s\n    }\n}\n' \
    "$port" "$url" > "$work/Corefile"
  local start; start=$(now_ms)
  "$bin" -conf "$work/Corefile" -quiet > "$work/server.log" 2>&1 &
  local spid=$!; pids+=("$spid")
  local ok=""
  for _ in $(seq 1200); do
    if [ -z "$name" ]; then
      dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 kubernetes.default.svc.cluster.local >/dev/null 2>&1 && ok=1 && break
    elif [ -n "$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "$name" 2>/dev/null)" ]; then
      ok=1; break
    fi
    sleep 0.05
  done
  [ -n "$ok" ] || { echo "clusterdns did not answer" >&2; cat "$work/server.log" >&2; exit 1; }
  local took=$(( $(now_ms) - start ))
  sleep 1
  local rss hwm
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$spid/status")
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$spid/status")
  kill "$spid" "$fpid"; wait "$spid" "$fpid" 2>/dev/null || true
  rm -f "$work/fake.url"
  echo "$took $rss $hwm"
}

last=$((services - 1))
read -r sync_ms rss hwm < <(run "$services" "$endpoints" "$pods" "svc$last.ns$((last % 100)).svc.cluster.local")
read -r _ rss0 hwm0 < <(run 0 0 0 "")
echo "cluster: $services services, $((services * endpoints)) endpoints, $pods pods (API source, pods verified)"
echo "time from launch to the last service answering: ${sync_ms} ms"
echo "VmRSS loaded: ${rss} kB (peak ${hwm} kB); empty cluster: ${rss0} kB (peak ${hwm0} kB)"
echo "index + watch state: $(( (rss - rss0) )) kB = $(( (rss - rss0) * 1024 / (services + services * endpoints + pods) )) bytes per object"
