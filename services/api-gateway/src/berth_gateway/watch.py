"""Resolving a container and subscribing to its subjects, with nothing lost in between.

attach and wait subscribe to subjects named by the container's id, and must not miss what
happens between the resolve and the subscription (`docker run` exits fast). The docker CLI
names the container by its full id, known before any resolve: then the subscriptions come
first and one resolve follows, which the server routes after them (see Backend.subscribe). A
name or short id is resolved, subscribed to, and resolved again to see what changed meanwhile.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from berth_contracts.engine import ContainerRef, ContainerResolve
from berth_contracts.errors import NotFound
from nats.aio.subscription import Subscription

from berth_gateway.backend import Backend

_FULL_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Watched:
    first: ContainerRef  # what the first resolve saw
    latest: ContainerRef | None  # after the subscriptions; None if removed meanwhile
    subs: list[Subscription]


@contextlib.asynccontextmanager
async def watch_container(
    be: Backend, ref: str, subjects_of: Callable[[str], list[str]]
) -> AsyncIterator[Watched]:
    """NotFound when the container does not exist when the watch begins."""
    if _FULL_ID.fullmatch(ref):
        async with _subscribed(be, subjects_of(ref)) as subs:
            found = await be.call(ContainerResolve(ref=ref), ContainerRef)
            if found.id == ref:
                yield Watched(found, found, subs)
                return
        # A container *named* like another one's id: the general path below.
    first = await be.call(ContainerResolve(ref=ref), ContainerRef)
    async with _subscribed(be, subjects_of(first.id)) as subs:
        try:
            latest: ContainerRef | None = await be.call(ContainerResolve(ref=first.id), ContainerRef)
        except NotFound:
            latest = None
        yield Watched(first, latest, subs)


@contextlib.asynccontextmanager
async def _subscribed(be: Backend, subjects: list[str]) -> AsyncIterator[list[Subscription]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(be.subscribe(s, flush=False)) for s in subjects]
