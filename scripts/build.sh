#!/usr/bin/env bash
# The one build of the lwa-rotator binary, used by the Dockerfile, CI, the container test and the
# release: static (no libc, so it runs on an empty image), -trimpath (no build machine paths in the
# binary), version and revision stamped so `lwa-rotator version` and lwa_rotator_build_info tell
# what is running even when the source has no .git (a Docker build context).
#
#   scripts/build.sh OUTPUT
#
# GOOS and GOARCH come from the environment (cross-builds for the release). VERSION and REVISION
# default to `git describe` and the commit when a git checkout is at hand, else dev / unknown.
set -euo pipefail
# Go 1.27.3 whatever Go is installed (the go command fetches it from the module proxy): every
# binary, image and release is built by the toolchain the vulnerability gate judged.
export GOTOOLCHAIN=go1.27.3

out=${1:?usage: scripts/build.sh OUTPUT}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.."

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}

CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X main.version=${version} -X main.revision=${revision}" \
  -o "$out" ./cmd/lwa-rotator
