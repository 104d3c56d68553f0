#!/usr/bin/env bash
# Supply-chain gate (issue 13): `cargo deny check` with deny.toml: licenses, bans and sources
# always; advisories against the RustSec database, fetched from GitHub, or, where GitHub is not
# reachable, from a local git clone of rustsec/advisory-db named by CLUSTERDNS_ADVISORY_DB.
# Fails (naming the step) when neither is available: advisories are never silently skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny
cargo deny check licenses bans sources
if cargo deny check advisories; then
  exit 0
fi
db=${CLUSTERDNS_ADVISORY_DB:-}
if [ -z "$db" ] || [ ! -d "$db" ]; then
  echo "deny.sh: the advisory database could not be fetched and CLUSTERDNS_ADVISORY_DB names no" >&2
  echo "local clone of rustsec/advisory-db: advisories NOT checked" >&2
  exit 1
fi
# cargo-deny looks for the clone under db-path in a directory named after the URL's hash.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q "$db" "$tmp/advisory-db-3157b0e258782691"
sed "s#^db-urls#db-path = \"$tmp\"\ndb-urls#" deny.toml > "$tmp/deny.toml"
echo "deny.sh: advisories from the local clone, last commit $(git -C "$db" log -1 --format=%ci)"
cargo deny --config "$tmp/deny.toml" --offline check advisories
