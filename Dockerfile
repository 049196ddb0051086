# drone-deps plugin image: one static musl binary on BusyBox.
#
#   docker build -t drone-deps .      public bases (debian:bookworm, busybox:musl)
#   make image                        local bases made from Debian packages
#                                     (tools/base-images.sh), no registry
#
# The build stage runs `make static`.  When the build context carries the
# cached libcurl + TLS prefix (build/static-deps/<tls>, see .dockerignore) it
# is reused as is; otherwise the stage compiles it from Debian's source
# packages, which needs the archive to be reachable from the build.
ARG BUILD_IMAGE=debian:bookworm
ARG BASE_IMAGE=busybox:musl

FROM ${BUILD_IMAGE} AS build
# Install only what is missing (nothing, on the local debootstrap base).
RUN set -e; missing=; \
    for p in ca-certificates gcc make musl-tools libjsmn-dev dpkg-dev xz-utils; do \
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' \
            || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update -qq; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; \
        rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY . .
ARG VERSION=dev
ARG TLS=mbedtls
RUN make static TLS="$TLS" VERSION="$VERSION" \
    && install -D -m 0755 "$(make -s static-print-bin TLS="$TLS")" /out/drone-deps \
    && /out/drone-deps --version

FROM ${BASE_IMAGE}
ARG VERSION=dev
ARG SOURCE_URL=
# SPDX: drone-deps itself, then what the image carries: libcurl (curl),
# mbedTLS or OpenSSL 3 (Apache-2.0), musl (MIT), BusyBox (GPL-2.0-only).
ARG LICENSES="NOASSERTION AND curl AND Apache-2.0 AND MIT AND GPL-2.0-only"
LABEL org.opencontainers.image.title="drone-deps" \
      org.opencontainers.image.description="Drone/Woodpecker plugin: binds a CI run to a per-run Keycloak realm (warm or cold), runs the hook, always tears down" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="${LICENSES}"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/drone-deps /bin/drone-deps
ENTRYPOINT ["/bin/drone-deps"]
