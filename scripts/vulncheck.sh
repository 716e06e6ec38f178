#!/usr/bin/env bash
# govulncheck needs vuln.go.dev. Where it cannot be reached (this project's sandboxed CI), say so
# plainly and go on; a connected CI sets LWA_ROTATOR_REQUIRE_VULNCHECK=1 to make it a hard gate.
set -uo pipefail
out=$(govulncheck ./... 2>&1)
status=$?
if [ $status -eq 0 ]; then
  echo "$out" | tail -n 3
  exit 0
fi
if echo "$out" | grep -qiE 'vuln.go.dev|dial tcp|no such host|connection refused|i/o timeout|fetching vulnerabilities'; then
  echo "govulncheck: the vulnerability database is unreachable from this machine; NOT checked."
  echo "  (run 'govulncheck ./...' on a connected machine, or set LWA_ROTATOR_REQUIRE_VULNCHECK=1 to fail here)"
  [ "${LWA_ROTATOR_REQUIRE_VULNCHECK:-0}" = "1" ] && exit 1
  exit 0
fi
echo "$out"
exit $status
