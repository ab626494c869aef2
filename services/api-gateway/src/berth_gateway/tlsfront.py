"""TLS for the tcp:// listeners, with the half-close that attach needs.

The docker CLI ends a hijacked stream's input with CloseWrite, which on TLS is a close_notify
alert, and keeps reading the container's output. TLS 1.3 allows that half-close (Go's server
takes it), but asyncio's and uvloop's TLS transports shut the whole connection down on a
close_notify ("returning true from eof_received() has no effect when using ssl"): the output
of `docker run` was lost. So the TLS is done here, with an ssl.SSLObject on memory BIOs over a
plain TCP transport, and each connection's plaintext goes to the gateway's own aiohttp server
through a socketpair, where a close_notify becomes a shutdown(SHUT_WR) the hijack code handles.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
# How long a client may take to close after our close_notify before we close anyway.
LINGER = 30.0


class _Plain(asyncio.Protocol):
    """Our end of the socketpair: what the gateway answers goes back out through TLS."""

    def __init__(self, front: TLSConnection) -> None:
        self._front = front

    def data_received(self, data: bytes) -> None:
        self._front.send(data)

    def eof_received(self) -> bool:
        self._front.server_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.gateway_gone()

    def pause_writing(self) -> None:  # the gateway reads slowly: stop reading the client
        self._front.pause_client()

    def resume_writing(self) -> None:
        self._front.resume_client()


class TLSConnection(asyncio.Protocol):
    """One client connection: TLS with the client, plaintext with the gateway."""

    def __init__(self, ctx: ssl.SSLContext, server: Callable[[], asyncio.Protocol]) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = ctx.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._server = server
        self._client: asyncio.Transport | None = None
        self._plain: asyncio.Transport | None = None
        self._handshaken = False
        self._closed = False
        # Plaintext and a half-close that arrive before the socketpair is registered.
        self._pending: list[bytes] = []
        self._pending_eof = False
        self._tasks: list[asyncio.Task[object]] = []
        self._draining = False

    # --- the client side (TCP, TLS) ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._client = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return  # after our close_notify: only waiting for the client to go
        self._incoming.write(data)
        if not self._handshaken and not self._handshake():
            return
        plain: list[bytes] = []
        peer_closed = False
        try:
            while True:
                chunk = self._tls.read(READ_SIZE)
                if not chunk:
                    peer_closed = True
                    break
                plain.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            peer_closed = True
        except ssl.SSLError as exc:
            log.debug("TLS error from %s: %s", self._peer(), exc)
            self._flush()
            self.close()
            return
        self._flush()  # reading can produce records too (key updates)
        if plain:
            if self._plain is None:
                self._pending.append(b"".join(plain))
            else:
                self._plain.write(b"".join(plain))
        if peer_closed:
            self.client_eof()

    def eof_received(self) -> bool:
        if self._draining:
            return False  # both sides are done
        self.client_eof()  # a TCP FIN without close_notify ends the input all the same
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._plain is not None:
            self._plain.close()

    def pause_writing(self) -> None:  # the client reads slowly: stop reading the gateway
        if self._plain is not None:
            self._plain.pause_reading()

    def resume_writing(self) -> None:
        if self._plain is not None:
            self._plain.resume_reading()

    def _handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except ssl.SSLError as exc:
            # No client certificate, one from another CA, plain HTTP: the alert goes out.
            log.info("TLS handshake with %s refused: %s", self._peer(), exc.reason or exc)
            self._flush()
            self.close()
            return False
        self._handshaken = True
        self._flush()
        self._connect_gateway()
        return True

    def _connect_gateway(self) -> None:
        """Hand the gateway one end of a socketpair, keep the other; both are registered with
        the loop before this returns, so no plaintext can be lost in between."""
        ours, theirs = socket.socketpair()
        protocol = self._server()
        loop = asyncio.get_running_loop()
        # connect_accepted_socket only wraps a connected socket; nothing waits on the network.
        theirs_task = loop.create_task(loop.connect_accepted_socket(lambda: protocol, theirs))
        ours_task = loop.create_task(loop.connect_accepted_socket(lambda: _Plain(self), ours))
        self._tasks = [theirs_task, ours_task]  # type: ignore[list-item]
        theirs_task.add_done_callback(self._gateway_side_done)
        ours_task.add_done_callback(self._our_side_done)

    def _gateway_side_done(self, task: asyncio.Task[tuple[asyncio.Transport, object]]) -> None:
        if task.cancelled() or task.exception() is not None:
            log.warning("TLS connection: the gateway did not take it: %r", task.exception())
            self.close()

    def _our_side_done(self, task: asyncio.Task[tuple[asyncio.Transport, _Plain]]) -> None:
        if task.cancelled() or task.exception() is not None:
            log.warning("TLS connection: no plaintext side: %r", task.exception())
            self.close()
            return
        transport, _ = task.result()
        self._plain = transport
        if self._closed:
            transport.close()
            return
        for data in self._pending:
            transport.write(data)
        self._pending.clear()
        if self._pending_eof:
            self.client_eof()

    # --- plaintext from the gateway --------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            view = memoryview(data)
            while view:
                view = view[self._tls.write(view) :]
        except ssl.SSLError as exc:
            log.debug("TLS write to %s failed: %s", self._peer(), exc)
            self.close()
            return
        self._flush()

    def client_eof(self) -> None:
        """The client will send no more: pass the half-close on to the gateway."""
        if self._plain is None:
            self._pending_eof = True
        elif self._plain.can_write_eof() and not self._plain.is_closing():
            self._plain.write_eof()

    def server_eof(self) -> None:
        """The gateway has answered in full: close_notify and a FIN, then wait for the client
        to close. Closing at once could reset the connection (the kernel sends RST when
        unread input is left) and the client would lose the end of the output."""
        try:
            self._tls.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass  # the client's close_notify is not awaited
        self._flush()
        client = self._client
        if client is None or client.is_closing() or not client.can_write_eof():
            self.close()
            return
        client.write_eof()
        client.resume_reading()
        self._draining = True
        asyncio.get_running_loop().call_later(LINGER, self.close)

    def gateway_gone(self) -> None:
        if not self._draining:  # after server_eof the client closes first (or LINGER runs out)
            self.close()

    def pause_client(self) -> None:
        if self._client is not None and not self._client.is_closing():
            self._client.pause_reading()

    def resume_client(self) -> None:
        if self._client is not None and not self._client.is_closing():
            self._client.resume_reading()

    def close(self) -> None:
        self._closed = True
        if self._client is not None and not self._client.is_closing():
            self._client.close()  # sends what is buffered first
        if self._plain is not None and not self._plain.is_closing():
            self._plain.close()

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and self._client is not None and not self._client.is_closing():
            self._client.write(data)

    def _peer(self) -> object:
        return self._client.get_extra_info("peername") if self._client else None


class TLSSite(web.BaseSite):
    """A tcp:// listener whose connections are TLSConnections in front of the runner's server."""

    __slots__ = ("_host", "_port", "_tls")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, tls: ssl.SSLContext) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._tls = tls

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        tls = self._tls
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: TLSConnection(tls, server), self._host, self._port, reuse_address=True
        )
