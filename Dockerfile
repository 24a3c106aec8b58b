# syntax=docker/dockerfile:1
# One image for the whole product: /app/bin/origin (migrate, seed, serve,
# worker), /app/bin/edge and /app/bin/loadgen, static binaries on a small
# Alpine base (kept for its busybox wget, which the compose health checks
# use), running as an unprivileged user.
#
#   docker build -t novashop-edge:local .
#   docker compose up -d                      (see docker-compose.yml)

# Go version: the go directive of go.mod, major.minor (configs/deploy_test.go
# checks they agree).
ARG GO_VERSION=1.26
ARG ALPINE_VERSION=3.22

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO_ENABLED=0: static binaries that need no libc in the final image.
# -trimpath and -s -w: reproducible paths, smaller binaries.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" \
      -o /out/bin/ ./cmd/origin ./cmd/edge ./cmd/loadgen

FROM alpine:${ALPINE_VERSION}
RUN apk add --no-cache ca-certificates tzdata \
 && addgroup -S -g 10001 novashop \
 && adduser -S -D -H -u 10001 -G novashop -s /sbin/nologin novashop \
 && mkdir -p /reports && chown novashop:novashop /reports
COPY --from=build /out/bin/ /app/bin/
COPY configs/ /app/configs/
ENV PATH=/app/bin:$PATH
WORKDIR /app
# A numeric user, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# origin serve, edge, edge admin, worker metrics.
EXPOSE 8000 8080 9090 9100
CMD ["origin", "--help"]
