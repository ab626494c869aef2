"""Request/reply over NATS with msgspec unions, bounded concurrent dispatch and tracing.

nats-py runs one callback at a time per subscription, so the server side hands each request
to its own task in the service's task group, under a limit; when the limit is reached the
callback waits, which applies back-pressure to the subscription instead of queueing unboundedly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import typing
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio
import msgspec
from anyio.abc import TaskGroup
from berth_contracts.base import Command, Ping, Pong, Reply
from berth_contracts.codec import decode_as, encode
from berth_contracts.errors import (
    BerthError,
    ErrorReply,
    InternalError,
    InvalidParameter,
    Unavailable,
    error_from_reply,
)
from berth_contracts.identifiers import describe_invalid
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from berth_kit.tracing import extract, inject

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Reply)
C = TypeVar("C", bound=Command)
Handler = Callable[[Any], Awaitable[Reply]]


class _IdempotencyCache:
    """Replies to recent commands by idempotency key, so a retried command is answered, not redone."""

    def __init__(self, size: int = 4096, ttl: float = 300.0) -> None:
        self._size = size
        self._ttl = ttl
        self._done: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._inflight: dict[str, anyio.Event] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[bytes]]) -> bytes:
        if not key:
            return await work()
        while True:
            hit = self._done.get(key)
            if hit is not None and time.monotonic() - hit[0] < self._ttl:
                return hit[1]
            waiter = self._inflight.get(key)
            if waiter is None:
                break
            await waiter.wait()
        event = anyio.Event()
        self._inflight[key] = event
        try:
            data = await work()
            self._done[key] = (time.monotonic(), data)
            while len(self._done) > self._size:
                self._done.popitem(last=False)
            return data
        finally:
            del self._inflight[key]
            event.set()


class NoAnswer(Unavailable):
    """Nobody answered a request (no server, or none within the timeout), as opposed to a
    server that answered with an Unavailable error."""


_subject: ContextVar[str] = ContextVar("berth_rpc_subject", default="")


def request_subject() -> str:
    """The subject of the request being handled: a server on a wildcard subject learns from it
    what the bus's permissions vouch for (swarm: which node's credentials sent it)."""
    return _subject.get()


class RpcServer:
    """Serves one request union on one subject (optionally in a queue group)."""

    def __init__(
        self,
        nc: NATS,
        subject: str,
        request_type: Any,
        *,
        queue: str = "",
        limit: int = 64,
        tracer_name: str = "berth",
        node: str = "",
    ) -> None:
        self._nc = nc
        self._subject = subject
        self._request_type = request_type
        self._queue = queue
        self._limit = anyio.Semaphore(limit)
        self._limit_total = limit
        self._handlers: dict[type, Handler] = {}
        # Every server answers Ping (a member of every request union) for its service.
        pong = Pong(service=tracer_name, pid=os.getpid(), node=node)

        async def ping(_: Ping) -> Pong:
            return pong

        self._handlers[Ping] = ping
        self._tracer = trace.get_tracer(tracer_name)
        self._idempotency = _IdempotencyCache()
        self._sub: Subscription | None = None

    def handle(self, command_type: type[C], handler: Callable[[C], Awaitable[Reply]]) -> None:
        self._handlers[command_type] = handler

    def unhandled(self) -> list[str]:
        """The members of the request union that no handler answers."""
        members = typing.get_args(self._request_type) or (self._request_type,)
        return sorted(m.__name__ for m in members if m not in self._handlers)

    async def start(self, tg: TaskGroup) -> None:
        """Subscribe; refuses (ValueError) while a member of the request union has no handler,
        as containerd's services must implement their whole API before they serve."""
        missing = self.unhandled()
        if missing:
            raise ValueError(f"no handler on {self._subject} for: {', '.join(missing)}")

        async def on_msg(msg: Msg) -> None:
            await self._limit.acquire()
            tg.start_soon(self._process, msg)

        self._sub = await self._nc.subscribe(self._subject, queue=self._queue, cb=on_msg)
        await self._nc.flush()

    async def stop(self) -> None:
        """No new requests; returns once those in flight are answered (callers bound the wait)."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        for _ in range(self._limit_total):  # every permit back: nothing is in flight
            await self._limit.acquire()
        for _ in range(self._limit_total):
            self._limit.release()

    async def _process(self, msg: Msg) -> None:
        try:
            try:
                command = decode_as(msg.data, self._request_type)
            except msgspec.ValidationError as exc:  # a field broke its contract (e.g. an id)
                error = InvalidParameter(describe_invalid(exc, msg.data))
                await self._reply(msg, encode(error.to_reply()))
                return
            except Exception as exc:  # noqa: BLE001 - a bad message gets an error reply
                await self._reply(msg, encode(InternalError(f"undecodable request: {exc}").to_reply()))
                return
            name = type(command).__name__
            _subject.set(msg.subject)  # this task's own context: no reset needed
            parent = extract(dict(msg.headers or {}))
            with self._tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER) as span:
                data = await self._idempotency.run(
                    command.idempotency_key, lambda: self._dispatch(command, span)
                )
            await self._reply(msg, data)
        finally:
            self._limit.release()

    async def _dispatch(self, command: Any, span: trace.Span) -> bytes:
        handler = self._handlers.get(type(command))
        try:
            if handler is None:
                raise InternalError(f"no handler for {type(command).__name__}")
            return encode(await handler(command))
        except BerthError as exc:
            if exc.kind == "internal":
                span.set_status(Status(StatusCode.ERROR, exc.message))
            span.set_attribute("berth.error.kind", exc.kind)
            return encode(exc.to_reply())
        except Exception as exc:  # noqa: BLE001 - never leave a caller without an answer
            log.exception("handler for %s failed", type(command).__name__)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            return encode(InternalError(f"{type(exc).__name__}: {exc}").to_reply())

    async def _reply(self, msg: Msg, data: bytes) -> None:
        if msg.reply:
            try:
                await self._nc.publish(msg.reply, data)
            except Exception:  # noqa: BLE001 - the caller may be gone; nothing else to do
                log.warning("could not send reply on %s", msg.reply)


class RpcClient:
    """Sends commands and decodes typed replies; an ErrorReply is raised as its BerthError."""

    def __init__(self, nc: NATS, tracer_name: str = "berth") -> None:
        self._nc = nc
        self._tracer = trace.get_tracer(tracer_name)

    async def request(
        self,
        subject: str,
        command: Command,
        reply_type: type[R],
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - per attempt, handed to nats-py
        attempts: int = 3,
        reply_prefix: str = "",
    ) -> R:
        """Send and wait for the reply, retrying while nobody answers (a service restarting).

        Commands are retried with one idempotency key, so a retry after a lost reply is safe.
        reply_prefix: take the reply on a subject under this prefix instead of the connection's
        inbox (a request crossing to another node, whose bus forwards only that prefix back).
        """
        if not command.idempotency_key and attempts > 1:
            command = _with_key(command)
        name = type(command).__name__
        with self._tracer.start_as_current_span(f"{name} send", kind=SpanKind.CLIENT) as span:
            span.set_attribute("messaging.destination.name", subject)
            payload = encode(command)
            last: Exception | None = None
            for attempt in range(attempts):
                try:
                    if reply_prefix:
                        msg = await self._request_to(subject, payload, timeout, reply_prefix)
                    else:
                        msg = await self._nc.request(subject, payload, timeout=timeout, headers=inject())
                    break
                except NoRespondersError as exc:
                    last = exc
                    await anyio.sleep(min(0.2 * 2**attempt, 2.0))
                except NatsTimeout as exc:
                    last = exc
            else:
                raise NoAnswer(f"{subject}: no answer to {name} ({type(last).__name__})")
            reply = decode_as(msg.data, reply_type | ErrorReply)
            if isinstance(reply, ErrorReply):
                raise error_from_reply(reply)
            return reply  # type: ignore[no-any-return]


    async def _request_to(self, subject: str, payload: bytes, timeout: float, prefix: str) -> Msg:  # noqa: ASYNC109
        reply = f"{prefix}.{uuid.uuid4().hex}"
        sub = await self._nc.subscribe(reply, max_msgs=1)
        try:
            await self._nc.publish(subject, payload, reply=reply, headers=inject())
            msg = await sub.next_msg(timeout=timeout)
            if not msg.data and (msg.headers or {}).get("Status") == "503":
                raise NoRespondersError  # the server's answer: nobody subscribes there
            return msg
        finally:
            with contextlib.suppress(Exception):  # gone already (max_msgs) or disconnected
                await sub.unsubscribe()


def _with_key(command: C) -> C:
    return msgspec.structs.replace(command, idempotency_key=uuid.uuid4().hex)
