"""Connections that must be refused: clear reason on the agent, no session on the server, nothing leaked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiodocker
import aiohttp
import pytest

from dockyard_tunnel.handshake import PROTOCOL_VERSION, REFUSED_CLOSE_CODE
from dockyard_tunnel.testing import HOST, TOKEN, TunnelRig
from dockyard_tunnel.tls import agent_ssl_context_from_ca_file, ca_cert_hash_of_file, ensure_self_signed

pytestmark = [pytest.mark.docker]


async def _refused(rig: TunnelRig, fragment: str, **kwargs: object) -> None:
    agent = await rig.start_agent(**kwargs)  # type: ignore[arg-type]
    record = await agent.wait_for_log(lambda r: r.get("event") == "connection_failed")
    assert fragment in record["error"], record
    # The agent keeps trying (backoff) rather than exiting, and no session was ever registered.
    await agent.wait_for_log(lambda r: r.get("event") == "reconnecting")
    assert agent.process.returncode is None
    assert rig.server.registry.hosts() == []
    assert TOKEN not in agent.log_path.read_text()
    assert "another-token" not in agent.log_path.read_text()


async def test_wrong_token(rig: TunnelRig) -> None:
    bad = rig.tmp / "bad-token"
    bad.write_text("another-token\n")  # valid for another host only
    await _refused(rig, f"refused the credentials for host {HOST!r} (HTTP 401)", token_file=bad)


async def test_unknown_host(rig: TunnelRig) -> None:
    await _refused(rig, "refused the credentials for host 'nobody' (HTTP 401)", host="nobody")


async def test_wrong_ca_pin(rig: TunnelRig, tmp_path: Path) -> None:
    other = ensure_self_signed(tmp_path / "other-ca", server_names=("127.0.0.1",))
    await _refused(rig, "does not match the pinned hash", pin=ca_cert_hash_of_file(other.ca_cert))


async def test_plain_ws_against_a_tls_server(rig: TunnelRig) -> None:
    url = rig.server.url.replace("wss://", "ws://")
    await _refused(rig, "does the server require wss://?", server_url=url, extra=("--insecure",))


async def test_version_mismatch_is_refused_with_the_reason(rig: TunnelRig) -> None:
    assert rig.server.ca_file is not None
    ssl_context = agent_ssl_context_from_ca_file(rig.server.ca_file)
    headers = {"Authorization": f"Bearer {TOKEN}", "Dockyard-Host": HOST}
    hello = {
        "protocol_version": PROTOCOL_VERSION + 98,
        "agent_version": "9",
        "hostname": "h",
        "docker_version": "x",
        "os": "linux",
        "arch": "x86_64",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(rig.server.url + "/v1/connect", headers=headers, ssl=ssl_context) as ws,
    ):
        await ws.send_str(json.dumps(hello))
        msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert msg.data == REFUSED_CLOSE_CODE
    assert msg.extra is not None
    assert "speaks tunnel protocol 99" in msg.extra
    assert rig.server.registry.hosts() == []


async def test_many_bad_tokens_rate_limit_the_source_and_leave_the_server_healthy(rig: TunnelRig) -> None:
    agent = await rig.start_agent()
    await rig.wait_connected()
    assert rig.server.ca_file is not None
    ssl_context = agent_ssl_context_from_ca_file(rig.server.ca_file)
    url = rig.server.url + "/v1/connect"
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession() as http:
        for i in range(1000):
            headers = {"Authorization": f"Bearer guess-{i}", "Dockyard-Host": HOST}
            async with http.get(url, headers=headers, ssl=ssl_context) as response:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                assert await response.text() in ("unauthorized\n", "too many failed attempts\n")
    burst = rig.server.config.rate_limit.burst
    assert statuses[401] >= burst
    assert statuses[401] <= burst + 5  # only refill during the run adds a few
    assert statuses[429] == 1000 - statuses[401]

    # The source is limited even with the right token ...
    limited = await rig.start_agent()
    record = await limited.wait_for_log(lambda r: r.get("event") == "connection_failed")
    assert "rate-limiting this address after failed attempts (HTTP 429)" in record["error"]
    await limited.stop()

    # ... while another source is judged on its own (401, not 429), and the connected agent still serves.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    headers = {"Authorization": f"Bearer {TOKEN}", "Dockyard-Host": "nobody"}
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(url, headers=headers, ssl=ssl_context) as response,
    ):
        assert response.status == 401
    docker = await rig.bridges.docker(HOST)
    try:
        async with asyncio.timeout(10):
            assert "Version" in await docker.version()
    finally:
        await docker.close()
    assert agent.process.returncode is None


async def test_agent_without_docker_answers_with_a_clear_error(rig: TunnelRig) -> None:
    missing = rig.tmp / "no-docker.sock"
    agent = await rig.start_agent(extra=("--docker-socket", f"unix://{missing}"))
    await rig.wait_connected()
    info = rig.server.registry.info(HOST)
    assert info is not None
    assert info.hello.docker_version == "unavailable"
    docker = await rig.bridges.docker(HOST)
    try:
        with pytest.raises(aiodocker.DockerError) as failed:
            await docker.version()
    finally:
        await docker.close()
    assert failed.value.status == 502
    assert f"the agent cannot reach its Docker daemon at {missing}" in str(failed.value)
    await agent.wait_for_log(lambda r: r.get("event") == "docker_unreachable")
