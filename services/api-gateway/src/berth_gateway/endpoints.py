"""Every endpoint of the Docker Engine API that berth answers, and the handler that answers it.

One table, read top to bottom by the router: fixed paths come before the greedy `{name:.*}` and
`{id:.*}` ones that could swallow them (`/images/json` before `/images/{name:.*}/json`). The
handlers live in `routes/`, one module per object as moby's routers; `app.py` registers each
route twice, unversioned and under /v{version}.
"""

from __future__ import annotations

from berth_gateway.routes import (
    archive,
    attach,
    build,
    containerops,
    containers,
    distribution,
    events,
    execs,
    images,
    imaging,
    logs,
    networks,
    resources,
    swarm,
    system,
    unsupported,
    volumes,
    wait,
)
from berth_gateway.routes.table import Route, not_supported

ROUTES: list[Route] = [
    # System
    Route("GET", "/_ping", system.ping),
    Route("HEAD", "/_ping", system.ping),
    Route("GET", "/version", system.version),
    Route("GET", "/info", system.info),
    Route("GET", "/plugins/{name:.*}/json", system.plugin_inspect),
    Route("GET", "/system/df", imaging.df),
    Route("GET", "/events", events.events),
    # Images made from containers
    Route("POST", "/commit", imaging.commit),
    Route("GET", "/containers/{id}/changes", imaging.changes),
    Route("GET", "/containers/{id}/export", imaging.export),
    Route("GET", "/images/{name:.*}/history", imaging.history),
    # Streams and operations on one container
    Route("POST", "/containers/{id:.*}/wait", wait.wait),
    Route("GET", "/containers/{id:.*}/logs", logs.logs),
    Route("POST", "/containers/{id:.*}/attach", attach.attach),
    Route("POST", "/containers/{id:.*}/exec", execs.create),
    Route("POST", "/exec/{id}/start", execs.start),
    Route("POST", "/exec/{id}/resize", execs.resize),
    Route("GET", "/exec/{id}/json", execs.inspect),
    Route("POST", "/containers/{id:.*}/pause", containerops.pause),
    Route("POST", "/containers/{id:.*}/unpause", containerops.unpause),
    Route("GET", "/containers/{id:.*}/top", resources.top),
    Route("POST", "/containers/{id:.*}/update", resources.update),
    Route("GET", "/containers/{id:.*}/stats", resources.stats),
    # Containers
    Route("POST", "/containers/create", containers.create),
    Route("POST", "/containers/prune", containers.prune),
    Route("GET", "/containers/json", containers.list_containers),
    Route("GET", "/containers/{id:.*}/json", containers.inspect),
    Route("POST", "/containers/{id:.*}/start", containers.start),
    Route("POST", "/containers/{id:.*}/stop", containers.stop),
    Route("POST", "/containers/{id:.*}/restart", containers.restart),
    Route("POST", "/containers/{id:.*}/kill", containers.kill),
    Route("POST", "/containers/{id:.*}/resize", containers.resize),
    Route("POST", "/containers/{id:.*}/rename", containers.rename),
    Route("DELETE", "/containers/{id:.*}", containers.remove),
    Route("HEAD", "/containers/{id}/archive", archive.head),
    Route("GET", "/containers/{id}/archive", archive.get),
    Route("PUT", "/containers/{id}/archive", archive.put),
    # Distribution
    Route("POST", "/images/{name:.*}/push", distribution.push),
    Route("POST", "/auth", distribution.login),
    Route("GET", "/distribution/{name:.*}/json", distribution.inspect_distribution),
    Route("GET", "/images/get", distribution.save),
    Route("GET", "/images/{name:.*}/get", distribution.save),
    # Build
    Route("POST", "/build", build.build),
    Route("POST", "/build/prune", build.prune),
    Route("POST", "/build/cancel", build.cancel),
    # Images
    Route("GET", "/images/json", images.list_images),
    Route("POST", "/images/load", images.load),
    Route("POST", "/images/create", images.create),
    Route("GET", "/images/search", not_supported("searching registries")),
    Route("POST", "/images/prune", images.prune),
    Route("GET", "/images/{name:.*}/json", images.inspect),
    Route("POST", "/images/{name:.*}/tag", images.tag),
    Route("DELETE", "/images/{name:.*}", images.remove),
    # Volumes
    Route("POST", "/volumes/create", volumes.create),
    Route("POST", "/volumes/prune", volumes.prune),
    Route("GET", "/volumes", volumes.list_volumes),
    Route("GET", "/volumes/{name}", volumes.inspect),
    Route("DELETE", "/volumes/{name}", volumes.remove),
    # Networks
    Route("POST", "/networks/create", networks.create),
    Route("POST", "/networks/prune", networks.prune),
    Route("GET", "/networks", networks.list_networks),
    Route("GET", "/networks/{id}", networks.inspect),
    Route("DELETE", "/networks/{id}", networks.remove),
    Route("POST", "/networks/{id}/connect", networks.connect),
    Route("POST", "/networks/{id}/disconnect", networks.disconnect),
    # Swarm mode (the orchestrator)
    *swarm.ROUTES,
    # Areas berth does not implement: Docker-shaped errors instead of bare 404s
    *unsupported.ROUTES,
]
