#!/usr/bin/env bash
# Start the next version after a release:
#   scripts/release.sh NEXT
# records the version in Cargo.toml as released from the current commit
# (tests/upgrade/releases), sets Cargo.toml (and Cargo.lock) to NEXT and
# writes the upgrade script sql/tenancy--<released>--NEXT.sql
# (scripts/upgrade-script.sh), its hand-written part empty. Commit the
# result. From then on, scripts/upgrade-script.sh rewrites the upgrade
# script whenever the extension's SQL changes, keeping the hand-written part.
set -Eeuo pipefail
source "$(dirname "$0")/lib.sh"
next=${1:?usage: scripts/release.sh NEXT_VERSION}
released=$(version)
[[ $next =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { log "not a version: $next"; exit 1; }
git -C "$ROOT" diff --quiet HEAD || { log "commit your changes first: the release is the current commit"; exit 1; }
echo "$released $(git -C "$ROOT" rev-parse HEAD)" >>"$ROOT/tests/upgrade/releases"
sed -i "0,/^version = \"$released\"$/s//version = \"$next\"/" "$ROOT/Cargo.toml"
(cd "$ROOT" && cargo update --offline --quiet -p tenancy)
"$ROOT/scripts/upgrade-script.sh"
log "tenancy $next: commit Cargo.toml, Cargo.lock, tests/upgrade/releases and sql/"
