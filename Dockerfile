# berth's images: one multi-stage Dockerfile, one target per service.
#   docker build --target engine -t berth/engine .      (compose.yaml builds every target)
# Targets: api-gateway, engine, lifecycle, runtime-agent, registry-proxy, builder-service,
# orchestrator.
#
# PYTHON_IMAGE is Debian bookworm with python3 3.11 (pinned to a patch release). CI, which can
# pull nothing, passes a local stand-in built with debootstrap (tests/e2e/compose_support.py).
# Each service gets its own venv, built in a builder stage from the sources (or, when
# ops/wheelhouse/ holds berth_*.whl, offline from that wheelhouse).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- builder -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
COPY ops/docker/berth-pip-install /usr/local/bin/berth-pip-install
COPY ops/wheelhouse/ /wheels/
COPY libs/ /src/libs/
COPY services/ /src/services/

FROM builder AS venv-api-gateway
RUN berth-pip-install services/api-gateway
FROM builder AS venv-engine
RUN berth-pip-install services/engine
FROM builder AS venv-lifecycle
RUN berth-pip-install services/lifecycle
FROM builder AS venv-runtime-agent
RUN berth-pip-install services/runtime-agent
FROM builder AS venv-registry-proxy
RUN berth-pip-install services/registry-proxy
FROM builder AS venv-builder
RUN berth-pip-install services/builder
FROM builder AS venv-orchestrator
RUN berth-pip-install services/orchestrator

# --- runtime base: no compilers, no pip cache, a `berth` user -------------------------------
FROM ${PYTHON_IMAGE} AS base
RUN groupadd --system --gid 10000 berth \
 && useradd --system --uid 10000 --gid berth --home-dir /var/lib/berth --no-create-home \
      --shell /usr/sbin/nologin berth \
 && mkdir -p /var/lib/berth /run/berth \
 && chown berth:berth /var/lib/berth
COPY ops/docker/berth-healthcheck /usr/local/bin/berth-healthcheck
ENV PATH=/opt/berth/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    BERTH_DATA_ROOT=/var/lib/berth BERTH_EXEC_ROOT=/run/berth BERTH_NODE=berth \
    BERTH_NATS_URL=nats://nats:4222
STOPSIGNAL SIGTERM

# --- api-gateway: stateless, non-root ---------------------------------------------------------
FROM base AS api-gateway
COPY --from=venv-api-gateway /opt/berth /opt/berth
# The API on a unix socket only (share /run/berth as a volume); TCP only with TLS, as set up by
# ops/compose.tls.yaml (plain TCP off loopback is refused, as dockerd 27 announces).
RUN chown berth:berth /run/berth
ENV BERTH_SERVICE=berth-api-gateway BERTH_HOSTS=unix:///run/berth/docker.sock
USER berth
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["berth-healthcheck"]
CMD ["python", "-m", "berth_gateway"]

# --- engine: container records in /var/lib/berth/engine, non-root -----------------------------
FROM base AS engine
COPY --from=venv-engine /opt/berth /opt/berth
RUN mkdir -p /var/lib/berth/engine && chown berth:berth /var/lib/berth/engine
ENV BERTH_SERVICE=berth-engine
USER berth
VOLUME ["/var/lib/berth"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["berth-healthcheck"]
CMD ["python", "-m", "berth_engine"]

# --- lifecycle: root (unpacks layers with any owner, mount namespace + chroot per layer) -------
FROM base AS lifecycle
COPY --from=venv-lifecycle /opt/berth /opt/berth
ENV BERTH_SERVICE=berth-lifecycle BERTH_LIFECYCLE_HTTP=0.0.0.0:7070 \
    BERTH_LIFECYCLE_ADVERTISE=lifecycle
EXPOSE 7070
VOLUME ["/var/lib/berth"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["berth-healthcheck"]
CMD ["python", "-m", "berth_lifecycle"]

# --- runtime-agent: root; runc, podman's netavark + aardvark-dns + iptables, and iproute2 (ip) for bridge
# networks (Debian's; installed only when the base lacks them) --------------------------------
FROM base AS runtime-agent
RUN missing=""; for p in runc netavark aardvark-dns iptables iproute2 golang-github-containers-common; do \
      dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done; \
    if [ -n "$missing" ]; then apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
      && rm -rf /var/lib/apt/lists/*; fi
COPY --from=venv-runtime-agent /opt/berth /opt/berth
COPY ops/docker/berth-agent-start /usr/local/bin/berth-agent-start
ENV BERTH_SERVICE=berth-runtime-agent
VOLUME ["/var/lib/berth"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["berth-healthcheck"]
CMD ["berth-agent-start"]

# --- registry-proxy: a pull-through cache, non-root -------------------------------------------
FROM base AS registry-proxy
COPY --from=venv-registry-proxy /opt/berth /opt/berth
RUN mkdir -p /var/lib/berth/registry-proxy && chown berth:berth /var/lib/berth/registry-proxy
ENV BERTH_SERVICE=berth-registry-proxy BERTH_REGISTRY_PROXY_LISTEN=0.0.0.0:5000
USER berth
EXPOSE 5000
VOLUME ["/var/lib/berth/registry-proxy"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["berth-healthcheck"]
CMD ["python", "-m", "berth_registry_proxy"]

# --- builder-service: `docker build` (the image builder), non-root ---------------------------
FROM base AS builder-service
COPY --from=venv-builder /opt/berth /opt/berth
RUN mkdir -p /var/lib/berth/builder && chown berth:berth /var/lib/berth/builder
ENV BERTH_SERVICE=berth-builder BERTH_BUILDER_HTTP=0.0.0.0:7071 BERTH_BUILDER_ADVERTISE=builder
USER berth
EXPOSE 7071
VOLUME ["/var/lib/berth/builder"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["berth-healthcheck"]
CMD ["python", "-m", "berth_builder"]

# --- orchestrator: swarm mode's manager role, non-root (its state is in NATS JetStream) -------
FROM base AS orchestrator
COPY --from=venv-orchestrator /opt/berth /opt/berth
ENV BERTH_SERVICE=berth-orchestrator
USER berth
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["berth-healthcheck"]
CMD ["python", "-m", "berth_orchestrator"]
