#!/usr/bin/env bash
# The server path (sockets, decode, route, encode) of clusterdns against CoreDNS, both serving
# CoreDNS's `whoami` plugin on loopback under the same dnsperf load. (The kubernetes plugin is
# compared once clusterdns watches a real API server: CoreDNS cannot read manifests.)
#
#   bash benches/load/compare-coredns.sh [CLUSTERDNS] [COREDNS] [DURATION]
#
# COREDNS defaults to $COREDNS or /work/cache/go/bin/coredns; build it outside the repo with
#   GOBIN=/work/cache/go/bin go install github.com/coredns/coredns@v1.14.7
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/load/lib.sh
bin=${1:-target/release/clusterdns}
coredns=${2:-${COREDNS:-/work/cache/go/bin/coredns}}
duration=${3:-10}
need_tools
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }
[ -x "$coredns" ] || {
  echo "no CoreDNS at $coredns: GOBIN=/work/cache/go/bin go install github.com/coredns/coredns@v1.14.7" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "example.org A" > "$work/queries"
for server in clusterdns coredns; do
  port=$((20000 + RANDOM % 20000))
  printf '.:%s {\n    bind 127.0.0.1\n    whoami\n}\n' "$port" > "$work/Corefile.$server"
  if [ "$server" = clusterdns ]; then
    measure clusterdns "$port" "$work/queries" "$duration" -- "$bin" -conf "$work/Corefile.$server" -quiet
  else
    measure coredns "$port" "$work/queries" "$duration" -- "$coredns" -conf "$work/Corefile.$server" -quiet
  fi
done
