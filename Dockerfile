# spanrelayd container image: ghcr.io/spanrelay/spanrelayd (the default image
# of the Helm chart, helm/spanrelay/values.yaml).
#
#   docker build -t ghcr.io/spanrelay/spanrelayd:0.1.0 .
#   docker run --rm -p 4317:4317 -p 4318:4318 -p 8888:8888 ghcr.io/spanrelay/spanrelayd:0.1.0
#
# Stage 1 builds the daemon alone (SPANRELAY_BUILD_TESTS=OFF: no tests/, no
# bench/) on Debian 12 with the build packages from .ci/deps. Stage 2 is
# debian:12-slim with only the shared libraries spanrelayd links
# (readelf -d spanrelayd | grep NEEDED), running as uid/gid 65532.

FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
# Boost is used header-only (Asio, Beast): libboost-dev, not libboost-all-dev.
# RE2 is included directly by the tail-sampling policies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libboost-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libzstd-dev zlib1g-dev libspdlog-dev libyaml-cpp-dev libsimdjson-dev libssl-dev libre2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore lets in only what the daemon's build reads.
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSPANRELAY_BUILD_TESTS=OFF \
 && cmake --build /build --target spanrelayd -j"$(nproc)" \
 && strip /build/spanrelayd

FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libabsl20220623 libprotobuf32 libre2-9 \
      libspdlog1.10 libfmt9 libyaml-cpp0.7 libzstd1 zlib1g libsimdjson14 \
      libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric identity (the chart's runAsUser/runAsGroup), so Kubernetes can
# verify runAsNonRoot. Its home holds the relative paths of the default config
# (./var: the file exporter's output and the Unix sockets).
RUN groupadd --system --gid 65532 spanrelay \
 && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/spanrelay \
      --no-create-home --shell /usr/sbin/nologin spanrelay \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/spanrelay /var/lib/spanrelay/spool \
 && install -d -o 65532 -g 65532 -m 0755 /run/spanrelay
COPY --from=build /build/spanrelayd /usr/bin/spanrelayd
# The shipped default configuration, with its three TCP listeners moved from
# 127.0.0.1 to 0.0.0.0: inside a container, loopback is unreachable from
# `docker run -p`. (The Helm chart mounts its own configuration over
# /etc/spanrelay.) The build fails if the result does not pass --check-config.
COPY config/spanrelay.yaml /etc/spanrelay/spanrelay.yaml
RUN sed -i 's/^\(\s*endpoint:\) 127\.0\.0\.1:\([0-9]*\)$/\1 0.0.0.0:\2/' /etc/spanrelay/spanrelay.yaml \
 && test "$(grep -c '^\s*endpoint: 0\.0\.0\.0:' /etc/spanrelay/spanrelay.yaml)" = 3 \
 && /usr/bin/spanrelayd --version \
 && /usr/bin/spanrelayd --config /etc/spanrelay/spanrelay.yaml --check-config
USER 65532:65532
WORKDIR /var/lib/spanrelay
# OTLP/gRPC, OTLP/HTTP, and /metrics /healthz /readyz.
EXPOSE 4317 4318 8888
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/spanrelayd"]
CMD ["--config", "/etc/spanrelay/spanrelay.yaml"]
