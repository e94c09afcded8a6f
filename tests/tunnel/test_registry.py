"""The session registry: one session per host, replacement, connect/disconnect hooks with reasons, counters."""

from __future__ import annotations

import asyncio
import platform
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dockyard_mux import Session
from dockyard_tunnel.handshake import PROTOCOL_VERSION, AgentHello, parse_welcome
from dockyard_tunnel.server.registry import HostInfo, SessionRegistry
from dockyard_tunnel.testing import HOST, TOKEN, start_rig
from dockyard_tunnel.tls import agent_ssl_context_from_ca_file
from dockyard_tunnel.ws import WebSocketTransport

pytestmark = [pytest.mark.docker]


async def test_new_connection_replaces_the_old_one_and_hooks_report_in_order(tmp_path: Path, devenv: Any) -> None:
    events: list[tuple[str, str, str]] = []
    disconnects = asyncio.Queue[str](maxsize=10)

    async def connected(info: HostInfo) -> None:
        events.append(("connect", info.host, info.hello.hostname))

    async def disconnected(host: str, reason: str) -> None:
        events.append(("disconnect", host, reason))
        disconnects.put_nowait(reason)

    registry = SessionRegistry(on_connect=connected, on_disconnect=disconnected)
    rig = await start_rig(tmp_path, docker_socket=devenv.docker_host, registry=registry)
    try:
        assert rig.server.ca_file is not None
        ssl_context = agent_ssl_context_from_ca_file(rig.server.ca_file)
        headers = {"Authorization": f"Bearer {TOKEN}", "Dockyard-Host": HOST}
        hello = AgentHello(
            protocol_version=PROTOCOL_VERSION,
            agent_version="test",
            hostname="first-connection",
            docker_version="none",
            os="linux",
            arch=platform.machine(),
        )
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(rig.server.url + "/v1/connect", headers=headers, ssl=ssl_context)
            await ws.send_str(hello.model_dump_json())
            parse_welcome((await ws.receive()).data)
            first = Session(WebSocketTransport(ws, max_message_size=1 << 20), client=True)
            await first.start()
            await rig.wait_connected()
            assert events == [("connect", HOST, "first-connection")]

            agent = await rig.start_agent()
            async with asyncio.timeout(15):
                await first.wait_closed()  # replaced: the server closed the old session
            assert events[1] == ("disconnect", HOST, "replaced by a new connection from 127.0.0.1")
            assert events[2][0:2] == ("connect", HOST)
            assert events[2][2] != "first-connection"
            info = registry.info(HOST)
            assert info is not None
            assert info.hello.docker_version.startswith("20.10")

            docker = await rig.bridges.docker(HOST)
            try:
                await docker.version()
            finally:
                await docker.close()
            stats = registry.stats(HOST)
            assert stats.bytes_received > 0
            assert stats.bytes_sent > 0
            assert stats.rtt is not None

            await agent.stop()  # SIGKILL
            async with asyncio.timeout(5):
                while len(events) < 4:
                    await disconnects.get()
            assert events[3] == ("disconnect", HOST, "the peer closed the transport")
            assert registry.hosts() == []
            await ws.close()
    finally:
        await rig.close()
