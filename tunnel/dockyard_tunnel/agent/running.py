"""The agent's main loop: dial the server, hand accepted streams to the relay, reconnect forever.

The agent is the mux client (odd stream ids) because it dials; the server opens the streams. Keepalive is
layered: the WebSocket heartbeat closes a connection whose pongs stop, and the mux keepalive does the same
one level up and measures RTT. Either way the session ends and the loop reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import socket
import ssl
import time
import urllib.parse
import urllib.request

import aiohttp
import structlog

from dockyard_mux import Config as MuxConfig
from dockyard_mux import Session, SessionClosedError
from dockyard_tunnel.agent.backoff import Backoff
from dockyard_tunnel.agent.containers import ManagedContainers
from dockyard_tunnel.agent.importing import ImportListeners
from dockyard_tunnel.agent.relaying import StreamRelay
from dockyard_tunnel.agent.stats import AgentActivity, StatsCollector
from dockyard_tunnel.config import HOST_HEADER, AgentConfig
from dockyard_tunnel.dockerapi.local import LocalDocker
from dockyard_tunnel.errors import (
    ConnectRefusedError,
    HandshakeError,
    LocalDockerError,
    TLSSetupError,
    TunnelError,
)
from dockyard_tunnel.handshake import PROTOCOL_VERSION, AgentHello, parse_welcome, release_version
from dockyard_tunnel.tls import (
    agent_ssl_context_from_ca_file,
    agent_ssl_context_from_pinned_ca,
    unverified_ssl_context,
)
from dockyard_tunnel.ws import WebSocketTransport

log = structlog.get_logger("dockyard_tunnel.agent")

# A CA certificate is about 1 KiB; anything far bigger is not one.
_MAX_CA_BYTES = 64 * 1024


def proxy_for(url: str) -> str | None:
    """The HTTP proxy for `url` from the environment, honouring NO_PROXY.

    aiohttp's trust_env looks up WSS_PROXY for wss:// URLs, but HTTPS_PROXY is what administrators set, so a
    wss:// URL uses WSS_PROXY if set, else HTTPS_PROXY (and ws:// WS_PROXY, else HTTP_PROXY). aiohttp then
    tunnels through it with HTTP CONNECT.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    order = ("wss", "https") if parts.scheme == "wss" else ("ws", "http")
    for key in order:
        if proxies.get(key):
            return proxies[key]
    return None


