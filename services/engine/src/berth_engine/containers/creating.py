"""ContainerCreate: resolve the image, merge its config, name and persist the record, and
prepare the writable layer (containerd prepares the snapshot at create, too)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio
import msgspec
from berth_common.gotime import rfc3339nano
from berth_contracts.docker import ContainerConfig, HostConfig
from berth_contracts.engine import ContainerCreate, ContainerCreated
from berth_contracts.errors import BerthError, InvalidParameter
from berth_contracts.lifecycle import (
    ImageFound,
    ImageRecord,
    ImageResolve,
    SnapshotMounts,
    SnapshotPrepare,
)
from berth_kit.tracing import traceparent_of

from berth_engine.containers import hostopts
from berth_engine.containers.logdrivers import check_log_config
from berth_engine.containers.merge import (
    check_supported,
    final_command,
    merge_config,
    normalise_host_config,
    normalise_network_mode,
)
from berth_engine.containers.mountspec import MountEntry, parse_all
from berth_engine.containers.naming import generate_unique_name, new_container_id, validate_name
from berth_engine.containers.platforms import check_platform
from berth_engine.containers.records import Record
from berth_engine.containers.restarts import validate_policy
from berth_engine.containers.secopts import parse_security_opts
from berth_engine.containers.signals import parse_signal
from berth_engine.core import EngineCore
from berth_engine.networks.join import check_network_mode, resolve_at_create
from berth_engine.networks.links import register_links, shown_links

log = logging.getLogger(__name__)


# FROM scratch in a build: no image, no layers (lifecycle prepares an empty writable layer).
SCRATCH = ImageRecord(
    id="", repo_tags=[], repo_digests=[], created="", size=0, config=ContainerConfig(), diff_ids=[]
)

class CreateService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    def _check_dns(self, hc: HostConfig) -> None:
        """aardvark-dns 1.4 forwards to the host's resolvers, never to --dns ones: refuse."""
        mode = hc.network_mode or "bridge"
        if not hc.dns or mode in ("host", "none", "default"):
            return
        net = self.core.networks.nets.lookup(mode)
        if net is not None and net.dns_enabled:
            raise InvalidParameter(
                "berth does not support --dns on a user-defined network yet: its names "
                "resolve through aardvark-dns, which forwards to the host's resolvers"
            )

    async def create(self, cmd: ContainerCreate, unlisted: Sequence[MountEntry] = ()) -> ContainerCreated:
        """unlisted: mounts the engine adds itself (a swarm task's secret and config files), kept
        out of HostConfig and inspect's Mounts, as dockerd mounts those."""
        req = cmd.body
        with self.core.tracer.start_as_current_span("container create") as span:
            name = validate_name(cmd.name) if cmd.name else ""
            if not req.image and not cmd.scratch:
                raise InvalidParameter("config cannot be empty in order to create a container")
            check_network_mode(req)  # moby validates the network mode while decoding the body
            validate_policy(req.host_config.restart_policy, req.host_config.auto_remove)
            check_log_config(req.host_config.log_config)
            check_supported(req)
            parse_security_opts(req.host_config.security_opt)  # refuse bad ones at create
            host_config = hostopts.validate_create(req, self.core.store)
            node = self.core.node
            if cmd.scratch:
                image = SCRATCH
            else:
                found = await self.core.lifecycle(node, ImageResolve(ref=req.image), ImageFound)
                image = found.image
                check_platform(req.image, cmd.platform, image)
            cid = new_container_id()
            span.set_attribute("container.id", cid)
            config = merge_config(req, image.config, cid, req.image)
            argv = final_command(config)
            entries = [*parse_all(req.host_config, config), *(msgspec.structs.replace(m, listed=False) for m in unlisted)]
            hostopts.check_volume_driver(
                req.host_config, [e.name or "(anonymous)" for e in entries if e.type == "volume"]
            )
            self.core.networks.validate_mode(req.host_config.network_mode or "bridge")
            self._check_dns(req.host_config)
            if config.stop_signal:
                parse_signal(config.stop_signal)  # moby refuses a bad StopSignal at create
            if not name:
                name = generate_unique_name(self.core.store.name_taken)
            self.core.store.reserve_name(name, cid)
            try:
                entries = await anyio.to_thread.run_sync(self.core.volumes.prepare, entries)
                if req.host_config.volumes_from:
                    entries = self.core.volumes.volumes_from(
                        entries, list(req.host_config.volumes_from)
                    )
                links = register_links(
                    self.core.store, req.host_config.network_mode, list(req.host_config.links or [])
                )
                endpoints = (
                    self.core.networks.endpoints_for_create(
                        req.host_config, req.networking_config, req.mac_address
                    )
                    if not req.network_disabled
                    else []  # NetworkDisabled: loopback only, as dockerd
                )
                rec = Record(
                    id=cid,
                    name=name,
                    created=rfc3339nano(),
                    request=req,
                    config=config,
                    host_config=msgspec.structs.replace(
                        normalise_host_config(host_config),
                        network_mode=resolve_at_create(
                            self.core.store, normalise_network_mode(host_config.network_mode)
                        ),
                    ),
                    path=argv[0],
                    args=argv[1:],
                    image_id=image.id,
                    image_name=req.image,
                    node=node,
                    traceparent=traceparent_of(span),
                    mounts=entries,
                    endpoints=endpoints,
                    links=links,
                )
                if links:  # dockerd shows them as "/child:/parent/alias"
                    rec.host_config.links = shown_links(self.core.store, rec)
                await self.core.store.insert(rec)
            finally:
                self.core.store.release_name(name)
            try:
                # Like containerd, the writable layer exists from create on (docker cp, diff).
                self.core.prepared_mounts[cid] = await self.core.lifecycle(
                    node, SnapshotPrepare(key=cid, image_id=image.id), SnapshotMounts
                )
            except BerthError:
                await self.core.store.delete(cid)
                raise
            await self.core.events.container(rec, "create")
            return ContainerCreated(id=cid, warnings=[])
