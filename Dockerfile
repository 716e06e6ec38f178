# The runtime image holds exactly three files: the static binary, Debian's CA bundle and a passwd
# entry for uid 65532. No shell, no package manager, nothing to patch but the binary and the CA
# bundle, and no secret: the daemon reads its secrets from Secrets Manager at run time.
# e2e/container builds the same filesystem from this file's last stage and runs it with runc.

# The build stage runs on the builder's platform and cross-compiles for each target (buildx).
FROM --platform=$BUILDPLATFORM golang:1.27.3-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .dockerignore leaves .git out, so the release passes the version and commit in.
ARG VERSION=dev
ARG REVISION=unknown
ARG TARGETOS
ARG TARGETARCH
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION REVISION=$REVISION ./scripts/build.sh /out/lwa-rotator

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY build/container/passwd /etc/passwd
COPY --from=build /out/lwa-rotator /lwa-rotator
USER 65532:65532
EXPOSE 9464
ENV LWA_ROTATOR_CONFIG=/etc/lwa-rotator/config.yaml \
    LWA_ROTATOR_LISTEN=0.0.0.0:9464
# SIGTERM drains (finishes the message in hand, at most 30 s): give the container more than that
# (docker stop -t 40, ECS stopTimeout, terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# No shell or curl in the image: the binary probes its own /healthz (the ENV listen above).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/lwa-rotator", "healthcheck"]
ENTRYPOINT ["/lwa-rotator"]
CMD ["run"]
