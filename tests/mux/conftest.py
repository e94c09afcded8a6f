"""Shared fixtures for the mux tests: real TCP loopback sessions and the real hashicorp/yamux peer."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dockyard_mux.testing import SessionPair, build_yamux_peer, open_pair

REPO = Path(__file__).resolve().parents[2]
PEER_SOURCE = REPO / "hack" / "yamux-peer"


@pytest.fixture(scope="session")
def yamux_peer() -> Path:
    """The hack/yamux-peer binary, built once per source hash. Fails (never skips) without Go."""
    try:
        return build_yamux_peer(PEER_SOURCE)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"building hack/yamux-peer failed:\n{exc.stdout}\n{exc.stderr}")


def run_go_server(yamux_peer: Path, *extra: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [str(yamux_peer), "-role", "server", "-addr", "127.0.0.1:0", "-close-timeout", "300ms", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("LISTENING "), f"yamux-peer did not start: {line!r}"
        yield line.split()[1]
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def go_server(yamux_peer: Path) -> Iterator[str]:
    """A running yamux-peer server (hashicorp/yamux, default config) on loopback; yields "host:port"."""
    yield from run_go_server(yamux_peer)


@pytest.fixture(scope="module")
def go_server_big_window(yamux_peer: Path) -> Iterator[str]:
    """A yamux-peer server with MaxStreamWindowSize 16 MiB: its SYN/ACK window updates carry a non-zero delta."""
    yield from run_go_server(yamux_peer, "-max-window", str(16 * 1024 * 1024))


@pytest.fixture(params=["stream", "socket"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[SessionPair]:
    """Two Sessions over TCP loopback, once per transport adapter (StreamTransport pulls, SocketTransport pushes)."""
    sessions = await open_pair(transport=request.param)
    try:
        yield sessions
    finally:
        await sessions.client.close()
        await sessions.server.close()
