#!/usr/bin/env bash
# The whole test suite, from a fresh machine that has only Go: installs what the tests need
# (pinned), then runs vet, formatting, static analysis, every Go test with -race, the Prometheus
# rule tests and a short fuzz run. README.md and .ci/run both call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# go.mod needs Go 1.27.3: the go command fetches it from the module proxy where another Go is
# installed, and every tool below is built and run by it.
export GOTOOLCHAIN=go1.27.3
STATICCHECK_VERSION=v0.8.2
MOTO_VERSION=5.2.1
HELM_VERSION=v3.22.0
export PATH="$(go env GOPATH)/bin:$PATH"

# Each step says when it starts, so a run shows where its time goes (the budget on a fresh
# machine is 15 minutes: docs/testing.md).
step() { printf '\n==> %s (at %dm%02ds)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

step "installing test dependencies"
ACTIONLINT_VERSION=v1.7.12
# Debian's packages in one apt run: promtool and prometheus for the rules and e2e/prometheus; runc
# and the CA bundle for e2e/container, which runs the image's filesystem as root.
packages=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || packages+=(prometheus)
command -v runc >/dev/null && [ -s /etc/ssl/certs/ca-certificates.crt ] || packages+=(runc ca-certificates)
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
# The packaged service would hold port 9090 and write its own data: the tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus 2>/dev/null || true; fi
if ! command -v moto_server >/dev/null; then
  python3 -m pip install --quiet "moto[server]==${MOTO_VERSION}"
fi
# The Go tools, pinned, each built only when missing or not the pinned one. One after another:
# built side by side on the two cores they took no less time (docs/testing.md).
tools=()
# staticcheck loads the code with the Go it was built by, and one built by an older Go refuses a
# module that needs 1.27: the toolchain that built it is checked as well as its version.
info=$(command -v staticcheck >/dev/null && go version -m "$(command -v staticcheck)" || true)
grep -qE ": ${GOTOOLCHAIN}$" <<<"$info" &&
  grep -qE "mod[[:space:]]+honnef.co/go/tools[[:space:]]+${STATICCHECK_VERSION}([[:space:]]|$)" <<<"$info" ||
  tools+=("honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}")
# deploy/helm's test runs this helm (lint, template); `go version -m` tells the module version,
# which a `go install`ed helm does not print itself (grep reads it all: no SIGPIPE under pipefail).
command -v helm >/dev/null &&
  go version -m "$(command -v helm)" | grep -E "mod[[:space:]]+helm.sh/helm/v3[[:space:]]+${HELM_VERSION}([[:space:]]|$)" >/dev/null ||
  tools+=("helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
command -v actionlint >/dev/null && actionlint -version | grep -q "${ACTIONLINT_VERSION#v}" ||
  tools+=("github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}")
for tool in ${tools[@]+"${tools[@]}"}; do
  go install "$tool"
done

step "go vet and gofmt"
go vet ./...
# The toolchain's own gofmt: the one on PATH belongs to the installed Go, which may be older.
unformatted=$("$(go env GOROOT)/bin/gofmt" -l .)
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

step "staticcheck ${STATICCHECK_VERSION}"
staticcheck ./...

step "the vulnerability gate (scripts/vulncheck.sh)"
scripts/vulncheck.sh
# The gate's own test (scripts/vulncheck_test.go) runs the script on throwaway modules against
# this database; under CI it fails rather than skip without it.
LWA_ROTATOR_VULNDB=$(scripts/vulncheck.sh -db)
export LWA_ROTATOR_VULNDB

step "actionlint ${ACTIONLINT_VERSION} (GitHub workflows; shellcheck too where installed)"
actionlint

step "Prometheus rules"
promtool check config deploy/prometheus/prometheus.example.yml
promtool check rules deploy/prometheus/lwa-rotator.rules.yml
promtool test rules deploy/prometheus/lwa-rotator.rules.test.yml

step "go test -race ./..."
go test -race -count=1 -timeout 12m ./...

step "fuzzing the notification parser (short run)"
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 15s ./notifications

echo
printf 'all checks passed (%dm%02ds)\n' $((SECONDS / 60)) $((SECONDS % 60))
