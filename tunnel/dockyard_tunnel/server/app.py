"""The tunnel server: an aiohttp application that accepts agents on GET /v1/connect.

Embeddable: `await TunnelServer(...).start()` inside any running event loop (the operator's), and
`await server.stop()`; standalone through `python -m dockyard_tunnel.server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from dockyard_mux import Config as MuxConfig
from dockyard_mux import Session, SessionClosedError, Stream
from dockyard_tunnel.auth import Authenticator, FailureRateLimiter
from dockyard_tunnel.config import CA_PATH, CONNECT_PATH, HOST_HEADER, ServerConfig, validate_host_name
from dockyard_tunnel.errors import AuthenticatorNotReadyError, ConfigError, HandshakeError
from dockyard_tunnel.handshake import (
    PROTOCOL_VERSION,
    REFUSED_CLOSE_CODE,
    ServerWelcome,
    parse_hello,
    release_version,
)
from dockyard_tunnel.server.registry import HostInfo, SessionRegistry, describe_close
from dockyard_tunnel.tls import ca_cert_hash_of_file, ensure_self_signed, server_ssl_context
from dockyard_tunnel.ws import WebSocketTransport

log = structlog.get_logger("dockyard_tunnel.server")

# Close reasons travel in a WebSocket close frame, whose payload is limited to 125 bytes (2 for the code).
_MAX_CLOSE_REASON = 120


def rate_limit_key(remote: str | None) -> str:
    """The rate limiter's key for a peer address: the address, or its /64 for IPv6.

    An IPv6 host usually controls a whole /64, so keying single addresses would let it rotate past the limit.
    """
    if remote is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _unauthorized() -> web.Response:
    # No detail on purpose: a guesser must not learn whether the host or the token was wrong.
    return web.Response(status=401, text="unauthorized\n", headers={"WWW-Authenticate": "Bearer"})


#: Streams an agent may have open towards the server at once (Service imports); more are reset.
MAX_AGENT_STREAMS = 1024

StreamHandler = Callable[[str, Stream], Coroutine[Any, Any, None]]
"""(host, stream) for each stream an agent opens (a Service import's connection); it owns the stream."""


class TunnelServer:
    """Accepts agent connections, authenticates them and keeps their mux sessions in `registry`."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        authenticator: Authenticator,
        registry: SessionRegistry | None = None,
        mux_config: MuxConfig | None = None,
        on_stream: StreamHandler | None = None,
    ) -> None:
        self._config = config
        self._on_stream = on_stream
        self._authenticator = authenticator
        self.registry = registry or SessionRegistry()
        self._mux_config = mux_config
        self._limiter = FailureRateLimiter(config.rate_limit)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._ca_file: Path | None = None

    def _ssl_context(self) -> ssl.SSLContext | None:
        cfg = self._config
        if cfg.insecure:
            log.warning("insecure_mode", detail="serving plain ws:// without TLS; tokens cross the network in clear")
            return None
        if cfg.cert_file is not None and cfg.key_file is not None:
            return server_ssl_context(cert_file=cfg.cert_file, key_file=cfg.key_file)
        if cfg.tls_dir is None:  # ServerConfig validation makes this unreachable; kept for type narrowing
            raise ConfigError("TLS needs tls_dir or cert_file/key_file")
        files = ensure_self_signed(cfg.tls_dir, server_names=cfg.server_names)
        self._ca_file = files.ca_cert
        return server_ssl_context(cert_file=files.cert, key_file=files.key)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(CONNECT_PATH, self._connect)
        app.router.add_get(CA_PATH, self._ca_certificate)
        return app

    async def start(self) -> None:
        ssl_context = self._ssl_context()
        # shutdown_timeout bounds how long stop() waits for handlers still in their handshake.
        runner = web.AppRunner(
            self.make_app(), handle_signals=False, access_log=None, shutdown_timeout=self._config.handshake_timeout
        )
        await runner.setup()
        site = web.TCPSite(runner, self._config.host, self._config.port, ssl_context=ssl_context)
        self._runner = runner  # before listening: a handler treats a missing runner as "stopping"
        await site.start()
        self._port = int(runner.addresses[0][1])
        log.info("server_started", url=self.url, ca_cert_hash=self.ca_cert_hash)

    async def stop(self) -> None:
        """Stop listening, close every agent session, and wait for the handlers to finish."""
        runner, self._runner = self._runner, None
        if runner is not None:
            for site in list(runner.sites):
                await site.stop()  # first: no connection may arrive after the sessions are closed
        await self.registry.close_all()
        if runner is not None:
            # cleanup() asks each connection to close, but a TLS close waits for the peer's close_notify (up to
            # 30 s) and asyncio's Server.close() leaves accepted sockets alone: an agent that died mid-handshake
            # or mid-shutdown would keep its socket after stop() returns (and leak it once the loop is gone).
            # Whatever is still open after cleanup is aborted: stop() means every socket is closed.
            server = runner.server
            transports = [h.transport for h in server.connections] if server is not None else []
            await runner.cleanup()
            for transport in transports:
                if transport is None:
                    continue
                # Also when already closing: a graceful TLS close may never complete. CPython's TLS transport
                # raises AttributeError from abort() once its TLS protocol has finished closing: closed already.
                with contextlib.suppress(AttributeError):
                    transport.abort()
            await asyncio.sleep(0)  # let the aborts run their connection_lost callbacks
        log.info("server_stopped")

    def _accepting(self) -> bool:
        return self._runner is not None

    @property
    def config(self) -> ServerConfig:
        return self._config

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def url(self) -> str:
        scheme = "ws" if self._config.insecure else "wss"
        host = self._config.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The self-signed CA certificate, when the server minted its own."""
        return self._ca_file

    @property
    def ca_cert_hash(self) -> str | None:
        """The pin agents pass as --ca-cert-hash, when the server minted its own CA."""
        return ca_cert_hash_of_file(self._ca_file) if self._ca_file else None

    @property
    def rate_limiter(self) -> FailureRateLimiter:
        return self._limiter

    async def _ca_certificate(self, request: web.Request) -> web.Response:
        del request
        if self._ca_file is None:
            raise web.HTTPNotFound(text="this server does not publish its CA; give agents --ca-file\n")
        return web.Response(body=self._ca_file.read_bytes(), content_type="application/x-pem-file")

    async def _authenticate(self, request: web.Request) -> tuple[str, web.StreamResponse | None]:
        source = rate_limit_key(request.remote)
        if not self._limiter.allowed(source):
            log.warning("auth_rate_limited", remote=source)
            return "", web.Response(status=429, text="too many failed attempts\n", headers={"Retry-After": "10"})
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        host = request.headers.get(HOST_HEADER, "")
        ok = False
        if scheme.lower() == "bearer" and token and host:
            try:
                validate_host_name(host)
            except ConfigError:
                host = ""
            else:
                try:
                    ok = await self._authenticator.authenticate(host, token.strip())
                except AuthenticatorNotReadyError:
                    log.info("auth_not_ready", remote=source, host=host)
                    retry = web.Response(
                        status=503, text="not ready for agents yet; retry\n", headers={"Retry-After": "5"}
                    )
                    return host, retry
        if not ok:
            self._limiter.record_failure(source)
            # Log the claimed host only if it was well-formed; never the token.
            log.warning("auth_failed", remote=source, host=host or None)
            return host, _unauthorized()
        return host, None

    async def _accept_streams(self, host: str, session: Session) -> None:
        """Streams the agent opens go to on_stream (reset without one); they end with the session."""
        handlers: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    stream = await session.accept_stream()
                except SessionClosedError:
                    return
                if self._on_stream is None or len(handlers) >= MAX_AGENT_STREAMS:
                    stream.reset()  # none wanted, or a misbehaving agent: its host's other traffic goes on
                    continue
                task = asyncio.create_task(self._on_stream(host, stream))
                handlers.add(task)
                task.add_done_callback(handlers.discard)
        finally:
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        if not self._accepting():
            raise web.HTTPServiceUnavailable(text="the tunnel server is shutting down\n")
        host, refusal = await self._authenticate(request)
        if refusal is not None:
            return refusal
        remote = request.remote or "unknown"
        wscfg = self._config.websocket
        ws = web.WebSocketResponse(
            heartbeat=wscfg.heartbeat, max_msg_size=wscfg.max_message_size, compress=False, autoping=True
        )
        await ws.prepare(request)
        try:
            msg = await asyncio.wait_for(ws.receive(), self._config.handshake_timeout)
            if msg.type is not WSMsgType.TEXT:
                raise HandshakeError(f"expected the agent hello as a text message, got {msg.type.name}")
            hello = parse_hello(msg.data)
        except (HandshakeError, TimeoutError) as e:
            reason = str(e) or "no hello within the handshake timeout"
            log.warning("handshake_refused", host=host, remote=remote, reason=reason)
            await ws.close(code=REFUSED_CLOSE_CODE, message=reason.encode()[:_MAX_CLOSE_REASON])
            return ws
        welcome = ServerWelcome(protocol_version=PROTOCOL_VERSION, server_version=release_version())
        try:
            await ws.send_str(welcome.model_dump_json())
        except ConnectionError as e:  # the agent went away during the handshake
            log.info("handshake_abandoned", host=host, remote=remote, error=str(e))
            return ws
        transport = WebSocketTransport(ws, max_message_size=wscfg.max_message_size)
        session = Session(transport, client=False, config=self._mux_config)
        info = HostInfo(host=host, hello=hello, remote=remote, connected_at=time.time())
        try:
            await session.start()
            if not self._accepting():  # stop() began during the handshake; its close_all() missed this session
                return ws
            await self.registry.attach(session=session, info=info)
            accepting = asyncio.create_task(self._accept_streams(host, session))
            try:
                await session.wait_closed()
            finally:
                accepting.cancel()
                await asyncio.gather(accepting, return_exceptions=True)
        finally:
            # Also reached when the server stops and cancels this handler: the session must not outlive it.
            await session.close()
            await self.registry.detach(host=host, session=session, reason=describe_close(session))
            if not ws.closed:
                await ws.close()
        return ws
