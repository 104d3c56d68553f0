#!/usr/bin/env bash
# The README walk-through, checked with the real dig and nslookup against a running server.
#
# Usage: bash tests/dig.sh path/to/clusterdns
#
# Starts the given binary on the demo cluster (corefile/Corefile.local + corefile/demo-cluster.yaml,
# copied to a temporary directory with a free port), waits until it answers, then runs every query
# of docs/walkthrough.md over UDP (some over TCP too) and a few nslookup commands, and checks rcode,
# flags, section counts and the exact records (the SOA serial is masked: it is the load time).
# Expected answers are CoreDNS's behaviour (Kubernetes DNS spec 1.1.0 plus CoreDNS's own rules and
# quirks), written out by hand, not captured from this server. Prints `N passed, M failed` last;
# exits non-zero on any failure, if dig or nslookup is missing, or if the server does not start.
set -u

readonly ZONE=cluster.local
readonly SOA_TAIL="ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 30"

die() {
	printf 'dig.sh: %s\n' "$*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: bash tests/dig.sh BINARY"
for tool in dig nslookup; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found; install bind9-dnsutils: apt-get install -y bind9-dnsutils"
done
BIN=$1
[ -x "$BIN" ] || die "$BIN is not an executable file (build it first: cargo build --release)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$(dirname "$0")/.." && pwd)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clusterdns-dig.XXXXXX") || die "mktemp failed"
SERVER_PID=""
OPS_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	if [ -n "$OPS_PID" ] && kill -0 "$OPS_PID" 2>/dev/null; then
		kill "$OPS_PID" 2>/dev/null
		wait "$OPS_PID" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------- server

PORT=""
# Start the server on a random high port; if that port is taken the binary exits at once and we
# try another one. Then poll, for at most 15 seconds, until a known name answers.
start_server() {
	local attempt polls deadline
	cp "$ROOT/corefile/demo-cluster.yaml" "$WORK/" || die "cannot copy demo-cluster.yaml"
	for attempt in 1 2 3 4 5; do
		PORT=$((20000 + RANDOM % 40000))
		sed "s/^\.:1053 {/.:$PORT {/" "$ROOT/corefile/Corefile.local" >"$WORK/Corefile" ||
			die "cannot write Corefile"
		grep -q "^\.:$PORT {" "$WORK/Corefile" || die "Corefile.local has no '.:1053 {' line to rewrite"
		(cd "$WORK" && exec "$BIN" -conf "$WORK/Corefile") >"$WORK/server.log" 2>&1 &
		SERVER_PID=$!
		polls=0
		deadline=$((SECONDS + 15))
		while [ "$SECONDS" -lt "$deadline" ]; do
			polls=$((polls + 1))
			if ! kill -0 "$SERVER_PID" 2>/dev/null; then
				wait "$SERVER_PID" 2>/dev/null
				SERVER_PID=""
				break
			fi
			if dig @127.0.0.1 -p "$PORT" +time=1 +tries=1 +short "api.demo.svc.$ZONE" A 2>/dev/null |
				grep -qx '10.96.100.10'; then
				printf 'server %s up on 127.0.0.1:%s (attempt %s, %s polls)\n' "$BIN" "$PORT" "$attempt" "$polls"
				return 0
			fi
			sleep 0.2
		done
		if [ -n "$SERVER_PID" ]; then
			printf 'server did not answer within 15s; its log:\n' >&2
			sed 's/^/  | /' "$WORK/server.log" >&2
			die "server not answering"
		fi
		printf 'server exited on port %s (attempt %s); its log:\n' "$PORT" "$attempt" >&2
		sed 's/^/  | /' "$WORK/server.log" >&2
		# Only a port clash is worth another try; any other start-up failure is final.
		grep -qi 'address already in use' "$WORK/server.log" || die "server failed to start"
	done
	die "could not start the server after 5 attempts"
}

# ------------------------------------------------------------------------------ dig and parse

PASSED=0
FAILED=0
CASE=""
ERRS=()
OUT=""
STATUS="" FLAGS="" N_AN="" N_NS="" N_AR="" UDPSIZE="" TRANSPORT=""
ANSWER="" AUTHORITY="" ADDITIONAL="" ANSWER_RAW=""

# Normalise records: collapse whitespace, mask the SOA serial (the time the cluster was loaded).
normalise() {
	awk 'NF { $1 = $1; if ($4 == "SOA") $7 = "SERIAL"; print }'
}

# Lines of the named dig section (e.g. ANSWER) up to the next blank line or header.
section() {
	printf '%s\n' "$OUT" | awk -v want=";; $1 SECTION:" '
		$0 == want { on = 1; next }
		on && (/^$/ || /^;;/) { on = 0 }
		on { print }'
}

