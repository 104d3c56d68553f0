#!/usr/bin/env bash
# Builds the peers of the end-to-end tier (tests/e2e.rs): a real kube-apiserver and etcd, from
# source, by module path through the Go module proxy. The wrapper module and the binaries live in a
# cache directory outside the repository:
#   ${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}/bin/{kube-apiserver,etcd}
# Idempotent: does nothing when both binaries exist and the stamp file records the same versions.
# Safe to start several times at once: a build holds a lock (flock) on the cache, and a waiter
# that gets the lock after a build finished sees "up to date".
# `--check` only reports: exit 0 when up to date, 3 when a build is needed (nothing is built).
# The tests call it through tests/support/peers.rs (`peers::ensure(Peer::KubeApiserver)`).
# Needs Go >= 1.25 (the `tool` directive, k8s 1.35 declares go 1.25.0).
set -euo pipefail

K8S_VERSION="${CLUSTERDNS_E2E_K8S_VERSION:-v1.35.8}"
ETCD_VERSION="${CLUSTERDNS_E2E_ETCD_VERSION:-v3.6.16}"
# k8s.io/kubernetes v1.X.Y is published together with its staging modules at v0.X.Y.
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
CACHE="${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}"
STAMP="$CACHE/bin/versions"
# The stamp also names the build recipe (bump "recipe" when the go build flags change).
WANT="kubernetes=$K8S_VERSION etcd=$ETCD_VERSION recipe=2"

up_to_date() {
    [[ -x "$CACHE/bin/kube-apiserver" && -x "$CACHE/bin/etcd" && -f "$STAMP" ]] \
        && [[ "$(cat "$STAMP")" == "$WANT" ]]
}
if up_to_date; then
    echo "build-peers: up to date in $CACHE/bin ($WANT)"
    exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
    echo "build-peers: $CACHE/bin needs a build ($WANT)"
    exit 3
fi

mkdir -p "$CACHE/bin"
exec 9>"$CACHE/.build-peers.lock"
if ! flock -n 9; then
    echo "build-peers: another build holds $CACHE/.build-peers.lock; waiting for it"
    flock 9
fi
if up_to_date; then
    echo "build-peers: up to date in $CACHE/bin ($WANT), built meanwhile by another process"
    exit 0
fi

# Go's official tarball installs to /usr/local/go, which is not always on PATH.
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
    echo "build-peers: 'go' (>= 1.25) is required: install Go from https://go.dev/dl (to" \
        "/usr/local/go) or your distribution, then run 'bash tests/e2e/build-peers.sh'" >&2
    exit 1
fi

start=$(date +%s)
mkdir -p "$CACHE/wrapper" "$CACHE/bin"
cd "$CACHE/wrapper"

# The staging modules k8s.io/kubernetes requires at v0.0.0 (replaced by ./staging/src/... in its
# own go.mod, which a dependent module ignores): map each to its published tag.
staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
    cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
    cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
    kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
    mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

{
    echo "module clusterdns.test/e2e-peers"
    echo
    echo "go 1.25.0"
    echo
    echo "godebug default=go1.25"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $K8S_VERSION"
    echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo ")"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do
        echo "	k8s.io/$m => k8s.io/$m $STAGING_VERSION"
    done
    echo ")"
    echo
    echo "tool ("
    echo "	k8s.io/kubernetes/cmd/kube-apiserver"
    echo "	go.etcd.io/etcd/server/v3"
    echo ")"
} > go.mod
rm -f go.sum

export GOFLAGS=-mod=mod CGO_ENABLED=0
echo "build-peers: go mod tidy ($WANT, $(go version))"
if ! go mod tidy; then
    echo "build-peers: 'go mod tidy' failed; it fetches modules through the Go module proxy" \
        "($(go env GOPROXY)), so it needs network access to it" >&2
    exit 1
fi
# Every staging module must resolve to a published tag (`go list -m all` shows a replaced
# module as `path v0.0.0 => path vX`; one left at a bare v0.0.0 needs a replace line).
if go list -m all | grep -E ' v0\.0\.0$'; then
    echo "build-peers: the modules above are unresolved; add them to the replace list" >&2
    exit 1
fi
etcd_selected=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
echo "build-peers: etcd server module selected: $etcd_selected"

echo "build-peers: building kube-apiserver"
# Version stamps as upstream's release build sets them (otherwise /version says v0.0.0-master).
version_pkg=k8s.io/component-base/version
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w -X $version_pkg.gitVersion=$K8S_VERSION -X $version_pkg.gitMajor=1"
ldflags+=" -X $version_pkg.gitMinor=$minor -X $version_pkg.gitTreeState=clean"
ldflags+=" -X $version_pkg.buildDate=1970-01-01T00:00:00Z"
go build -trimpath -ldflags "$ldflags" -o "$CACHE/bin/kube-apiserver.tmp" \
    k8s.io/kubernetes/cmd/kube-apiserver
echo "build-peers: building etcd"
go build -trimpath -ldflags "-s -w" -o "$CACHE/bin/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$CACHE/bin/kube-apiserver.tmp" "$CACHE/bin/kube-apiserver"
mv "$CACHE/bin/etcd.tmp" "$CACHE/bin/etcd"
echo "$WANT" > "$STAMP"
echo "build-peers: done in $(( $(date +%s) - start )) s: $CACHE/bin"
