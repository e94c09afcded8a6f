"""Server and agent in two network namespaces joined by a veth pair; the link is cut for 20 s.

The server must notice the dead peer through keepalive (no FIN or RST ever arrives), and the agent must
reconnect by itself once the link is back. Both run as separate processes, each inside its namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard_tunnel.auth import hash_token
from dockyard_tunnel.tls import ca_cert_hash_of_file

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SERVER_IP = "10.231.0.1"
AGENT_IP = "10.231.0.2"
PORT = 18443


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        pytest.fail(
            f"`ip {' '.join(args)}` failed: {result.stderr.strip()}. This test needs root (or CAP_NET_ADMIN) "
            "and iproute2 to create network namespaces",
            pytrace=False,
        )


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str, str]]:
    tag = uuid.uuid4().hex[:6]
    server_ns, agent_ns = f"dy-srv-{tag}", f"dy-agt-{tag}"
    veth_server, veth_agent = f"dys{tag}", f"dya{tag}"
    _ip("netns", "add", server_ns)
    try:
        _ip("netns", "add", agent_ns)
        _ip("link", "add", veth_server, "type", "veth", "peer", "name", veth_agent)
        _ip("link", "set", veth_server, "netns", server_ns)
        _ip("link", "set", veth_agent, "netns", agent_ns)
        for ns, dev, ip in ((server_ns, veth_server, SERVER_IP), (agent_ns, veth_agent, AGENT_IP)):
            _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield server_ns, agent_ns, veth_agent
    finally:
        subprocess.run(["ip", "netns", "del", agent_ns], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", server_ns], check=False, capture_output=True)


def _text(path: Path) -> str:
    return path.read_text()


def _events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


async def _wait_for(path: Path, event: str, *, count: int = 1, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for r in _events(path) if r.get("event") == event) >= count:
            return time.monotonic()
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {count}x {event!r} in {path} within {timeout} s:\n{_text(path)}")


async def _spawn(ns: str, module: str, args: list[str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", ns, sys.executable, "-m", module, *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=dict(os.environ),
        )  # fmt: skip


async def test_link_cut_is_noticed_and_the_agent_reconnects(
    namespaces: tuple[str, str, str], tmp_path: Path, devenv: Any
) -> None:
    server_ns, agent_ns, veth = namespaces
    (tmp_path / "tokens").write_text(f"edge-1 {hash_token('link-cut-token')}\n")
    token = tmp_path / "token"
    token.write_text("link-cut-token\n")
    server_log, agent_log = tmp_path / "server.log", tmp_path / "agent.log"
    server = await _spawn(
        server_ns,
        "dockyard_tunnel.server",
        ["--listen", f"{SERVER_IP}:{PORT}", "--tls-dir", str(tmp_path / "tls"), "--server-name", SERVER_IP,
         "--tokens-file", str(tmp_path / "tokens"), "--heartbeat", "2"],
        server_log,
    )  # fmt: skip
    agent = None
    try:
        await _wait_for(server_log, "server_started", timeout=30)
        pin = ca_cert_hash_of_file(tmp_path / "tls" / "ca.crt")
        agent = await _spawn(
            agent_ns,
            "dockyard_tunnel.agent",
            ["--server", f"wss://{SERVER_IP}:{PORT}", "--host-name", "edge-1", "--token-file", str(token),
             "--ca-cert-hash", pin, "--docker-socket", devenv.docker_host, "--heartbeat", "2"],
            agent_log,
        )  # fmt: skip
        await _wait_for(server_log, "host_connected", timeout=30)

        _ip("-n", agent_ns, "link", "set", veth, "down")
        cut = time.monotonic()
        noticed = await _wait_for(server_log, "host_disconnected", timeout=20)
        print(f"server noticed the dead link after {noticed - cut:.1f} s")
        await asyncio.sleep(max(0.0, 20 - (time.monotonic() - cut)))
        _ip("-n", agent_ns, "link", "set", veth, "up")
        restored = time.monotonic()
        back = await _wait_for(server_log, "host_connected", count=2, timeout=45)
        print(f"agent reconnected {back - restored:.1f} s after the link came back")
        assert agent.returncode is None
        assert server.returncode is None
    finally:
        for process in (agent, server):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
