# syntax=docker/dockerfile:1
#
# The sim image: one static binary on an empty base, run as a non-root user, with
# CA certificates (for real IoT Hub targets) and the shipped scenarios.
#
# From source:
#   docker build -t catmsim .
#
# From a binary built outside the container, for machines with no base image to
# pull (CI builds it this way; see .ci/run for the whole recipe):
#   dist/image/sim                               CGO_ENABLED=0 go build -trimpath -o dist/image/sim ./cmd/sim
#   dist/image/etc/ssl/certs/ca-certificates.crt the host's CA bundle
#   dist/image/scenarios/                        the scenarios/*.yaml files
#   dist/writable/work/                          an empty directory
#   podman build --build-arg ROOTFS=prebuilt -t catmsim .

ARG GO_VERSION=1.26
ARG ROOTFS=source

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /dist/image/sim ./cmd/sim \
 && mkdir -p /dist/image/etc/ssl/certs /dist/image/scenarios /dist/writable/work \
 && cp /etc/ssl/certs/ca-certificates.crt /dist/image/etc/ssl/certs/ \
 && find scenarios -maxdepth 1 -name "*.yaml" -exec cp {} /dist/image/scenarios/ \;

# Two ways to fill dist/; ROOTFS picks one and the other is never built.
FROM scratch AS rootfs-source
COPY --from=build /dist/ /

FROM scratch AS rootfs-prebuilt
COPY dist/ /

FROM rootfs-${ROOTFS} AS rootfs

FROM scratch
COPY --from=rootfs /image/ /
# Reports land in the working directory, so it belongs to the run-time user.
COPY --from=rootfs --chown=65534:65534 /writable/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# nobody:nogroup by number: a scratch image has no /etc/passwd to look names up in.
USER 65534:65534
WORKDIR /work
ENTRYPOINT ["/sim"]
CMD ["--help"]
