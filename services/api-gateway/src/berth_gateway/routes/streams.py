"""The streaming endpoints, gathered for the route table."""

from __future__ import annotations

from berth_gateway.routes import attach, containerops, events, execs, logs, resources, wait

ROUTES = [
    *events.ROUTES,
    *wait.ROUTES,
    *logs.ROUTES,
    *attach.ROUTES,
    *execs.ROUTES,
    *containerops.ROUTES,
    *resources.ROUTES,
]
