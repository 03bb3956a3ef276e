# syntax=docker/dockerfile:1
# auth: one image with both binaries, `auth-accounts` (the default command) and `auth-edge`.
#
#   docker build -t smartbudget/auth:0.1.0 --build-arg AUTH_BUILD_COMMIT=$(git rev-parse --short=12 HEAD) .
#   docker run --env-file .env -p 8000:8000 smartbudget/auth:0.1.0                  # accounts API
#   docker run --env-file .env smartbudget/auth:0.1.0 auth-accounts worker          # relays, cleanup
#   docker run --env-file .env smartbudget/auth:0.1.0 auth-accounts import-legacy --from URL
#   docker run -p 8081:8081 smartbudget/auth:0.1.0 auth-edge forward-auth            # the edge
#
# Build stage: the Rust toolchain plus what the native dependencies compile with (cmake for
# aws-lc-rs and zlib-ng, a C toolchain for librdkafka, SQLite and zstd).
ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential=12.9 cmake=3.25.* pkg-config=1.8.* perl=5.36.* python3=3.11.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The commit in the build-info metrics and the start-up log line (`unknown` when not given).
ARG AUTH_BUILD_COMMIT=""
# The dependency and target caches speed up rebuilds; the binaries are copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p auth-accounts -p auth-edge \
    && mkdir -p /out/bin /out/app/data /out/app/certs \
    && cp target/release/auth-accounts target/release/auth-edge /out/bin/

# Runtime stage: glibc, libgcc, CA certificates and nothing else (no shell, no package manager),
# running as the unprivileged `nonroot` user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bin/ /usr/local/bin/
# Writable homes for the embedded mode's database and mail folder and for generated dev keys; a
# named volume mounted here starts with this ownership.
COPY --from=build --chown=65532:65532 /out/app/ /app/
WORKDIR /app
# A container must listen on all interfaces (outside one the default is 127.0.0.1).
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/app/data \
    LOG_FORMAT=json
EXPOSE 8000
USER 65532:65532
# No curl in this image: the binary probes itself (GET /api/v1/auth/health/live).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["auth-accounts", "probe", "live"]
CMD ["auth-accounts"]
