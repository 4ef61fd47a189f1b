# syntax=docker/dockerfile:1
# The countersign image the Kubernetes manifests name (`countersign:latest`):
#   docker build -t countersign:latest .
# Stage 1 builds the stripped release binary and keeps its debug symbols in
# a separate file; stage 2 is a slim runtime that runs as an unprivileged
# user and works with a read-only root filesystem (it writes only to /data).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# `--locked`: the image is built from exactly the dependency versions the
# tests ran with. The release profile strips symbols (Cargo.toml); the
# `release-symbols` profile keeps them so they can be shipped separately.
RUN cargo build --locked --release -p countersign \
 && cargo build --locked --profile release-symbols -p countersign \
 && objcopy --only-keep-debug target/release-symbols/countersign /countersign.debug \
 && install -m 0755 target/release/countersign /countersign

# Symbols for crash analysis, never shipped in the runtime image:
#   docker build --target symbols -o type=local,dest=./symbols .
FROM scratch AS symbols
COPY --from=build /countersign.debug /

FROM debian:bookworm-slim AS runtime
# ca-certificates: the system roots that HTTPS clients (OIDC discovery,
# webhooks, Slack/Teams, MCP url upstreams) verify against.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 countersign \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin countersign \
 && install -d -o 10001 -g 10001 -m 0700 /data \
 && install -d -m 0755 /policies
COPY --from=build /countersign /usr/local/bin/countersign
COPY crates/policy/starter/starter.cedar /policies/starter.cedar
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8470
ENV COUNTERSIGN_LOG_FORMAT=json
# tini forwards SIGTERM (graceful shutdown answers waiting agents) and
# SIGHUP (policy reload) to the gateway and reaps children of `exec`.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/countersign"]
CMD ["serve", "--listen", "0.0.0.0:8470", "--data-dir", "/data", "--policies", "/policies"]
