#!/usr/bin/env bash
# Builds the reference peer of the differential tier (tests/differential.rs): real CoreDNS, by
# module path through the Go module proxy, into a cache directory outside the repository:
#   ${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}/bin/coredns
# Idempotent: does nothing when the binary exists and the stamp file records the same version.
set -euo pipefail

COREDNS_VERSION="${CLUSTERDNS_COREDNS_VERSION:-v1.14.7}"
CACHE="${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}"
STAMP="$CACHE/bin/coredns.version"
WANT="coredns=$COREDNS_VERSION recipe=1"

if [[ -x "$CACHE/bin/coredns" && -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "build-coredns: up to date in $CACHE/bin ($WANT)"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "build-coredns: 'go' is required; install Go from your distribution or go.dev" >&2
    exit 1
fi

start=$(date +%s)
mkdir -p "$CACHE/bin"
# A lock so two tiers starting at once build it once.
exec 9>"$CACHE/bin/.coredns.lock"
flock 9
if [[ -x "$CACHE/bin/coredns" && -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "build-coredns: built meanwhile ($WANT)"
    exit 0
fi
echo "build-coredns: go install github.com/coredns/coredns@$COREDNS_VERSION"
GOBIN="$CACHE/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
"$CACHE/bin/coredns" -version
echo "$WANT" > "$STAMP"
echo "build-coredns: done in $(( $(date +%s) - start )) s: $CACHE/bin/coredns"