# q DIG-ARGS...: one dig query to the test server; parses the reply into the globals above.
q() {
	OUT=$(dig @127.0.0.1 -p "$PORT" +time=2 +tries=1 +noall +comments +answer +authority \
		+additional +stats "$@" 2>&1)
	STATUS=$(printf '%s\n' "$OUT" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p' | head -n1)
	FLAGS=$(printf '%s\n' "$OUT" | sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' | head -n1)
	N_AN=$(printf '%s\n' "$OUT" | sed -n 's/.* ANSWER: \([0-9]*\),.*/\1/p' | head -n1)
	N_NS=$(printf '%s\n' "$OUT" | sed -n 's/.* AUTHORITY: \([0-9]*\),.*/\1/p' | head -n1)
	N_AR=$(printf '%s\n' "$OUT" | sed -n 's/.* ADDITIONAL: \([0-9]*\)$/\1/p' | head -n1)
	UDPSIZE=$(printf '%s\n' "$OUT" | sed -n 's/^; EDNS: .* udp: \([0-9]*\)$/\1/p' | head -n1)
	TRANSPORT=$(printf '%s\n' "$OUT" | sed -n 's/^;; SERVER: .*(\([A-Z]*\))$/\1/p' | head -n1)
	ANSWER_RAW=$(section ANSWER | normalise)
	ANSWER=$(printf '%s\n' "$ANSWER_RAW" | sort)
	AUTHORITY=$(section AUTHORITY | normalise | sort)
	ADDITIONAL=$(section ADDITIONAL | normalise | sort)
}

begin() {
	CASE=$1
	ERRS=()
}
err() { ERRS+=("$*"); }
end() {
	if [ ${#ERRS[@]} -eq 0 ]; then
		PASSED=$((PASSED + 1))
		printf 'ok    %s\n' "$CASE"
	else
		FAILED=$((FAILED + 1))
		printf 'FAIL  %s\n' "$CASE"
		local e
		for e in "${ERRS[@]}"; do printf '        %s\n' "$e"; done
		printf '        dig output:\n'
		printf '%s\n' "$OUT" | sed 's/^/        | /'
	fi
}

# Sorted, normalised expected records, one per argument.
records() {
	[ $# -eq 0 ] && return 0
	printf '%s\n' "$@" | normalise | sort
}

expect_status() { [ "$STATUS" = "$1" ] || err "rcode: want $1, got '${STATUS:-no reply}'"; }
expect_flags() { [ "$FLAGS" = "$1" ] || err "flags: want '$1', got '$FLAGS'"; }
expect_counts() {
	[ "$N_AN $N_NS $N_AR" = "$1 $2 $3" ] ||
		err "counts answer/authority/additional(+OPT): want $1/$2/$3, got $N_AN/$N_NS/$N_AR"
}
expect_section() {
	local name=$1 got=$2 want
	shift 2
	want=$(records "$@")
	[ "$got" = "$want" ] || err "$name section: want [${want//$'\n'/ | }], got [${got//$'\n'/ | }]"
}
expect_answer() { expect_section answer "$ANSWER" "$@"; }
expect_additional() { expect_section additional "$ADDITIONAL" "$@"; }
expect_soa_authority() {
	expect_section authority "$AUTHORITY" "${1:-$ZONE.} 30 IN SOA ${2:-$SOA_TAIL}"
}
expect_transport() { [ "$TRANSPORT" = "$1" ] || err "transport: want $1, got '$TRANSPORT'"; }

# Positive answer: NOERROR, aa set (ra never), exact answer and additional records.
# ok LABEL DIG-ARGS -- ANSWER-RECORDS... [-- ADDITIONAL-RECORDS...]
ok() {
	local label=$1 args=() an=() ar=()
	shift
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do an+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	ar=("$@")
	begin "$label"
	q "${args[@]}"
	expect_status NOERROR
	expect_flags "qr aa rd"
	expect_counts "${#an[@]}" 0 $((${#ar[@]} + 1))
	expect_answer "${an[@]}"
	expect_additional "${ar[@]}"
	expect_section authority "$AUTHORITY"
	expect_transport "$(tcp_or_udp "${args[@]}")"
	end
}

tcp_or_udp() {
	local a
	for a in "$@"; do [ "$a" = "+tcp" ] && { echo TCP; return; }; done
	echo UDP
}

# Negative answer from the kubernetes plugin: RCODE, aa, empty answer, exactly one SOA.
# neg LABEL RCODE DIG-ARGS...
neg() {
	local label=$1 rcode=$2
	shift 2
	begin "$label"
	q "$@"
	expect_status "$rcode"
	expect_flags "qr aa rd"
	expect_counts 0 1 1
	expect_soa_authority
	expect_transport "$(tcp_or_udp "$@")"
	end
}

# A reply the server writes itself (not the plugin): RCODE, no aa, nothing but OPT.
# bare LABEL RCODE FLAGS DIG-ARGS...
bare() {
	local label=$1 rcode=$2 flags=$3
	shift 3
	begin "$label"
	q "$@"
	expect_status "$rcode"
	expect_flags "$flags"
	expect_counts 0 0 1
	expect_answer
	expect_section authority "$AUTHORITY"
	end
}

# nslookup LABEL WANT-EXIT ARGS... -- EXPECTED-LINES...: every expected line must appear verbatim.
ns() {
	local label=$1 want_rc=$2 args=() line out rc
	shift 2
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	begin "$label"
	out=$(timeout 20 nslookup -port="$PORT" -timeout=2 -retry=1 "${args[@]}" 127.0.0.1 2>&1)
	rc=$?
	OUT=$out
	[ "$rc" = "$want_rc" ] || err "exit status: want $want_rc, got $rc"
	for line in "$@"; do
		printf '%s\n' "$out" | grep -qxF -- "$line" || err "missing line: $line"
	done
	end
}

# ------------------------------------------------------------------------------------ queries

start_server
S=svc.$ZONE
D=demo.$S

echo "-- ClusterIP services (A, dual-stack AAAA)"
ok "A api (ClusterIP)" "api.$D" A -- "api.$D. 30 IN A 10.96.100.10"
ok "AAAA api (dual-stack)" "api.$D" AAAA -- "api.$D. 30 IN AAAA fd00:10:96::100a"
ok "A kubernetes.default" "kubernetes.default.$S" A -- "kubernetes.default.$S. 30 IN A 10.96.0.1"
ok "A empty (ClusterIP without endpoints still answers)" "empty.$D" A -- \
	"empty.$D. 30 IN A 10.96.100.20"
ok "A api, mixed case: owner keeps the query's case" API.Demo.svc.Cluster.Local A -- \
	"API.Demo.svc.Cluster.Local. 30 IN A 10.96.100.10"
ok "A api over TCP" "api.$D" A +tcp -- "api.$D. 30 IN A 10.96.100.10"

begin "A api: EDNS OPT mirrored with the client's UDP size"
q "api.$D" A +bufsize=4096
expect_status NOERROR
[ "$UDPSIZE" = 4096 ] || err "EDNS udp size: want 4096, got '$UDPSIZE'"
end
begin "A api without EDNS: no OPT in the reply"
q "api.$D" A +noedns
expect_status NOERROR
expect_counts 1 0 0
[ -z "$UDPSIZE" ] || err "reply carries an OPT record (udp $UDPSIZE) to a query without one"
end
begin "A api with +norec: rd is copied, never ra"
q "api.$D" A +norec
expect_status NOERROR
expect_flags "qr aa"
end

echo "-- SRV"
ok "SRV _http._tcp.api (named port; both families as glue)" "_http._tcp.api.$D" SRV -- \
	"_http._tcp.api.$D. 30 IN SRV 0 50 80 api.$D." -- \
	"api.$D. 30 IN A 10.96.100.10" "api.$D. 30 IN AAAA fd00:10:96::100a"
ok "SRV http.tcp.api (underscores are optional)" "http.tcp.api.$D" SRV -- \
	"http.tcp.api.$D. 30 IN SRV 0 50 80 api.$D." -- \
	"api.$D. 30 IN A 10.96.100.10" "api.$D. 30 IN AAAA fd00:10:96::100a"
ok "SRV api (bare name: every port)" "api.$D" SRV -- \
	"api.$D. 30 IN SRV 0 25 80 api.$D." "api.$D. 30 IN SRV 0 25 9090 api.$D." -- \
	"api.$D. 30 IN A 10.96.100.10" "api.$D. 30 IN AAAA fd00:10:96::100a"
ok "SRV kube-dns (weight before de-dup: 3 entries, 2 records)" "kube-dns.kube-system.$S" SRV -- \
	"kube-dns.kube-system.$S. 30 IN SRV 0 33 53 kube-dns.kube-system.$S." \
	"kube-dns.kube-system.$S. 30 IN SRV 0 33 9153 kube-dns.kube-system.$S." -- \
	"kube-dns.kube-system.$S. 30 IN A 10.96.0.10"
ok "SRV _dns._UDP.kube-dns (protocol matched case-insensitively)" \
	"_dns._UDP.kube-dns.kube-system.$S" SRV -- \
	"_dns._UDP.kube-dns.kube-system.$S. 30 IN SRV 0 100 53 kube-dns.kube-system.$S." -- \
	"kube-dns.kube-system.$S. 30 IN A 10.96.0.10"
ok "SRV _HTTP._tcp.API...Cluster.Local (target keeps the zone's case)" \
	_HTTP._tcp.API.demo.svc.Cluster.Local SRV -- \
	"_HTTP._tcp.API.demo.svc.Cluster.Local. 30 IN SRV 0 50 80 api.demo.svc.Cluster.Local." -- \
	"api.demo.svc.Cluster.Local. 30 IN A 10.96.100.10" \
	"api.demo.svc.Cluster.Local. 30 IN AAAA fd00:10:96::100a"
ok "SRV _postgres._tcp.db (headless: one per ready endpoint)" "_postgres._tcp.db.$D" SRV -- \
	"_postgres._tcp.db.$D. 30 IN SRV 0 50 5432 db-0.db.$D." \
	"_postgres._tcp.db.$D. 30 IN SRV 0 50 5432 db-1.db.$D." -- \
	"db-0.db.$D. 30 IN A 10.244.1.10" "db-1.db.$D. 30 IN A 10.244.2.11"
ok "SRV _postgres._tcp.db over TCP" "_postgres._tcp.db.$D" SRV +tcp -- \
	"_postgres._tcp.db.$D. 30 IN SRV 0 50 5432 db-0.db.$D." \
	"_postgres._tcp.db.$D. 30 IN SRV 0 50 5432 db-1.db.$D." -- \
	"db-0.db.$D. 30 IN A 10.244.1.10" "db-1.db.$D. 30 IN A 10.244.2.11"
ok "SRV _redis._tcp.cache-headless (dashed-IP targets)" "_redis._tcp.cache-headless.$D" SRV -- \
	"_redis._tcp.cache-headless.$D. 30 IN SRV 0 50 6379 10-244-1-20.cache-headless.$D." \
	"_redis._tcp.cache-headless.$D. 30 IN SRV 0 50 6379 10-244-2-21.cache-headless.$D." -- \
	"10-244-1-20.cache-headless.$D. 30 IN A 10.244.1.20" \
	"10-244-2-21.cache-headless.$D. 30 IN A 10.244.2.21"
ok "SRV empty (ClusterIP without endpoints)" "empty.$D" SRV -- \
	"empty.$D. 30 IN SRV 0 100 80 empty.$D." -- "empty.$D. 30 IN A 10.96.100.20"
ok "A _http._tcp.api (A on an SRV name gives the ClusterIP)" "_http._tcp.api.$D" A -- \
	"_http._tcp.api.$D. 30 IN A 10.96.100.10"
neg "SRV _nope._tcp.api (no such port): NXDOMAIN" NXDOMAIN "_nope._tcp.api.$D" SRV
neg "SRV portless (headless without ports): NODATA" NOERROR "portless.$D" SRV

echo "-- headless services and endpoint names"
ok "A db (headless: ready endpoints only)" "db.$D" A -- \
	"db.$D. 30 IN A 10.244.1.10" "db.$D. 30 IN A 10.244.2.11"
ok "A db over TCP" "db.$D" A +tcp -- "db.$D. 30 IN A 10.244.1.10" "db.$D. 30 IN A 10.244.2.11"
ok "A cache-headless" "cache-headless.$D" A -- \
	"cache-headless.$D. 30 IN A 10.244.1.20" "cache-headless.$D. 30 IN A 10.244.2.21"
ok "A portless (headless without ports)" "portless.$D" A -- "portless.$D. 30 IN A 10.244.1.50"
ok "A db-0.db (StatefulSet hostname)" "db-0.db.$D" A -- "db-0.db.$D. 30 IN A 10.244.1.10"
ok "SRV db-0.db (that endpoint's ports)" "db-0.db.$D" SRV -- \
	"db-0.db.$D. 30 IN SRV 0 100 5432 db-0.db.$D." -- "db-0.db.$D. 30 IN A 10.244.1.10"
ok "A 10-244-1-20.cache-headless (dashed-IP endpoint name)" "10-244-1-20.cache-headless.$D" A -- \
	"10-244-1-20.cache-headless.$D. 30 IN A 10.244.1.20"
ok "A 10-244-1-5.api (endpoint name under a ClusterIP service)" "10-244-1-5.api.$D" A -- \
	"10-244-1-5.api.$D. 30 IN A 10.244.1.5"
ok "AAAA fd00-10-244-1--5.api (IPv6 dashed endpoint name)" "fd00-10-244-1--5.api.$D" AAAA -- \
	"fd00-10-244-1--5.api.$D. 30 IN AAAA fd00:10:244:1::5"
neg "A db-2.db (endpoint not ready): NXDOMAIN" NXDOMAIN "db-2.db.$D" A
neg "A 10-244-1-7.api (endpoint not ready): NXDOMAIN" NXDOMAIN "10-244-1-7.api.$D" A
neg "A unready (headless, no ready endpoint): NXDOMAIN" NXDOMAIN "unready.$D" A
neg "AAAA db (headless, IPv4 endpoints only): NODATA" NOERROR "db.$D" AAAA

echo "-- ExternalName"
ok "CNAME internal-alias" "internal-alias.$D" CNAME -- \
	"internal-alias.$D. 30 IN CNAME api.$D."
ok "A internal-alias (in-zone target chased)" "internal-alias.$D" A -- \
	"internal-alias.$D. 30 IN CNAME api.$D." "api.$D. 30 IN A 10.96.100.10"
begin "A internal-alias: CNAME comes before its target"
q "internal-alias.$D" A
[ "$(printf '%s\n' "$ANSWER_RAW" | head -n1 | awk '{print $4}')" = CNAME ] ||
	err "first answer record is not the CNAME: ${ANSWER_RAW//$'\n'/ | }"
end
ok "AAAA internal-alias" "internal-alias.$D" AAAA -- \
	"internal-alias.$D. 30 IN CNAME api.$D." "api.$D. 30 IN AAAA fd00:10:96::100a"
ok "CNAME external" "external.$D" CNAME -- "external.$D. 30 IN CNAME example.com."
ok "A external (outside target, no forward plugin): the CNAME alone, as CoreDNS" "external.$D" A -- \
	"external.$D. 30 IN CNAME example.com."
neg "SRV external: NODATA" NOERROR "external.$D" SRV
neg "TXT internal-alias: NODATA" NOERROR "internal-alias.$D" TXT
neg "A x.external (below an ExternalName): NXDOMAIN" NXDOMAIN "x.external.$D" A

echo "-- PTR"
ok "PTR 10.96.100.10 (service IP)" -x 10.96.100.10 -- \
	"10.100.96.10.in-addr.arpa. 30 IN PTR api.$D."
ok "PTR fd00:10:96::100a (service IPv6)" -x fd00:10:96::100a -- \
	"a.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 30 IN PTR api.$D."
ok "PTR 10.96.0.10 (kube-dns)" -x 10.96.0.10 -- \
	"10.0.96.10.in-addr.arpa. 30 IN PTR kube-dns.kube-system.$S."
ok "PTR 10.244.1.10 (endpoint with hostname)" -x 10.244.1.10 -- \
	"10.1.244.10.in-addr.arpa. 30 IN PTR db-0.db.$D."
ok "PTR 10.244.1.5 (endpoint of a ClusterIP service, dashed name)" -x 10.244.1.5 -- \
	"5.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-5.api.$D."
ok "PTR fd00:10:244:1::5 (IPv6 endpoint)" -x fd00:10:244:1::5 -- \
	"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa. 30 IN PTR fd00-10-244-1--5.api.$D."
ok "PTR 192.168.49.2 (apiserver endpoint, not the hostNetwork pods)" -x 192.168.49.2 -- \
	"2.49.168.192.in-addr.arpa. 30 IN PTR 192-168-49-2.kubernetes.default.$S."
ok "PTR 10.96.100.10 over TCP" -x 10.96.100.10 +tcp -- \
	"10.100.96.10.in-addr.arpa. 30 IN PTR api.$D."
bare "PTR 10.244.1.7 (unready endpoint): fallthrough to the end of the chain, SERVFAIL" \
	SERVFAIL "qr rd" -x 10.244.1.7
bare "PTR 10.244.9.9 (unknown IP): fallthrough, SERVFAIL" SERVFAIL "qr rd" -x 10.244.9.9
begin "PTR in-addr.arpa (reverse zone apex): NODATA with the reverse zone's SOA"
q in-addr.arpa PTR
expect_status NOERROR
expect_flags "qr aa rd"
expect_counts 0 1 1
expect_soa_authority in-addr.arpa. \
	"ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. SERIAL 7200 1800 86400 30"
end
neg "PTR api (PTR on an existing forward name): NODATA" NOERROR "api.$D" PTR

echo "-- pod records (pods insecure)"
ok "A 10-244-1-5.demo.pod" "10-244-1-5.demo.pod.$ZONE" A -- \
	"10-244-1-5.demo.pod.$ZONE. 30 IN A 10.244.1.5"
ok "AAAA fd00-10-244-1--5.demo.pod" "fd00-10-244-1--5.demo.pod.$ZONE" AAAA -- \
	"fd00-10-244-1--5.demo.pod.$ZONE. 30 IN AAAA fd00:10:244:1::5"
ok "A 192-168-49-2.kube-system.pod (hostNetwork IP)" "192-168-49-2.kube-system.pod.$ZONE" A -- \
	"192-168-49-2.kube-system.pod.$ZONE. 30 IN A 192.168.49.2"
ok "A x.10-244-1-5.demo.pod (one extra label is ignored)" "x.10-244-1-5.demo.pod.$ZONE" A -- \
	"x.10-244-1-5.demo.pod.$ZONE. 30 IN A 10.244.1.5"
neg "AAAA 10-244-1-5.demo.pod (IPv4 name): NODATA" NOERROR "10-244-1-5.demo.pod.$ZONE" AAAA
neg "A 10-244-1-5.nope.pod (no such namespace): NXDOMAIN" NXDOMAIN "10-244-1-5.nope.pod.$ZONE" A
neg "A not-an-ip.demo.pod: NXDOMAIN" NXDOMAIN "not-an-ip.demo.pod.$ZONE" A
neg "A x.y.z.10-244-1-5.demo.pod (too many labels): NXDOMAIN" NXDOMAIN \
	"x.y.z.10-244-1-5.demo.pod.$ZONE" A
neg "A demo.pod (namespace node): NODATA" NOERROR "demo.pod.$ZONE" A

echo "-- apex: SOA, NS, dns-version"
ok "SOA cluster.local" "$ZONE" SOA -- "$ZONE. 30 IN SOA $SOA_TAIL"
begin "SOA cluster.local: serial is a Unix time"
q "$ZONE" SOA
serial=$(printf '%s\n' "$OUT" | awk '$4 == "SOA" { print $7; exit }')
case "$serial" in
'' | *[!0-9]*) err "SOA serial is not a number: '$serial'" ;;
*) [ "$serial" -ge 1600000000 ] || err "SOA serial $serial is not a plausible Unix time" ;;
esac
end
ok "SOA cluster.local over TCP" "$ZONE" SOA +tcp -- "$ZONE. 30 IN SOA $SOA_TAIL"
ok "SOA Cluster.LOCAL (owner and names keep the query's case)" Cluster.LOCAL SOA -- \
	"Cluster.LOCAL. 30 IN SOA ns.dns.Cluster.LOCAL. hostmaster.Cluster.LOCAL. SERIAL 7200 1800 86400 30"
# Only loopback is bound: no non-loopback self address, so no NS record and no ns.dns address.
neg "NS cluster.local (server bound to loopback only): NODATA" NOERROR "$ZONE" NS
neg "A ns.dns.cluster.local (no non-loopback address): NODATA" NOERROR "ns.dns.$ZONE" A
ok "TXT dns-version (TTL 28800 whatever the ttl option)" "dns-version.$ZONE" TXT -- \
	"dns-version.$ZONE. 28800 IN TXT \"1.1.0\""
neg "A dns-version: NXDOMAIN" NXDOMAIN "dns-version.$ZONE" A
neg "A cluster.local (apex): NODATA" NOERROR "$ZONE" A
neg "TXT cluster.local (apex): NXDOMAIN" NXDOMAIN "$ZONE" TXT

echo "-- negative answers"
neg "A missing.demo.svc: NXDOMAIN" NXDOMAIN "missing.$D" A
neg "A missing.demo.svc over TCP: NXDOMAIN" NXDOMAIN "missing.$D" A +tcp
begin "A Missing.demo.svc.Cluster.LOCAL: SOA in the query's case"
q Missing.demo.svc.Cluster.LOCAL A
expect_status NXDOMAIN
expect_soa_authority Cluster.LOCAL. \
	"ns.dns.Cluster.LOCAL. hostmaster.Cluster.LOCAL. SERIAL 7200 1800 86400 30"
end
neg "A nope.svc (no such namespace): NXDOMAIN" NXDOMAIN "nope.$S" A
neg "A foo.cluster.local (neither svc nor pod): NXDOMAIN" NXDOMAIN "foo.$ZONE" A
neg "A a.b.c.api (too many labels): NXDOMAIN" NXDOMAIN "a.b.c.api.$D" A
neg "TXT api (service exists): NODATA" NOERROR "api.$D" TXT
neg "MX api: NODATA" NOERROR "api.$D" MX
neg "ANY api (never expanded): NODATA" NOERROR "api.$D" ANY +notcp
neg "ANY api over TCP (dig's default for ANY): NODATA" NOERROR "api.$D" ANY +tcp
neg "HINFO api: NODATA" NOERROR "api.$D" HINFO
neg "SOA api (below the apex): NODATA" NOERROR "api.$D" SOA
neg "SOA missing (below the apex, even if missing): NODATA" NOERROR "missing.$D" SOA
neg "A demo.svc (namespace node): NODATA" NOERROR "$D" A
neg "TXT demo.svc: NXDOMAIN" NXDOMAIN "$D" TXT
neg "A svc.cluster.local: NODATA" NOERROR "$S" A
neg "TXT pod.cluster.local: NXDOMAIN" NXDOMAIN "pod.$ZONE" TXT

echo "-- outside the plugin"
bare "A example.com (not our zone, no next plugin): SERVFAIL" SERVFAIL "qr rd" example.com A
bare "TXT version.bind CH (class not IN): REFUSED" REFUSED "qr rd" version.bind TXT CH
begin "AXFR cluster.local (no transfer plugin): REFUSED"
q "$ZONE" AXFR
expect_status REFUSED
expect_answer
end

echo "-- nslookup"
ns "nslookup api (A and AAAA)" 0 "api.$D." -- \
	"Name:	api.$D" "Address: 10.96.100.10" "Address: fd00:10:96::100a"
ns "nslookup -vc db (TCP)" 0 -vc "db.$D." -- \
	"Name:	db.$D" "Address: 10.244.1.10" "Address: 10.244.2.11"
ns "nslookup -type=srv _http._tcp.api" 0 -type=srv "_http._tcp.api.$D." -- \
	"_http._tcp.api.$D	service = 0 50 80 api.$D."
ns "nslookup internal-alias (CNAME chased)" 0 "internal-alias.$D." -- \
	"internal-alias.$D	canonical name = api.$D." "Address: 10.96.100.10"
ns "nslookup 10.96.100.10 (PTR)" 0 10.96.100.10 -- \
	"10.100.96.10.in-addr.arpa	name = api.$D."
ns "nslookup -type=txt dns-version" 0 -type=txt "dns-version.$ZONE." -- \
	"dns-version.$ZONE	text = \"1.1.0\""
ns "nslookup -type=soa cluster.local" 0 -type=soa "$ZONE." -- \
	"	origin = ns.dns.$ZONE" "	mail addr = hostmaster.$ZONE" "	minimum = 30"
ns "nslookup missing (NXDOMAIN)" 1 "missing.$D." -- \
	"** server can't find missing.$D: NXDOMAIN"

begin "server still running after all queries"
kill -0 "$SERVER_PID" 2>/dev/null || err "server exited; log: $(tail -n 5 "$WORK/server.log")"
OUT=""
end

# ---------------------------------------------- HTTP endpoints: health, ready, prometheus (ops)
# A second server on the demo cluster with /health, /ready and /metrics on loopback ports; shows
# what `curl -s` prints for each and checks it.
echo "-- HTTP endpoints: health, ready, prometheus"
command -v curl >/dev/null 2>&1 || die "curl not found; install it: apt-get install -y curl"
OPS_DNS="" OPS_HTTP=""
for attempt in 1 2 3 4 5; do
	OPS_DNS=$((20000 + RANDOM % 20000))
	OPS_HTTP=$((40000 + RANDOM % 20000))
	cat >"$WORK/Corefile.ops" <<COREFILE
.:$OPS_DNS {
    bind 127.0.0.1
    health 127.0.0.1:$OPS_HTTP
    ready 127.0.0.1:$((OPS_HTTP + 1))
    prometheus 127.0.0.1:$((OPS_HTTP + 2))
    kubernetes $ZONE in-addr.arpa ip6.arpa {
        manifests demo-cluster.yaml
    }
}
COREFILE
	(cd "$WORK" && exec "$BIN" -conf "$WORK/Corefile.ops" -quiet) >"$WORK/ops.log" 2>&1 &
	OPS_PID=$!
	deadline=$((SECONDS + 15))
	while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$OPS_PID" 2>/dev/null; do
		curl -s -o /dev/null "http://127.0.0.1:$OPS_HTTP/health" && break
		sleep 0.2
	done
	kill -0 "$OPS_PID" 2>/dev/null && break
	wait "$OPS_PID" 2>/dev/null
	OPS_PID=""
done
[ -n "$OPS_PID" ] || die "HTTP endpoint server did not start; its log: $(tail -n 5 "$WORK/ops.log")"

# show_curl URL: prints `$ curl -s URL` and its output (indented), keeps it in OUT with the code.
show_curl() {
	printf '$ curl -s %s\n' "$1"
	OUT=$(curl -s "$1")
	CODE=$(curl -s -o /dev/null -w '%{http_code}' "$1")
	printf '%s\n' "$OUT" | sed 's/^/  /'
}
begin "GET /health: 200 OK"
show_curl "http://127.0.0.1:$OPS_HTTP/health"
[ "$CODE" = 200 ] && [ "$OUT" = OK ] || err "want 200 OK, got $CODE '$OUT'"
end
begin "GET /ready: 200 OK (manifests loaded)"
show_curl "http://127.0.0.1:$((OPS_HTTP + 1))/ready"
[ "$CODE" = 200 ] && [ "$OUT" = OK ] || err "want 200 OK, got $CODE '$OUT'"
end
begin "GET /metrics: coredns_dns_requests_total counts a dig query"
dig @127.0.0.1 -p "$OPS_DNS" +time=2 +tries=1 +short "api.demo.svc.$ZONE" A >/dev/null 2>&1
printf '$ curl -s http://127.0.0.1:%s/metrics | grep -E "^coredns_(dns_requests_total|dns_responses_total|build_info)"\n' "$((OPS_HTTP + 2))"
METRICS=$(curl -s "http://127.0.0.1:$((OPS_HTTP + 2))/metrics")
printf '%s\n' "$METRICS" | grep -E '^coredns_(dns_requests_total|dns_responses_total|build_info)' | sed 's/^/  /'
printf '%s\n' "$METRICS" | grep -q "^coredns_dns_requests_total{.*server=\"dns://127.0.0.1:$OPS_DNS\".*type=\"A\".*} [1-9]" ||
	err "no coredns_dns_requests_total for type A on dns://127.0.0.1:$OPS_DNS"
printf '%s\n' "$METRICS" | grep -q '^process_cpu_seconds_total ' || err "no process metrics"
end
# ------------------------------------------------ forward: the kubeadm Corefile and dnsmasq
# A second server runs corefile/Corefile.kubeadm adapted to loopback (random ports, bind
# 127.0.0.1, `forward . 127.0.0.1:DNSMASQ_PORT` instead of /etc/resolv.conf) with dnsmasq as its
# upstream serving external.test (and NXDOMAIN for nx.test); names outside the cluster zone must
# resolve through it.
echo "-- forward (kubeadm Corefile, dnsmasq upstream)"
command -v dnsmasq >/dev/null 2>&1 ||
	die "dnsmasq not found; install dnsmasq-base: apt-get install -y dnsmasq-base"
DNSMASQ_PID=""
FWD_PID=""
stop_forward_servers() {
	local pid
	for pid in "$FWD_PID" "$DNSMASQ_PID"; do
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done
	FWD_PID=""
	DNSMASQ_PID=""
}
trap 'stop_forward_servers; cleanup' EXIT

# start_dnsmasq: on a random port, retried on a clash; sets DNSMASQ_PORT.
start_dnsmasq() {
	local attempt
	for attempt in 1 2 3 4 5; do
		DNSMASQ_PORT=$((20000 + RANDOM % 40000))
		# --keep-in-foreground, not --no-daemon: in debug mode dnsmasq serves TCP inline, and a
		# pooled upstream TCP connection would block its UDP service.
		dnsmasq --keep-in-foreground --port "$DNSMASQ_PORT" --listen-address 127.0.0.1 --bind-interfaces \
			--no-resolv --no-hosts --pid-file= --user="$(id -un)" --group="$(id -gn)" \
			--address=/external.test/192.0.2.10 --address=/nx.test/ --local-ttl=30 --log-facility=- >"$WORK/dnsmasq.log" 2>&1 &
		DNSMASQ_PID=$!
		local deadline=$((SECONDS + 10))
		while [ "$SECONDS" -lt "$deadline" ]; do
			kill -0 "$DNSMASQ_PID" 2>/dev/null || break
			if dig @127.0.0.1 -p "$DNSMASQ_PORT" +time=1 +tries=1 +short external.test A 2>/dev/null |
				grep -qx '192.0.2.10'; then
				return 0
			fi
			sleep 0.1
		done
		kill "$DNSMASQ_PID" 2>/dev/null
		wait "$DNSMASQ_PID" 2>/dev/null
		DNSMASQ_PID=""
	done
	sed 's/^/  | /' "$WORK/dnsmasq.log" >&2
	die "dnsmasq did not start"
}

# start_forward_server: the adapted kubeadm Corefile on a random port; sets FWD_PORT.
start_forward_server() {
	local attempt base=$((20000 + RANDOM % 40000))
	for attempt in 1 2 3 4 5; do
		FWD_PORT=$((20000 + RANDOM % 40000))
		mkdir -p "$WORK/kubeadm"
		cp "$ROOT/corefile/demo-cluster.yaml" "$WORK/kubeadm/" || die "cannot copy demo-cluster.yaml"
		# No cluster here: the kubernetes block reads the demo manifests instead of the
		# in-cluster API (everything else of the kubeadm Corefile stays as it is).
		sed -e "s/^\.:53 {/.:$FWD_PORT {\n    bind 127.0.0.1/" \
			-e "s/^\(       pods insecure\)$/\1\n       manifests demo-cluster.yaml/" \
			-e "s|forward \. /etc/resolv\.conf|forward . 127.0.0.1:$DNSMASQ_PORT|" \
			-e "s/prometheus :9153/prometheus 127.0.0.1:$((base + 1))/" \
			-e "s/^\(    health\) {/\1 127.0.0.1:$((base + 2)) {/" \
			-e "s/^\(    ready\)$/\1 127.0.0.1:$((base + 3))/" \
			"$ROOT/corefile/Corefile.kubeadm" >"$WORK/kubeadm/Corefile" ||
			die "cannot write the kubeadm Corefile"
		grep -q "forward . 127.0.0.1:$DNSMASQ_PORT" "$WORK/kubeadm/Corefile" ||
			die "Corefile.kubeadm has no 'forward . /etc/resolv.conf' line to rewrite"
		(cd "$WORK/kubeadm" && exec "$BIN" -conf "$WORK/kubeadm/Corefile") >"$WORK/kubeadm.log" 2>&1 &
		FWD_PID=$!
		local deadline=$((SECONDS + 15))
		while [ "$SECONDS" -lt "$deadline" ]; do
			kill -0 "$FWD_PID" 2>/dev/null || break
			if dig @127.0.0.1 -p "$FWD_PORT" +time=1 +tries=1 +short external.test A 2>/dev/null |
				grep -qx '192.0.2.10'; then
				printf 'kubeadm server up on 127.0.0.1:%s, dnsmasq on 127.0.0.1:%s\n' \
					"$FWD_PORT" "$DNSMASQ_PORT"
				return 0
			fi
			sleep 0.2
		done
		if kill -0 "$FWD_PID" 2>/dev/null || ! grep -qi 'address already in use' "$WORK/kubeadm.log"; then
			sed 's/^/  | /' "$WORK/kubeadm.log" >&2
			die "the kubeadm server did not answer external.test"
		fi
		wait "$FWD_PID" 2>/dev/null
		FWD_PID=""
		base=$((20000 + RANDOM % 40000))
	done
	die "could not start the kubeadm server after 5 attempts"
}

# The answer section without TTLs (a cache in front may age them).
expect_answer_ttl_masked() {
	local got want
	got=$(printf '%s\n' "$ANSWER" | awk 'NF { $2 = "TTL"; print }')
	want=$(records "$@" | awk 'NF { $2 = "TTL"; print }')
	[ "$got" = "$want" ] || err "answer section: want [${want//$'\n'/ | }], got [${got//$'\n'/ | }]"
}

start_dnsmasq
start_forward_server
WALK_PORT=$PORT
PORT=$FWD_PORT
begin "forward: A external.test through the kubeadm Corefile resolves via dnsmasq"
q external.test A
expect_status NOERROR
expect_answer_ttl_masked "external.test. 30 IN A 192.0.2.10"
[[ " $FLAGS " == *" ra "* ]] || err "flags: want ra from dnsmasq, got '$FLAGS'"
end
begin "forward: A external.test over TCP"
q external.test A +tcp
expect_status NOERROR
expect_answer_ttl_masked "external.test. 30 IN A 192.0.2.10"
expect_transport TCP
end
begin "forward: A Sub.External.TEST keeps the query's case"
q Sub.External.TEST A
expect_status NOERROR
expect_answer_ttl_masked "Sub.External.TEST. 30 IN A 192.0.2.10"
end
begin "forward: A a.nx.test: dnsmasq's NXDOMAIN passed on"
q a.nx.test A
expect_status NXDOMAIN
expect_answer
end
begin "forward: kubeadm Corefile still answers cluster names itself (not forwarded)"
q api.demo.svc.cluster.local A
expect_status NOERROR
expect_answer "api.demo.svc.cluster.local. 30 IN A 10.96.100.10"
end
begin "forward: kubeadm server still running (no loop false alarm)"
kill -0 "$FWD_PID" 2>/dev/null || err "server exited; log: $(tail -n 5 "$WORK/kubeadm.log")"
OUT=""
end
PORT=$WALK_PORT
stop_forward_servers
# ------------------------------------------------------------- end of the forward section

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