def _without_credentials(url: str) -> str:
    """`url` without user:password, for logging a proxy URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None:
        return url
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class Agent:
    """Connects one Docker host to the tunnel server until `stop` is set."""

    def __init__(self, config: AgentConfig, *, mux_config: MuxConfig | None = None) -> None:
        self._config = config
        self._mux_config = mux_config
        self._ca_file_context: ssl.SSLContext | None = None
        self._session: Session | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.activity = AgentActivity()

    def log_status(self) -> None:
        """Log the live session's counters (the CLI calls this on SIGUSR1)."""
        session = self._session
        log.info(
            "status",
            connected=session is not None and not session.closed,
            open_streams=session.num_streams if session else 0,
            relaying=len(self._handlers),
            bytes_sent=session.bytes_sent if session else 0,
            bytes_received=session.bytes_received if session else 0,
            rtt=session.rtt if session else None,
        )

    async def run(self, *, stop: asyncio.Event) -> None:
        cfg = self._config
        if cfg.insecure:
            log.warning("insecure_mode", detail="the server is not verified; anyone on the path can impersonate it")
        backoff = Backoff(cfg.backoff)
        # trust_env: HTTPS_PROXY / NO_PROXY apply to the WebSocket (HTTP CONNECT) and to the CA fetch.
        async with (
            aiohttp.ClientSession(trust_env=True) as http,
            LocalDocker(socket_path=cfg.docker_socket_path) as docker,
        ):
            managed = ManagedContainers(docker)  # one list for the tcp relay and the import listeners
            imports = ImportListeners(session=lambda: self._session, local_docker=docker, managed=managed)
            relay = StreamRelay(
                docker_socket_path=cfg.docker_socket_path,
                managed=managed,
                imports=imports,
                stats=StatsCollector(docker, self.activity),
                counted=self.activity.streams,
            )
            try:
                while not stop.is_set():
                    connected_at: list[float] = []
                    try:
                        await self._connect_and_serve(http, docker, relay, stop=stop, connected_at=connected_at)
                    except TunnelError as e:
                        log.error("connection_failed", server=cfg.server_url, host=cfg.host_name, error=str(e))
                    except Exception:
                        # A bug or an unforeseen library error must not end the agent: log it and reconnect.
                        log.exception("unexpected_error", server=cfg.server_url, host=cfg.host_name)
                    if connected_at:
                        backoff.connection_ended(lived=time.monotonic() - connected_at[0])
                    if stop.is_set():
                        break
                    delay = backoff.next_delay()
                    log.info("reconnecting", delay=round(delay, 3))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
            finally:
                await imports.close()  # listeners end with the agent

    async def _ssl_context(self, http: aiohttp.ClientSession) -> ssl.SSLContext | bool:
        cfg = self._config
        if cfg.server_url.startswith("ws://"):
            return True  # plain WebSocket: aiohttp ignores the value
        if cfg.insecure:
            return unverified_ssl_context()
        if cfg.ca_file is not None:
            if self._ca_file_context is None:
                self._ca_file_context = agent_ssl_context_from_ca_file(cfg.ca_file)
            return self._ca_file_context
        if cfg.ca_cert_hash is None:  # AgentConfig validation forbids this; kept for type narrowing
            raise TLSSetupError("no way to verify the server: give --ca-cert-hash or --ca-file")
        # Fetched over unverified TLS on purpose: the bytes are trusted only after the pin matches.
        try:
            async with http.get(
                cfg.ca_url,
                ssl=unverified_ssl_context(),
                timeout=aiohttp.ClientTimeout(total=cfg.connect_timeout),
                allow_redirects=False,
            ) as response:
                if response.status != 200:
                    raise TLSSetupError(
                        f"the server does not publish its CA (HTTP {response.status} for {cfg.ca_url}); "
                        "use --ca-file instead of --ca-cert-hash"
                    )
                pem = await response.content.read(_MAX_CA_BYTES)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise ConnectRefusedError(f"cannot fetch the server's CA from {cfg.ca_url}: {e or 'timeout'}") from e
        return agent_ssl_context_from_pinned_ca(ca_pem=pem, expected_hash=cfg.ca_cert_hash)

    async def _hello(self, docker: LocalDocker) -> AgentHello:
        try:
            docker_version = await docker.engine_version()
        except LocalDockerError as e:
            log.warning("docker_unreachable", error=str(e))
            docker_version = "unavailable"
        return AgentHello(
            protocol_version=PROTOCOL_VERSION,
            agent_version=release_version(),
            hostname=socket.gethostname()[:128] or "unknown",
            docker_version=docker_version[:128] or "unknown",
            os=platform.system().lower() or "unknown",
            arch=platform.machine() or "unknown",
        )

    async def _dial(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        cfg = self._config
        ssl_context = await self._ssl_context(http)
        headers = {"Authorization": f"Bearer {cfg.token}", HOST_HEADER: cfg.host_name}
        proxy = proxy_for(cfg.server_url)
        if proxy is not None:
            log.info("using_proxy", proxy=_without_credentials(proxy))
        try:
            return await asyncio.wait_for(
                http.ws_connect(
                    cfg.connect_url,
                    headers=headers,
                    ssl=ssl_context,
                    heartbeat=cfg.websocket.heartbeat,
                    max_msg_size=cfg.websocket.max_message_size,
                    compress=0,
                    autoping=True,
                    proxy=proxy,
                ),
                cfg.connect_timeout,
            )
        except aiohttp.WSServerHandshakeError as e:
            if e.status == 401:
                msg = f"the server refused the credentials for host {cfg.host_name!r} (HTTP 401)"
            elif e.status == 429:
                msg = "the server is rate-limiting this address after failed attempts (HTTP 429)"
            elif e.status == 503:
                msg = "the server is starting and cannot check this host's token yet (HTTP 503); retrying"
            else:
                msg = f"the server answered HTTP {e.status} instead of a WebSocket upgrade"
            raise ConnectRefusedError(msg, status=e.status) from e
        except aiohttp.ClientConnectorCertificateError as e:
            raise TLSSetupError(f"the server's certificate is not trusted: {e.certificate_error}") from e
        except aiohttp.ClientSSLError as e:
            raise TLSSetupError(f"TLS with the server failed: {e}") from e
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            hint = " (does the server require wss://?)" if cfg.server_url.startswith("ws://") else ""
            detail = str(e) or type(e).__name__
            raise ConnectRefusedError(f"cannot connect to {cfg.server_url}: {detail}{hint}") from e

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse, hello: AgentHello) -> str:
        try:
            await ws.send_str(hello.model_dump_json())
            msg = await asyncio.wait_for(ws.receive(), self._config.connect_timeout)
        except TimeoutError:
            raise HandshakeError("the server sent no welcome in time") from None
        except (aiohttp.ClientError, ConnectionError) as e:
            raise ConnectRefusedError(f"the connection was lost during the handshake: {e}") from e
        if msg.type is aiohttp.WSMsgType.TEXT:
            return parse_welcome(msg.data).server_version
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            raise ConnectRefusedError(f"the server refused the handshake: {msg.extra or 'no reason given'}")
        raise HandshakeError(f"expected the server welcome as text, got {msg.type.name}")

    async def _connect_and_serve(
        self,
        http: aiohttp.ClientSession,
        docker: LocalDocker,
        relay: StreamRelay,
        *,
        stop: asyncio.Event,
        connected_at: list[float],
    ) -> None:
        cfg = self._config
        hello = await self._hello(docker)
        ws = await self._dial(http)
        try:
            server_version = await self._handshake(ws, hello)
            transport = WebSocketTransport(ws, max_message_size=cfg.websocket.max_message_size)
            session = Session(transport, client=True, config=self._mux_config)
            await session.start()
            connected_at.append(time.monotonic())
            self.activity.sessions += 1
            log.info("connected", server=cfg.server_url, host=cfg.host_name, server_version=server_version)
            try:
                await self._serve(session, relay, stop=stop)
            finally:
                await session.close()
            log.info("disconnected", reason=_describe(session))
        finally:
            await ws.close()

    async def _serve(self, session: Session, relay: StreamRelay, *, stop: asyncio.Event) -> None:
        handlers = self._handlers
        self._session = session

        async def accept_forever() -> None:
            while True:
                try:
                    stream = await session.accept_stream()
                except SessionClosedError:
                    return
                task = asyncio.create_task(relay.handle(stream))
                handlers.add(task)
                task.add_done_callback(handlers.discard)

        accepting = asyncio.create_task(accept_forever())
        stopping = asyncio.create_task(stop.wait())
        ending = asyncio.create_task(session.wait_closed())
        try:
            await asyncio.wait({stopping, ending}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set() and not session.closed:
                log.info("draining", open_streams=len(handlers), timeout=self._config.drain_timeout)
                with contextlib.suppress(SessionClosedError):  # it may end on its own meanwhile
                    await session.go_away()
                deadline = time.monotonic() + self._config.drain_timeout
                while handlers and time.monotonic() < deadline:
                    await asyncio.wait(set(handlers), timeout=max(0.0, deadline - time.monotonic()))
                if handlers:
                    log.warning("drain_timeout", resetting_streams=len(handlers))
        finally:
            pending = [accepting, stopping, ending, *handlers]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def _describe(session: Session) -> str:
    reason = session.close_reason
    return "closed" if reason is None else (str(reason) or type(reason).__name__)
