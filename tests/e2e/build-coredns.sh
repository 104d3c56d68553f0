#!/usr/bin/env bash
# Builds the reference peer of the differential tier: CoreDNS itself, from source, by module path
# through the Go module proxy (`go install github.com/coredns/coredns@VERSION`). The binary lives
# in a cache directory outside the repository:
#   ${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}/bin/coredns
# Idempotent: does nothing when the binary exists and its stamp records the same version.
# Safe to start several times at once: a build holds a lock (flock) on the cache, and a waiter
# that gets the lock after a build finished sees "up to date".
# `--check` only reports: exit 0 when up to date, 3 when a build is needed (nothing is built).
# The tests call it through tests/support/peers.rs (`peers::ensure(Peer::CoreDns)`).
set -euo pipefail

COREDNS_VERSION="${CLUSTERDNS_E2E_COREDNS_VERSION:-v1.14.7}"
CACHE="${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}"
BIN="$CACHE/bin/coredns"
STAMP="$CACHE/bin/coredns.version"
# The stamp also names the build recipe (bump "recipe" when the go flags change).
WANT="coredns=$COREDNS_VERSION recipe=1"

up_to_date() {
    [[ -x "$BIN" && -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]]
}
if up_to_date; then
    echo "build-coredns: up to date: $BIN ($WANT)"
    exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
    echo "build-coredns: $BIN needs a build ($WANT)"
    exit 3
fi

mkdir -p "$CACHE/bin"
exec 9>"$CACHE/.build-coredns.lock"
if ! flock -n 9; then
    echo "build-coredns: another build holds $CACHE/.build-coredns.lock; waiting for it"
    flock 9
fi
if up_to_date; then
    echo "build-coredns: up to date: $BIN ($WANT), built meanwhile by another process"
    exit 0
fi

# Go's official tarball installs to /usr/local/go, which is not always on PATH.
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
    echo "build-coredns: 'go' (>= 1.25) is required: install Go from https://go.dev/dl (to" \
        "/usr/local/go) or your distribution, then run 'bash tests/e2e/build-coredns.sh'" >&2
    exit 1
fi

start=$(date +%s)
export GOBIN="$CACHE/gobin-coredns" GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$GOBIN"
echo "build-coredns: go install github.com/coredns/coredns@$COREDNS_VERSION ($(go version))"
if ! go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"; then
    echo "build-coredns: 'go install' failed; it fetches modules through the Go module proxy" \
        "($(go env GOPROXY)), so it needs network access to it" >&2
    exit 1
fi
mv "$GOBIN/coredns" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "$WANT" > "$STAMP"
echo "build-coredns: done in $(( $(date +%s) - start )) s: $BIN"
