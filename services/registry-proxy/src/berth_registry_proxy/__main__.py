"""`python -m berth_registry_proxy [--listen H:P] [--data DIR] [--docker-hub URL] ...`.

Flags override the BERTH_REGISTRY_PROXY_* environment variables (see the README).
"""

from __future__ import annotations

import argparse
import functools
import os

from aiohttp import web
from anyio import to_thread
from berth_kit.listen import inherited_sockets
from berth_kit.service import ServiceContext, run_service

from berth_registry_proxy.access import Access, HostedConfig
from berth_registry_proxy.app import Proxy
from berth_registry_proxy.cache import Cache
from berth_registry_proxy.config import ProxyConfig
from berth_registry_proxy.fetches import Fetches
from berth_registry_proxy.gc import usage_after_gc
from berth_registry_proxy.hosted import Hosted
from berth_registry_proxy.storage import Storage
from berth_registry_proxy.tokens import Tokens, load_key
from berth_registry_proxy.upstream import Upstream
from berth_registry_proxy.webhooks import Webhooks

SERVICE = "berth-registry-proxy"
MAX_REQUEST_HEADERS = 64
FLAGS = {
    "listen": "BERTH_REGISTRY_PROXY_LISTEN",
    "data": "BERTH_REGISTRY_PROXY_DATA",
    "docker_hub": "BERTH_REGISTRY_PROXY_DOCKER_HUB",
    "upstreams": "BERTH_REGISTRY_PROXY_UPSTREAMS",
    "insecure": "BERTH_REGISTRY_PROXY_INSECURE",
    "tag_ttl": "BERTH_REGISTRY_PROXY_TAG_TTL",
    "quota": "BERTH_REGISTRY_PROXY_QUOTA",
}


async def serve(ctx: ServiceContext) -> None:
    config = ProxyConfig.from_env()
    cache = await to_thread.run_sync(Cache, config.data_dir, config.quota)
    upstream = Upstream(config)
    await upstream.start()
    fetches = Fetches(cache, upstream, ctx.tg, config.max_blob)
    hosted = await hosted_registry(config, ctx)
    cache.pinned_bytes = functools.partial(usage_after_gc, hosted.storage, hosted.config.gc_grace)
    proxy = Proxy(config, cache, upstream, fetches, hosted)
    # Docker clients send about ten request headers: 64 lines of up to 8 KiB bound what one
    # request may make the proxy hold (aiohttp's default is 128).
    runner = web.AppRunner(
        proxy.app(), access_log=None, max_headers=MAX_REQUEST_HEADERS, max_field_size=8190, max_line_size=8190
    )
    await runner.setup()
    inherited = inherited_sockets()  # bound by `berth up` (its BERTH_REGISTRY_PROXY_LISTEN)
    if inherited:
        for sock in inherited:
            await web.SockSite(runner, sock).start()
    else:
        host, _, port = config.listen.rpartition(":")
        await web.TCPSite(runner, host or "127.0.0.1", int(port or 5000)).start()

    async def close() -> None:
        try:
            await runner.cleanup()
        finally:
            await upstream.close()

    ctx.on_stop(close, timeout=5)


async def hosted_registry(config: ProxyConfig, ctx: ServiceContext) -> Hosted:
    """berth's own registry under data/hosted, its token key beside it (0600, never logged)."""
    hosted_config = HostedConfig.from_env(config.listen)
    access = Access(hosted_config)
    key = await to_thread.run_sync(load_key, config.data_dir)
    storage = await to_thread.run_sync(Storage, config.data_dir / "hosted")
    webhooks = Webhooks(hosted_config, storage.root, ctx.tg)
    hosted = Hosted(hosted_config, access, Tokens(hosted_config, access, key), storage, webhooks,
                    ctx.tg, config.max_manifest, config.max_blob)
    ctx.tg.start_soon(hosted.collect)
    return hosted


def main() -> None:
    parser = argparse.ArgumentParser(prog="berth-registry-proxy")
    for flag, env in FLAGS.items():
        parser.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None, help=f"overrides {env}")
    ns = parser.parse_args()
    for flag, env in FLAGS.items():
        if getattr(ns, flag) is not None:
            os.environ[env] = getattr(ns, flag)
    run_service(SERVICE, serve)


if __name__ == "__main__":
    main()
