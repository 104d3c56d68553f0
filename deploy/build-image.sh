#!/usr/bin/env bash
# Builds the clusterdns container image with podman and checks that it starts and answers:
#
#   bash deploy/build-image.sh            build, inspect, run twice and query with dig
#   bash deploy/build-image.sh --no-run   build and inspect only
#   CLUSTERDNS_IMAGE=registry.example/dns/clusterdns:dev bash deploy/build-image.sh
#
# The static binary is built on the host (Rust target x86_64-unknown-linux-musl), given the file
# capability to bind port 53 as a non-root user, and copied into an empty (`scratch`) image by
# ../Containerfile. Nothing is pulled from a registry and nothing runs inside the build.
# Needs: rustup, musl-tools (musl-gcc, for ring's C code), podman, libcap2-bin (setcap), and
# dig (bind9-dnsutils) for the run checks. Push with `podman push "$CLUSTERDNS_IMAGE"`.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${CLUSTERDNS_IMAGE:-ghcr.io/clusterdns/clusterdns:0.1.0}"
TARGET=x86_64-unknown-linux-musl
STAGE=target/image
RUN=1
[[ "${1:-}" == "--no-run" ]] && RUN=0

say() { printf 'build-image: %s\n' "$*"; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is missing: $2"; }

need cargo "install Rust with rustup (https://rustup.rs)"
need musl-gcc "apt-get install musl-tools"
need podman "apt-get install podman"
need setcap "apt-get install libcap2-bin"
need readelf "apt-get install binutils"
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    say "adding the Rust target $TARGET"
    rustup target add "$TARGET" || die "rustup target add $TARGET failed"
fi

say "cargo build --release --target $TARGET"
cargo build --release --locked --target "$TARGET" --bin clusterdns
mkdir -p "$STAGE"
cp "target/$TARGET/release/clusterdns" "$STAGE/clusterdns"
if command -v strip >/dev/null 2>&1; then
    strip "$STAGE/clusterdns"
fi
if readelf -l "$STAGE/clusterdns" | grep -q 'program interpreter'; then
    die "$STAGE/clusterdns is dynamically linked; a scratch image needs a static binary"
fi
# Port 53 as user 65532: the Deployment adds NET_BIND_SERVICE to the container's bounding set,
# and this file capability makes it effective for the non-root process (as CoreDNS's image does).
setcap cap_net_bind_service=+ep "$STAGE/clusterdns"
say "binary: $(stat -c %s "$STAGE/clusterdns") bytes, static, $(getcap "$STAGE/clusterdns")"

say "podman build -t $IMAGE"
podman build -f Containerfile -t "$IMAGE" .
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
entrypoint=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")
cmd=$(podman image inspect --format '{{json .Config.Cmd}}' "$IMAGE")
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
layers=$(podman image inspect --format '{{len .RootFS.Layers}}' "$IMAGE")
say "image $IMAGE: user $user, entrypoint $entrypoint, cmd $cmd, $size bytes, $layers layer(s)"
[[ "$user" == "65532:65532" ]] || die "the image runs as '$user', not 65532:65532"
if mnt=$(podman image mount "$IMAGE" 2>/dev/null); then
    caps=$(getcap "$mnt/clusterdns")
    podman image unmount "$IMAGE" >/dev/null
    [[ "$caps" == *cap_net_bind_service* ]] \
        || die "the image's /clusterdns lost its file capability (got: '${caps:-none}')"
    say "in the image: ${caps#"$mnt"}"
fi
[[ "$RUN" == 1 ]] || exit 0

need dig "apt-get install bind9-dnsutils"
# Some sandboxes (no cgroup v2, a low hard limit on open files, no CAP_SYS_RESOURCE) need runc,
# cgroupfs and ulimits no higher than the current ones; a plain `podman run` is tried first.
FALLBACK_GLOBAL=(--runtime runc --cgroup-manager=cgroupfs)
FALLBACK_RUN=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
global=()
extra=()
names=()
cleanup() {
    for n in "${names[@]}"; do
        podman "${global[@]}" rm -f "$n" >/dev/null 2>&1 || true
    done
    [[ -n "${scratch:-}" ]] && rm -rf "$scratch"
}
trap cleanup EXIT
free_port() {
    local p
    for _ in $(seq 50); do
        p=$(( 20000 + RANDOM % 30000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free loopback port"
}
run_container() {
    podman "${global[@]}" run -d --name "$@" >/dev/null 2>"$scratch/run.err"
}
# start NAME ARGS...: `podman run -d` (falling back once to the sandbox flags).
start() {
    local name=$1; shift
    names+=("$name")
    current=$name
    run_container "$name" "${extra[@]}" "$@" && return 0
    [[ ${#global[@]} -eq 0 ]] || die "podman run $name failed: $(tail -n 1 "$scratch/run.err")"
    say "plain 'podman run' failed ($(tail -n 1 "$scratch/run.err")); retrying with" \
        "${FALLBACK_GLOBAL[*]} ${FALLBACK_RUN[*]}"
    podman rm -f "$name" >/dev/null 2>&1 || true
    global=("${FALLBACK_GLOBAL[@]}")
    extra=("${FALLBACK_RUN[@]}")
    run_container "$name" "${extra[@]}" "$@" \
        || die "podman run failed with the fallback flags too: $(tail -n 1 "$scratch/run.err")"
}
# ask LABEL DIG-ARGS...: one query that must answer NAME A with an address.
ask() {
    local label=$1; shift
    local out
    for _ in $(seq 20); do
        if out=$(dig +time=1 +tries=1 +short "$@" 2>&1) && [[ "$out" =~ ^[0-9.]+$ ]]; then
            say "$label: $* -> $out"
            return 0
        fi
        sleep 0.5
    done
    podman "${global[@]}" logs "$current" >&2 || true
    die "$label: no answer to dig $* (last: $out)"
}
scratch=$(mktemp -d)
current=
# The mounted files must be readable by the container's user 65532.
chmod 755 "$scratch"
umask 022

# 1. The README's demo Corefile (corefile/Corefile.local, the demo cluster from manifests) on
#    the host's loopback (host network), on a free port instead of 1053.
demo_port=$(free_port)
cp corefile/Corefile.local corefile/demo-cluster.yaml "$scratch/"
sed -i "s/^\.:1053 {/.:$demo_port {/" "$scratch/Corefile.local"
start "clusterdns-image-demo-$$" --network host -v "$scratch:/etc/coredns:ro" "$IMAGE" \
    -conf /etc/coredns/Corefile.local
ask "demo Corefile, UDP" @127.0.0.1 -p "$demo_port" kubernetes.default.svc.cluster.local A
ask "demo Corefile, TCP" +tcp @127.0.0.1 -p "$demo_port" kubernetes.default.svc.cluster.local A

# 2. As the Deployment runs it: port 53 as user 65532 with every capability dropped but
#    NET_BIND_SERVICE, a read-only root, its own network namespace; published on loopback.
mkdir -p "$scratch/k8s"
cp corefile/demo-cluster.yaml "$scratch/k8s/"
printf '.:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        manifests demo-cluster.yaml\n    }\n}\n' \
    > "$scratch/k8s/Corefile"
dns_port=$(free_port)
start "clusterdns-image-port53-$$" --read-only --cap-drop=ALL --cap-add=NET_BIND_SERVICE \
    --security-opt no-new-privileges -p "127.0.0.1:$dns_port:53/udp" -p "127.0.0.1:$dns_port:53/tcp" \
    -v "$scratch/k8s:/etc/coredns:ro" "$IMAGE"
ask "port 53 as 65532, UDP" @127.0.0.1 -p "$dns_port" kubernetes.default.svc.cluster.local A
ask "port 53 as 65532, TCP" +tcp @127.0.0.1 -p "$dns_port" kubernetes.default.svc.cluster.local A
say "ok: $IMAGE ($size bytes) runs as $user and answers"
