# supermq container image.
#
#   docker build -t supermq .
#   docker run -d --name supermq -p 1883:1883 -p 8080:8080 -p 127.0.0.1:18083:18083 \
#       -v supermq-data:/var/lib/supermq supermq
#
# The build stage runs the commands .ci/run runs for the Debian package (CI builds with
# PROFILE=dev to stay fast; the image is built with the release profile); the runtime stage
# installs that same package, so the image has the packaged user, config and layout.

ARG PROFILE=release

FROM rust:1-bookworm AS build
ARG PROFILE
# Pinned like .ci/run's.
ARG CARGO_DEB_VERSION=3.8.0
RUN cargo install cargo-deb --version "${CARGO_DEB_VERSION}" --locked
WORKDIR /src
COPY . .
RUN cargo build --locked --profile "${PROFILE}" --bin supermq \
    && cargo deb --no-build --profile "${PROFILE}" --output /out/supermq.deb

FROM debian:bookworm-slim
# The supermq user with fixed ids (1883), so USER is numeric (Kubernetes' runAsNonRoot can
# check it) and a volume's ownership is the same in every build; the package's postinst
# finds it there and leaves it as it is.
RUN groupadd --system --gid 1883 supermq \
    && useradd --system --uid 1883 --gid supermq --home-dir /var/lib/supermq \
        --no-create-home --shell /usr/sbin/nologin supermq
# apt resolves the package's dependencies (libc, adduser); its postinst makes
# /var/lib/supermq and, without systemd in the container, starts nothing.
COPY --from=build /out/supermq.deb /tmp/supermq.deb
RUN apt-get update \
    && apt-get install -y --no-install-recommends /tmp/supermq.deb \
    && rm -rf /var/lib/apt/lists/* /tmp/supermq.deb
# The packaged config, with the HTTP API on every interface of the container (the packaged
# default, 127.0.0.1, would be unreachable through a published port) and /healthz, /readyz
# and /metrics readable without an API key (for this HEALTHCHECK, orchestrators' probes and
# Prometheus); /api/ still needs one. Publish 18083 only where that is wanted, or mount a
# config of your own over /etc/supermq/supermq.conf.
RUN printf '\n[http]\nbind = "0.0.0.0:18083"\nanonymous_read = true\n' \
        >> /etc/supermq/supermq.conf \
    && supermq -t -c /etc/supermq/supermq.conf

USER 1883:1883
WORKDIR /var/lib/supermq
VOLUME ["/var/lib/supermq"]
# MQTT, MQTT over TLS, WebSocket, WebSocket over TLS (the TLS ones once configured), cluster
# routes, HTTP API.
EXPOSE 1883 8883 8080 8081 7883 18083
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["supermq", "healthcheck", "--url", "http://127.0.0.1:18083/readyz", "--timeout", "4"]
# SIGTERM: connections closed, wills published, the store synced (within docker's 10 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["supermq"]
CMD ["-c", "/etc/supermq/supermq.conf"]
