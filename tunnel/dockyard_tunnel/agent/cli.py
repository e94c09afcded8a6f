"""`dockyard-agent`: connect this Docker host to a Dockyard tunnel server.

Every flag can also be set through an environment variable DOCKYARD_AGENT_<FLAG> (for example
DOCKYARD_AGENT_SERVER); a flag on the command line wins. The token is read from --token-file or from the
DOCKYARD_TOKEN variable and never from the command line, where any local user could read it in `ps`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import structlog

from dockyard_tunnel.config import AgentConfig, WebSocketConfig
from dockyard_tunnel.errors import ConfigError
from dockyard_tunnel.handshake import release_version
from dockyard_tunnel.limits import raise_open_files_limit
from dockyard_tunnel.logs import LEVEL_NAMES, configure_json_logs

PROG = "dockyard-agent"
ENV_PREFIX = "DOCKYARD_AGENT_"
TOKEN_ENV = "DOCKYARD_TOKEN"  # noqa: S105 - the name of a variable, not a secret
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class UsageError(Exception):
    """A wrong or missing setting; main() prints it as one line and exits 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True, slots=True)
class _Option:
    flag: str
    help: str
    metavar: str | None = None
    convert: Callable[[str], object] = str
    is_switch: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


_OPTIONS = (
    _Option("--server", "tunnel server URL, wss://HOST[:PORT] (ws:// only with --insecure)", "URL"),
    _Option("--host-name", "the name of this Docker host in Dockyard (its DockerHost name)", "NAME"),
    _Option("--token-file", f"file holding this host's bearer token; or set {TOKEN_ENV}", "PATH", Path),
    _Option("--ca-cert-hash", "trust the server's CA by its public key hash", "sha256:HEX"),
    _Option("--ca-file", "trust the server through this CA certificate (PEM)", "PATH", Path),
    _Option("--docker-socket", "local Docker API socket (default unix:///var/run/docker.sock)", "unix:///PATH"),
    _Option("--insecure", "allow ws:// and skip server verification (tests only; logs a warning)", is_switch=True),
    _Option("--drain-timeout", "seconds in-flight streams get to finish on SIGTERM (default 10)", "SECONDS", float),
    _Option("--heartbeat", "WebSocket ping interval in seconds (default 20)", "SECONDS", float),
    _Option("--log-level", "log level (default info)", choices=LEVEL_NAMES),
)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        # No abbreviations: `--token SECRET` must be an error, not an abbreviation of --token-file.
        allow_abbrev=False,
        description=(
            "Connect this Docker host to a Dockyard tunnel server over an outbound WebSocket (wss://), so "
            "the operator can drive the local Docker API. No inbound port is needed. Every flag can also be "
            f"set with an environment variable {ENV_PREFIX}<FLAG NAME> (shown in brackets)."
        ),
    )
    for option in _OPTIONS:
        text = f"{option.help} [{option.env}]"
        if option.is_switch:
            p.add_argument(option.flag, help=text, action="store_true", default=None)
        else:
            p.add_argument(option.flag, help=text, metavar=option.metavar, type=option.convert, choices=option.choices)
    return p


def _apply_env(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Fill options not given on the command line from DOCKYARD_AGENT_* variables, with the same checks."""
    for option in _OPTIONS:
        raw = env.get(option.env)
        if raw is None or getattr(args, option.dest) is not None:
            continue  # unset, or the command line wins
        if option.is_switch:
            if raw.lower() not in _TRUE | _FALSE:
                raise UsageError(f"{option.env} must be true or false, got {raw!r}")
            setattr(args, option.dest, raw.lower() in _TRUE)
            continue
        if option.choices is not None and raw not in option.choices:
            raise UsageError(f"{option.env} must be one of {', '.join(option.choices)}, got {raw!r}")
        try:
            setattr(args, option.dest, option.convert(raw))
        except ValueError:
            raise UsageError(f"{option.env} has an invalid value {raw!r}") from None


def _read_token(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    if args.token_file is not None:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as e:
            raise UsageError(f"cannot read --token-file {args.token_file}: {e.strerror}") from None
        if not token:
            raise UsageError(f"--token-file {args.token_file} is empty")
        return token
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no token: give --token-file PATH or set {TOKEN_ENV}")
    return token


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> tuple[AgentConfig, str]:
    """Turn arguments and environment into an AgentConfig and a log level; UsageError says what is wrong."""
    args = build_parser().parse_args(list(argv))
    _apply_env(args, env)
    for option in _OPTIONS[:2]:
        if getattr(args, option.dest) is None:
            raise UsageError(f"{option.flag} is required (or set {option.env})")
    token = _read_token(args, env)
    optional: dict[str, object] = {}
    if args.docker_socket is not None:
        optional["docker_socket"] = args.docker_socket
    if args.drain_timeout is not None:
        optional["drain_timeout"] = args.drain_timeout
    try:
        if args.heartbeat is not None:
            optional["websocket"] = WebSocketConfig(heartbeat=args.heartbeat)
        config = AgentConfig(
            server_url=args.server,
            host_name=args.host_name,
            token=token,
            ca_file=args.ca_file,
            ca_cert_hash=args.ca_cert_hash,
            insecure=bool(args.insecure),
            **optional,  # type: ignore[arg-type]
        )
    except ConfigError as e:
        raise UsageError(str(e)) from None
    if config.ca_file is not None and not config.ca_file.is_file():
        raise UsageError(f"--ca-file {config.ca_file} does not exist")
    return config, str(args.log_level or "info")


async def _run(config: AgentConfig) -> None:
    # Imported here: aiohttp, aiodocker and pydantic take about half a second to import, which --help and
    # usage errors should not pay.
    from dockyard_tunnel.agent.running import Agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    agent = Agent(config)
    loop.add_signal_handler(signal.SIGUSR1, agent.log_status)
    await agent.run(stop=stop)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config, level = parse_config(sys.argv[1:] if argv is None else argv, os.environ)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    configure_json_logs(level=level)
    log = structlog.get_logger("dockyard_tunnel.agent")
    limit = raise_open_files_limit()  # a socket per DockerService connection
    # The runtime it carries (a one-file build bundles its own Python and OpenSSL): what a security audit asks.
    log.info(
        "starting",
        config=repr(config),  # AgentConfig's repr leaves the token out
        open_files_limit=limit,
        version=release_version(),
        python=platform.python_version(),
        openssl=ssl.OPENSSL_VERSION,
    )
    asyncio.run(_run(config))
    log.info("stopped")
    return 0
