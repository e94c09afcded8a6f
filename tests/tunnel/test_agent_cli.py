"""The dockyard-agent command line: flags, environment variables, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dockyard_tunnel.agent.cli import UsageError, parse_config

PIN = "sha256:" + "ab" * 32


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("s3cret-token\n")
    return path


def test_flags_build_a_config(token_file: Path) -> None:
    config, level = parse_config(
        ["--server", "wss://tunnel:8443", "--host-name", "edge-1", "--token-file", str(token_file),
         "--ca-cert-hash", PIN, "--log-level", "debug"],
        {},
    )  # fmt: skip
    assert config.token == "s3cret-token"
    assert config.connect_url == "wss://tunnel:8443/v1/connect"
    assert config.docker_socket == "unix:///var/run/docker.sock"
    assert level == "debug"
    assert "s3cret-token" not in repr(config)


def test_every_flag_has_an_environment_variable(token_file: Path) -> None:
    env = {
        "DOCKYARD_AGENT_SERVER": "ws://tunnel:80",
        "DOCKYARD_AGENT_HOST_NAME": "edge-2",
        "DOCKYARD_AGENT_TOKEN_FILE": str(token_file),
        "DOCKYARD_AGENT_DOCKER_SOCKET": "unix:///run/docker.sock",
        "DOCKYARD_AGENT_INSECURE": "true",
        "DOCKYARD_AGENT_DRAIN_TIMEOUT": "5",
        "DOCKYARD_AGENT_HEARTBEAT": "2.5",
        "DOCKYARD_AGENT_LOG_LEVEL": "warning",
    }
    config, level = parse_config([], env)
    assert (config.server_url, config.host_name, config.insecure) == ("ws://tunnel:80", "edge-2", True)
    assert config.docker_socket_path == "/run/docker.sock"
    assert config.drain_timeout == 5.0
    assert config.websocket.heartbeat == 2.5
    assert level == "warning"
    # The command line wins over the environment.
    config, _ = parse_config(["--host-name", "edge-3"], env)
    assert config.host_name == "edge-3"


def test_token_from_environment_variable() -> None:
    config, _ = parse_config(
        ["--server", "wss://t", "--host-name", "h", "--ca-cert-hash", PIN], {"DOCKYARD_TOKEN": "from-env"}
    )
    assert config.token == "from-env"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--host-name", "h"], {"DOCKYARD_TOKEN": "t"}, "--server is required"),
        (["--server", "wss://t"], {"DOCKYARD_TOKEN": "t"}, "--host-name is required"),
        (["--server", "wss://t", "--host-name", "h", "--ca-cert-hash", PIN], {}, "no token"),
        (["--server", "wss://t", "--host-name", "h"], {"DOCKYARD_TOKEN": "t"}, "needs --ca-cert-hash"),
        (["--server", "ws://t", "--host-name", "h"], {"DOCKYARD_TOKEN": "t"}, "pass --insecure"),
        (["--server", "https://t", "--host-name", "h"], {"DOCKYARD_TOKEN": "t"}, "wss://HOST"),
        (["--server", "wss://t", "--host-name", "Bad_Name", "--ca-cert-hash", PIN], {"DOCKYARD_TOKEN": "t"},
         "invalid host name"),
        (["--server", "wss://t", "--host-name", "h", "--ca-cert-hash", "sha256:12"], {"DOCKYARD_TOKEN": "t"},
         "64 hex digits"),
        (["--server", "wss://t", "--host-name", "h", "--token", "t"], {}, "unrecognized arguments: --token"),
        ([], {"DOCKYARD_AGENT_INSECURE": "maybe"}, "must be true or false"),
        ([], {"DOCKYARD_AGENT_DRAIN_TIMEOUT": "soon"}, "invalid value"),
        (["--server", "wss://t", "--host-name", "h", "--token-file", "/nonexistent/token"], {},
         "cannot read --token-file"),
    ],
)  # fmt: skip
def test_wrong_settings_give_one_clear_message(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_config(argv, env)


def test_process_prints_one_line_and_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard_tunnel.agent", "--server", "wss://t", "--host-name", "h"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DOCKYARD_TOKEN": "super-secret-value"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["dockyard-agent: error: wss:// needs --ca-cert-hash sha256:<hex> or --ca-file (or --insecure)"]
    assert "super-secret-value" not in result.stderr + result.stdout


def test_help_explains_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockyard_tunnel.agent", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for flag in ("--server", "--host-name", "--token-file", "--ca-cert-hash", "--ca-file", "--docker-socket",
                 "--insecure", "DOCKYARD_TOKEN", "DOCKYARD_AGENT_SERVER"):  # fmt: skip
        assert flag in result.stdout
    assert "--token " not in result.stdout
