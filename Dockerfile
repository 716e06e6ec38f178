# Static binary on distroless: no shell, no package manager, non-root. Nothing in the image holds
# a secret; the daemon reads its secrets from Secrets Manager at run time.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/lwa-rotator ./cmd/lwa-rotator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lwa-rotator /usr/local/bin/lwa-rotator
USER nonroot:nonroot
EXPOSE 9464
ENV LWA_ROTATOR_CONFIG=/etc/lwa-rotator/config.yaml \
    LWA_ROTATOR_LISTEN=0.0.0.0:9464
# SIGTERM drains (finishes the message in hand); give it up to 30 s (stop_grace_period / terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/lwa-rotator"]
CMD ["run"]
