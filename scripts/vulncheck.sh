#!/usr/bin/env bash
# The vulnerability gate: govulncheck against a pinned copy of the Go vulnerability database, and
# against the live database where it answers. It fails when the code calls a function with a known
# vulnerability, in the standard library or in a module; a vulnerable package that is imported but
# whose vulnerable functions are never called is listed and does not fail. The release workflow
# runs it before anything is published; scripts/test-all.sh runs it before the tests.
#
# The pinned copy is built here from the golang.org/x/vulndb module (its data/osv holds every
# report; scripts/vulndbindex writes the database govulncheck reads from them), because the module
# proxy is the only network this project's CI is sure to have. It is built once per version into
# ${XDG_CACHE_HOME:-$HOME/.cache}/lwa-rotator/vulndb/VERSION. To refresh it, set VULNDB_VERSION
# below to `go list -m golang.org/x/vulndb@latest` and run the script (docs/security.md).
#
#   scripts/vulncheck.sh        # this module: every package (./...), then ./lwacreds on its own
#   scripts/vulncheck.sh DIR    # the module in DIR, every package (the gate's own test)
#   scripts/vulncheck.sh -db    # builds the database if missing and prints its directory
#
# LWA_ROTATOR_VULNDB=DIR uses a database already built in DIR instead of the cached one.
# LWA_ROTATOR_VULNCHECK_ONLINE=1 also checks the live database and fails if it cannot be reached
# (connected CI); 0 never tries it; unset tries it when it answers within 5 seconds.
set -euo pipefail

# Go 1.27.3 whatever Go is installed: the go command fetches it from the module proxy. The
# standard library govulncheck judges is this toolchain's.
export GOTOOLCHAIN=go1.27.3
GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

mode=check target=
case "${1:-}" in
-db) mode=db ;;
"") ;;
*) target=$(cd "$1" && pwd) ;;
esac
cd "$(dirname "$0")/.."

cache=${XDG_CACHE_HOME:-$HOME/.cache}/lwa-rotator
say() { echo "$@" >&2; }

# The database: the module's reports indexed by its own tool, written to a temporary directory
# and moved into place whole, so an interrupted build is never mistaken for a database.
db=${LWA_ROTATOR_VULNDB:-$cache/vulndb/$VULNDB_VERSION-vulndbindex}
if [ ! -s "$db/index/modules.json" ]; then
  if [ -n "${LWA_ROTATOR_VULNDB:-}" ]; then
    say "LWA_ROTATOR_VULNDB=$db holds no vulnerability database (no index/modules.json)"
    exit 2
  fi
  say "building the vulnerability database golang.org/x/vulndb@${VULNDB_VERSION} (once per version)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Outside any module, so the project's go.mod and go.sum stay as they are.
  src=$(cd "$work" && go mod download -json "golang.org/x/vulndb@${VULNDB_VERSION}" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ ! -d "$src/data/osv" ]; then
    say "golang.org/x/vulndb@${VULNDB_VERSION} has no data/osv (downloaded to '${src}')"
    exit 2
  fi
  # Indexed by this repository's own small indexer: vulndb's cmd/indexdb is the reference, but
  # building it compiles minutes of dependencies on a new machine (scripts/vulndbindex).
  go run ./scripts/vulndbindex -vulns "$src/data/osv" -out "$work/db"
  mkdir -p "$(dirname "$db")"
  # Another run may have finished first; its database is the same.
  mv -T "$work/db" "$db" 2>/dev/null || [ -s "$db/index/modules.json" ]
fi
if [ "$mode" = db ]; then
  echo "$db"
  exit 0
fi

# The vulndb repository leaves each report's `modified` unset (the live database fills it in), so
# the database is as new as the commit its pseudo-version names.
stamp=${VULNDB_VERSION#v0.0.0-}
stamp=${stamp%%-*}
reports=$(find "$db/ID" -name 'GO-*.json' | wc -l)
echo "database: golang.org/x/vulndb ${VULNDB_VERSION}, reports up to" \
  "${stamp:0:4}-${stamp:4:2}-${stamp:6:2} ${stamp:8:2}:${stamp:10:2} UTC, ${reports} reports ($db)"

# govulncheck built by this toolchain at the pinned version, kept beside the database: a copy on
# PATH may be another version or built by an older Go, which cannot load code that needs 1.27.
tool=$cache/tools/govulncheck-${GOVULNCHECK_VERSION}-${GOTOOLCHAIN}/govulncheck
if [ ! -x "$tool" ]; then
  say "installing govulncheck ${GOVULNCHECK_VERSION}"
  GOBIN=$(dirname "$tool") go install "golang.org/x/vuln/cmd/govulncheck@${GOVULNCHECK_VERSION}"
fi

online=${LWA_ROTATOR_VULNCHECK_ONLINE:-}
if [ -z "$online" ]; then
  online=0
  if command -v curl >/dev/null && curl -fsS -m 5 -o /dev/null https://vuln.go.dev/index/db.json 2>/dev/null; then
    online=1
  fi
fi

status=0
# scan WHAT DB PATTERN: one govulncheck run; any non-zero exit fails the gate (3: a called
# vulnerability; anything else: the check itself did not run).
scan() {
  echo
  echo "== govulncheck ${GOVULNCHECK_VERSION}, $1: $3"
  local rc=0
  "$tool" -db "$2" "$3" || rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAILED ($1, $3): exit $rc"
    status=1
  fi
}

if [ -n "$target" ]; then
  cd "$target"
  scan "pinned database" "file://$db" ./...
  if [ "$online" = 1 ]; then scan "live database" https://vuln.go.dev ./...; fi
else
  # ./... covers every package of the daemon, lwacreds included; lwacreds runs again on its own
  # because other programs embed it, and its own report is what they inherit.
  scan "pinned database" "file://$db" ./...
  scan "pinned database" "file://$db" ./lwacreds
  if [ "$online" = 1 ]; then
    scan "live database" https://vuln.go.dev ./...
    scan "live database" https://vuln.go.dev ./lwacreds
  fi
fi
if [ "$online" != 1 ]; then
  echo
  echo "live database: not reachable from this machine; checked against the pinned copy above"
fi
exit $status
