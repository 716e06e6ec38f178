// Package container proves the container image without a Docker engine. Its tests read the
// Dockerfile with buildkit's own parser and check the image's promises (the shared build script,
// an empty base, a non-root user, SIGTERM, a shell-free health check); then they assemble the
// final stage's filesystem exactly as the Dockerfile lists it, run it as an OCI container with
// runc (read-only root, uid 65532, no capabilities, host network), and drive the daemon inside
// through a rotation against moto and the SP-API/LWA simulator, SIGUSR1, SIGHUP, the health check
// and a SIGTERM stop. The runc test needs root; scripts/test-all.sh installs runc.
package container
