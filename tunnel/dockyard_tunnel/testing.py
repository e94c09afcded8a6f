"""Test support for the tunnel (used by tests/tunnel; not by production code).

A real TunnelServer in the caller's event loop plus the agent as a separate process, started exactly as
deployed (`python -m dockyard_tunnel.agent` with the token in a file). The agent's JSON log goes to a file the
tests read (`AgentProcess.wait_for_log`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard_tunnel.auth import TokenHashFile, hash_token
from dockyard_tunnel.config import ServerConfig, WebSocketConfig
from dockyard_tunnel.dockerapi.bridging import DockerBridges
from dockyard_tunnel.server.app import TunnelServer
from dockyard_tunnel.server.registry import SessionRegistry

HOST = "edge-1"
TOKEN = "tkn-0123456789abcdef"  # noqa: S105 - a fixed test token, never used outside tests


@dataclass
class AgentProcess:
    """A running `python -m dockyard_tunnel.agent` and its log file."""

    process: asyncio.subprocess.Process
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"event": "non-json", "line": line})
        return out

    async def wait_for_log(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if predicate(record):
                    return record
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching agent log record within {timeout} s; log:\n{self.log_path.read_text()}")

    async def status(self) -> dict[str, Any]:
        """Ask the agent for its counters (SIGUSR1) and return the new status record."""
        before = sum(1 for r in self.records() if r.get("event") == "status")
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            statuses = [r for r in self.records() if r.get("event") == "status"]
            if len(statuses) > before:
                return statuses[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"the agent logged no status after SIGUSR1; log:\n{self.log_path.read_text()}")

    async def stop(self, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to the agent's process group (only processes this helper started) and wait for it."""
        if self.process.returncode is None:
            os.killpg(self.process.pid, sig)
        code = await asyncio.wait_for(self.process.wait(), 30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # any leftover child of a one-file binary
        return code


@dataclass
class TunnelRig:
    """A started tunnel server with Docker bridges, plus what an agent needs to reach it."""

    server: TunnelServer
    bridges: DockerBridges
    config: ServerConfig
    tmp: Path
    token_file: Path
    docker_socket: str
    agents: list[AgentProcess] = field(default_factory=list)

    async def start_agent(
        self,
        *,
        host: str = HOST,
        token_file: Path | None = None,
        server_url: str | None = None,
        pin: str | None = None,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        command: tuple[str, ...] | None = None,
    ) -> AgentProcess:
        """Start an agent process (`python -m dockyard_tunnel.agent`, or `command`, e.g. the built binary)."""
        args = [
            "--server", server_url or self.server.url,
            "--host-name", host,
            "--token-file", str(token_file or self.token_file),
            "--docker-socket", self.docker_socket,
            "--log-level", "debug",
        ]  # fmt: skip
        if not self.config.insecure and "--insecure" not in extra:
            args += ["--ca-cert-hash", pin or str(self.server.ca_cert_hash)]
        log_path = self.tmp / f"agent-{len(self.agents)}.log"
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                *(command or (sys.executable, "-m", "dockyard_tunnel.agent")), *args, *extra,
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                env={**os.environ, **(env or {})},
                # Its own process group: a PyInstaller one-file binary is a bootloader plus a child process,
                # and SIGKILL to the bootloader alone would leave the child running.
                start_new_session=True,
            )  # fmt: skip
        agent = AgentProcess(process=process, log_path=log_path)
        self.agents.append(agent)
        return agent

    async def wait_connected(self, host: str = HOST, *, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.server.registry.get(host) is None:
            if time.monotonic() > deadline:
                logs = "\n".join(a.log_path.read_text() for a in self.agents)
                raise AssertionError(f"host {host} did not connect within {timeout} s; agent logs:\n{logs}")
            await asyncio.sleep(0.02)

    async def restart_server(self) -> None:
        """Stop the server and start a new one on the same port and TLS directory (same CA, same pin)."""
        port = self.server.port
        await self.bridges.stop()
        await self.server.stop()
        self.server = make_server(self.tmp, port=port, registry=self.server.registry)  # keep the hooks
        await self.server.start()
        self.bridges = DockerBridges(self.server.registry, run_dir=self.tmp / "run")
        await self.bridges.start()

    async def close(self) -> None:
        for agent in self.agents:
            await agent.stop()
        await self.bridges.stop()
        await self.server.stop()


async def start_rig(tmp: Path, *, docker_socket: str, registry: SessionRegistry | None = None) -> TunnelRig:
    server = make_server(tmp, registry=registry)
    await server.start()
    bridges = DockerBridges(server.registry, run_dir=tmp / "run")
    await bridges.start()
    token_file = tmp / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    return TunnelRig(
        server=server,
        bridges=bridges,
        config=server.config,
        tmp=tmp,
        token_file=token_file,
        docker_socket=docker_socket,
    )


def make_server(
    tmp: Path,
    *,
    port: int = 0,
    insecure: bool = False,
    heartbeat: float = 20.0,
    registry: SessionRegistry | None = None,
) -> TunnelServer:
    tokens = tmp / "tokens"
    if not tokens.exists():
        tokens.write_text(f"{HOST} {hash_token(TOKEN)}\nother-host {hash_token('another-token')}\n")
    config = ServerConfig(
        port=port, insecure=insecure, tls_dir=tmp / "tls", websocket=WebSocketConfig(heartbeat=heartbeat)
    )
    return TunnelServer(config, authenticator=TokenHashFile(tokens), registry=registry)
