"""`dockyard`: run the operator, or help an administrator (host join, version).

Every flag of `dockyard operator` can also be set from an environment variable (DOCKYARD_<FLAG>, dashes as
underscores), which is how the Deployment configures it. Mistakes print one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from dockyard_operator import __version__, tracing
from dockyard_operator.api.common import DEFAULT_OPERATOR_CLASS, DNS_LABEL_PATTERN
from dockyard_operator.hosts import agent_install
from dockyard_operator.hosts.tokens import TOKEN_KEY, token_secret_name
from dockyard_operator.informer.informing import WatchSettings
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import CONFIGMAPS, DOCKERCONTAINERS, DOCKERHOSTS, SECRETS
from dockyard_operator.settings import (
    AccessSettings,
    OperatorSettings,
    ReconcileSettings,
    ServiceSettings,
    StatsSettings,
    TunnelSettings,
)
from dockyard_tunnel.limits import raise_open_files_limit
from dockyard_tunnel.logs import LEVEL_NAMES, configure_json_logs

EXIT_USAGE = 2


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DOCKYARD_{name.upper().replace('-', '_')}", default)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in _TRUE + _FALSE:
        # A typo must not quietly mean "false": DOCKYARD_LEADER_ELECT=ture would let two replicas act.
        env = f"DOCKYARD_{name.upper().replace('-', '_')}"
        raise SystemExit(f"dockyard: error: {env}={raw!r} is not a boolean (use true or false)")
    return value in _TRUE


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockyard", description="Dockyard: Docker containers on remote hosts, run by Kubernetes."
    )
    parser.add_argument("--version", action="version", version=f"dockyard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    op = sub.add_parser("operator", help="run the operator (watches, reconciles, serves the agent tunnel)")
    op.add_argument(
        "--kubeconfig",
        default=_env("kubeconfig", os.environ.get("KUBECONFIG")),
        help="kubeconfig file (default: in-cluster config, else $KUBECONFIG / ~/.kube/config)",
    )
    op.add_argument("--context", default=_env("context"), help="kubeconfig context to use")
    op.add_argument(
        "--namespace",
        action="append",
        default=None,
        dest="namespaces",
        help="watch DockerContainers in this namespace (repeatable; default: all). Env: DOCKYARD_NAMESPACES=a,b",
    )
    op.add_argument(
        "--operator-class",
        default=_env("operator-class", DEFAULT_OPERATOR_CLASS),
        help="serve DockerHosts with this spec.operatorClass and namespaces labelled dockyard.dev/operator-class "
        f"with it (default: {DEFAULT_OPERATOR_CLASS}, which also takes unlabelled namespaces)",
    )
    op.add_argument(
        "--operator-namespace",
        default=_env("operator-namespace", "dockyard-system"),
        help="namespace for the leader Lease and agent token Secrets (default: dockyard-system)",
    )
    op.add_argument(
        "--workers",
        type=int,
        default=_env("workers", "4"),
        help="concurrent DockerContainer reconciles (default: 4)",
    )
    op.add_argument(
        "--resync-period",
        type=float,
        default=_env("resync-period", "300"),
        help="seconds between full re-checks of every container (default: 300)",
    )
    op.add_argument(
        "--metrics-address",
        default=_env("metrics-address", "127.0.0.1:8080"),
        help="host:port for /healthz, /readyz and /metrics (default: 127.0.0.1:8080)",
    )
    op.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("leader-elect", True),
        help="elect a leader with a Lease so only one replica acts (default: on)",
    )
    op.add_argument("--identity", default=_env("identity", ""), help="this replica's name in the Lease")
    op.add_argument(
        "--pod-name",
        default=_env("pod-name", ""),
        help="this replica's Pod, when running in a cluster: the leader labels it dockyard.dev/leader=true",
    )
    op.add_argument(
        "--tunnel",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("tunnel", True),
        help="serve the agent tunnel in this process (default: on)",
    )
    op.add_argument(
        "--tunnel-address",
        default=_env("tunnel-address", "0.0.0.0:8443"),
        help="host:port the tunnel server binds (default: 0.0.0.0:8443)",
    )
    op.add_argument(
        "--tunnel-public-url",
        default=_env("tunnel-public-url", ""),
        help="wss:// URL agents dial, as printed by `dockyard host join`",
    )
    op.add_argument(
        "--tunnel-tls-dir",
        default=_env("tunnel-tls-dir"),
        help="directory for the tunnel's self-signed CA and certificate (created if missing)",
    )
    op.add_argument(
        "--tunnel-cert-file",
        default=_env("tunnel-cert-file"),
        help="serving certificate for the tunnel from your own PKI (with --tunnel-key-file)",
    )
    op.add_argument("--tunnel-key-file", default=_env("tunnel-key-file"), help="key of --tunnel-cert-file")
    op.add_argument(
        "--insecure-tunnel",
        action="store_true",
        default=_env_bool("insecure-tunnel", False),
        help="serve plain ws:// without TLS (development only)",
    )
    op.add_argument(
        "--service-address",
        default=_env("service-address", ""),
        help="IP the DockerService data plane listens on and EndpointSlices point at "
        "(default: $POD_IP; required outside a cluster for DockerServices; never loopback)",
    )
    op.add_argument(
        "--container-stats-interval",
        type=float,
        default=_env("container-stats-interval", "30"),
        help="seconds between two requests for each host's container stats, one per host (default: 30; 0: off)",
    )
    op.add_argument(
        "--access-address",
        default=_env("access-address", ""),
        help="host:port of the access API for logs/exec/port-forward, reached through kube-apiserver's "
        "aggregator (default: not served; the Deployment sets $(POD_IP):8444)",
    )
    op.add_argument(
        "--access-tls-dir",
        default=_env("access-tls-dir"),
        help="directory for the access API's self-signed CA and serving certificate (created if missing)",
    )
    op.add_argument("--log-level", choices=LEVEL_NAMES, default=_env("log-level", "info"))

    rollout = sub.add_parser("rollout", help="manage the rollout of a DockerDeployment (as kubectl rollout)")
    rollout_sub = rollout.add_subparsers(dest="rollout_command", metavar="VERB")
    verbs = {
        "status": "wait for the rollout to finish; exit 1 if its progress deadline passed",
        "history": "list the revisions (or show one with --revision)",
        "undo": "roll back to the previous revision (or --to-revision N)",
        "restart": "replace every replica, as the strategy allows",
        "pause": "stop rolling out template changes",
        "resume": "resume a paused DockerDeployment",
    }
    for verb, text in verbs.items():
        cmd = rollout_sub.add_parser(verb, help=text)
        cmd.add_argument("target", help="ddeploy/NAME")
        cmd.add_argument("-n", "--namespace", default="default", help="namespace of the DockerDeployment")
        cmd.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
        cmd.add_argument("--context", default=None)
        if verb == "status":
            cmd.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (0: never)")
        if verb == "history":
            cmd.add_argument("--revision", type=int, default=None, help="show this revision's template")
        if verb == "undo":
            cmd.add_argument("--to-revision", type=int, default=None, help="the revision to go back to")

    _add_access_commands(sub)

    host = sub.add_parser("host", help="DockerHost helpers")
    host_sub = host.add_subparsers(dest="host_command", metavar="HOSTCOMMAND")
    join = host_sub.add_parser("join", help="write the agent token to a file and print the agent command")
    join.add_argument("name", help="the DockerHost name")
    join.add_argument("--token-file", required=True, help="where to write the agent token (created with mode 0600)")
    join.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    join.add_argument("--context", default=None)
    join.add_argument("--operator-namespace", default=_env("operator-namespace", "dockyard-system"))
    join.add_argument(
        "--arch",
        choices=agent_install.ARCHES,
        default=None,
        help="also print how to install the agent on a host of this architecture (uname -m: x86_64, aarch64)",
    )
    return parser


def _add_access_commands(sub: Any) -> None:
    """logs, exec, port-forward, top: through kube-apiserver with the caller's own credentials and RBAC."""

    def common(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")
        cmd.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
        cmd.add_argument("--context", default=None)

    logs = sub.add_parser("logs", help="print a DockerContainer's log (as kubectl logs)")
    logs.add_argument("target", help="dc/NAME, ddeploy/NAME or dj/NAME (a replica or attempt, as kubectl picks)")
    logs.add_argument("--all", action="store_true", help="every container of ddeploy/dj, lines prefixed")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--tail", type=int, default=None, help="only the last N lines")
    logs.add_argument("--since", default=None, help="only lines newer than this duration (5s, 2m, 3h)")
    logs.add_argument("--timestamps", action="store_true", help="prefix each line with its RFC3339 time")
    logs.add_argument("-p", "--previous", action="store_true", help="the container before the last recreate")
    common(logs)

    ex = sub.add_parser("exec", help="run a command in a DockerContainer (as kubectl exec)")
    ex.add_argument("target", help="dc/NAME (or ddeploy/NAME, dj/NAME: one of their containers)")
    ex.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    ex.add_argument("-t", "--tty", action="store_true", help="allocate a terminal (stdin must be one)")
    ex.add_argument("argv", nargs="*", metavar="-- COMMAND", help="the command and its arguments, after --")
    common(ex)

    pf = sub.add_parser("port-forward", help="forward local ports to a DockerContainer (as kubectl port-forward)")
    pf.add_argument("target", help="dc/NAME (or ddeploy/NAME, dj/NAME: one of their containers)")
    pf.add_argument("ports", nargs="+", help="LOCAL:REMOTE, REMOTE, or :REMOTE")
    pf.add_argument("--address", default="127.0.0.1", help="local address to listen on (default: 127.0.0.1)")
    common(pf)

    st = sub.add_parser("status", help="a DockerHost at a glance: agent, Docker, conditions, heartbeat, containers")
    st.add_argument("target", help="dh/NAME (or NAME)")
    st.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    st.add_argument("--context", default=None)

    top = sub.add_parser("top", help="CPU, memory and network of DockerContainers (as kubectl top pod)")
    top.add_argument("kind", help="dc (every DockerContainer in the namespace) or dc/NAME")
    common(top)


_DURATION = re.compile(r"^(\d+)([smh])$")


def _seconds(value: str) -> int:
    match = _DURATION.match(value)
    if not match:
        raise SystemExit(f"dockyard: error: --since must be a duration like 30s, 5m or 2h, not {value!r}")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


async def _access(args: argparse.Namespace) -> int:
    from dockyard_operator.access import commands  # imported late: `dockyard --help` stays fast
    from dockyard_operator.access.errors import AccessError, UsageError

    try:
        if args.command == "top":
            every = args.kind.lower() in ("dc", "dockercontainers", "dockercontainer")
            kind, name = ("DockerContainer", "") if every else commands.parse_target(args.kind)
        else:
            kind, name = commands.parse_target(args.target)
        command = list(getattr(args, "command_args", []) or [])
        ports = [commands.parse_ports(p) for p in getattr(args, "ports", [])]
        since = _seconds(args.since) if getattr(args, "since", None) else None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        kube = await KubeClient.connect(kubeconfig=args.kubeconfig, context=args.context)
    except kube_errors.KubeError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return 1
    namespace = args.namespace
    try:
        names = await commands.resolve(kube, namespace, kind, name) if name else []
        if args.command == "logs":
            options = {"follow": args.follow, "tail": args.tail, "since": since, "timestamps": args.timestamps,
                       "previous": args.previous}  # fmt: skip
            if args.all:
                await commands.logs_all(kube, namespace, names, out=sys.stdout.buffer, **options)
            else:
                await commands.logs(kube, namespace, names[0], out=sys.stdout.buffer, **options)
        elif args.command == "exec":
            return await commands.exec_(kube, namespace, names[0], command, stdin=args.stdin, tty=args.tty)
        elif args.command == "port-forward":
            await commands.port_forward(kube, namespace, names[0], ports, address=args.address)
        else:
            rows = await commands.top(kube, namespace, names[0] if names else None)
            print(f"{'NAME':<32} {'HOST':<20} {'CPU(cores)':>10} {'MEMORY(bytes)':>14} {'NET-RX':>10} {'NET-TX':>10}")
            for n, host, cores, mem, rx, tx in rows:
                print(f"{n:<32} {host:<20} {f'{cores * 1000:.0f}m':>10} {f'{mem // 2**20}Mi':>14} "
                      f"{_bytes(rx):>10} {_bytes(tx):>10}")  # fmt: skip
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except kube_errors.APIError as exc:
        print(f"Error from server ({exc.reason or exc.status}): {exc.message}", file=sys.stderr)
        return 1
    except (kube_errors.KubeError, AccessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await kube.close()
    return 0


async def _status(args: argparse.Namespace) -> int:
    from dockyard_operator.hosts.describing import describe

    kind, sep, name = args.target.partition("/")
    if not sep:
        kind, name = "dh", args.target
    if kind.lower() not in ("dh", "dockerhost", "dockerhosts") or not name:
        print(f"error: {args.target!r}: expected dh/NAME (a DockerHost)", file=sys.stderr)
        return EXIT_USAGE
    try:
        kube = await KubeClient.connect(kubeconfig=args.kubeconfig, context=args.context)
    except kube_errors.KubeError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return 1
    try:
        host = await kube.get(DOCKERHOSTS, name)
        try:
            items = (await kube.list(DOCKERCONTAINERS)).get("items") or []
            placed: list[dict[str, Any]] | None = [o for o in items if (o.get("status") or {}).get("host") == name]
        except kube_errors.ForbiddenError:
            placed = None
    except kube_errors.NotFoundError:
        print(f'Error from server (NotFound): dockerhosts.dockyard.dev "{name}" not found', file=sys.stderr)
        return 1
    except kube_errors.KubeError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return 1
    finally:
        await kube.close()
    sys.stdout.write(describe(host, placed))
    return 0


def _bytes(n: int) -> str:
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n}B"


def _split_address(value: str, flag: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SystemExit(f"dockyard: error: {flag} must be host:port, not {value!r}")
    return host or "0.0.0.0", int(port)  # noqa: S104 — ":8443" means all interfaces, as for Go servers


def settings_from_args(args: argparse.Namespace) -> OperatorSettings:
    namespaces = args.namespaces or [n for n in (_env("namespaces") or "").split(",") if n]
    if not re.fullmatch(DNS_LABEL_PATTERN, args.operator_class or "") or len(args.operator_class) > 63:
        raise SystemExit(
            f"dockyard: error: --operator-class must be a DNS label (a-z, 0-9, '-'), not {args.operator_class!r}"
        )
    tunnel_host, tunnel_port = _split_address(args.tunnel_address, "--tunnel-address")
    _split_address(args.metrics_address, "--metrics-address")
    try:
        return OperatorSettings(
            namespaces=tuple(namespaces),
            operator_class=args.operator_class,
            operator_namespace=args.operator_namespace,
            identity=args.identity,
            pod_name=args.pod_name,
            leader_election=args.leader_elect,
            metrics_address=args.metrics_address,
            watch=WatchSettings(),
            reconcile=ReconcileSettings(workers=args.workers, resync_period=args.resync_period),
            tunnel=TunnelSettings(
                enabled=args.tunnel,
                listen_host=tunnel_host,
                listen_port=tunnel_port,
                public_url=args.tunnel_public_url,
                tls_dir=Path(args.tunnel_tls_dir) if args.tunnel_tls_dir else None,
                cert_file=Path(args.tunnel_cert_file) if args.tunnel_cert_file else None,
                key_file=Path(args.tunnel_key_file) if args.tunnel_key_file else None,
                insecure=args.insecure_tunnel,
            ),
            services=ServiceSettings(address=args.service_address),
            stats=StatsSettings(interval=args.container_stats_interval),
            access=_access_settings(args),
        )
    except ValueError as exc:
        raise SystemExit(f"dockyard: error: {exc}") from None


def _access_settings(args: argparse.Namespace) -> AccessSettings:
    if not args.access_address:
        return AccessSettings()
    host, port = _split_address(args.access_address, "--access-address")
    return AccessSettings(
        listen_host=host,
        listen_port=port,
        tls_dir=Path(args.access_tls_dir) if args.access_tls_dir else None,
        # The aggregator verifies the name of the Service it was given, in the operator's namespace.
        server_names=(f"dockyard-access.{args.operator_namespace}.svc", "localhost", "127.0.0.1"),
    )


async def _run_operator(args: argparse.Namespace) -> int:
    from dockyard_operator.run import Operator  # imported late: `dockyard --help` stays fast

    settings = settings_from_args(args)
    log = structlog.get_logger("dockyard.operator")
    try:
        kube = await KubeClient.connect(kubeconfig=args.kubeconfig, context=args.context)
    except kube_errors.KubeError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    operator = Operator(kube=kube, settings=settings)
    lost = False
    traced = tracing.enable_from_environment()
    try:
        log.info("starting", version=__version__, server=kube.server, identity=operator.identity, tracing=traced)
        try:
            await operator.run(stop)
        except* kube_errors.LeadershipLostError:
            lost = True
    finally:
        await kube.close()
        # Sends the spans still batched (a blocking flush bounded by the exporter's timeout, once at exit).
        tracing.disable()
    if lost:
        log.error("lost leadership; exiting so a fresh start rebuilds state")
        return 1
    log.info("stopped")
    return 0


async def _host_join(args: argparse.Namespace) -> int:
    try:
        kube = await KubeClient.connect(kubeconfig=args.kubeconfig, context=args.context)
    except kube_errors.KubeError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return 1
    try:
        host = await kube.get(DOCKERHOSTS, args.name)
        if (host.get("spec") or {}).get("url"):
            print(
                f"dockyard: error: DockerHost {args.name} is reached directly at its url; it needs no agent",
                file=sys.stderr,
            )
            return 1
        secret = await kube.get(SECRETS, token_secret_name(args.name), namespace=args.operator_namespace)
        info = await kube.get(CONFIGMAPS, "dockyard-tunnel", namespace=args.operator_namespace)
    except kube_errors.NotFoundError as exc:
        print(
            f"dockyard: error: {exc.message} (is the operator running, and is the DockerHost created?)", file=sys.stderr
        )
        return 1
    except kube_errors.KubeError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return 1
    finally:
        await kube.close()
    token = base64.b64decode((secret.get("data") or {}).get(TOKEN_KEY, ""))
    path = Path(args.token_file)
    _write_private(path, token + b"\n")
    data = info.get("data") or {}
    pin = data.get("caCertHash") or ""
    trust = f"--ca-cert-hash {pin}" if pin else "--ca-file /etc/dockyard/ca.crt"
    print(f"# Token written to {path} (mode 0600). Copy it to the Docker host as /etc/dockyard/agent.token.")
    if args.arch:
        print("\n".join(agent_install.install_lines(args.arch)))
    print("# Then run (or put these settings in /etc/dockyard/agent.env for the systemd unit):")
    print(
        f"dockyard-agent --server {data.get('url', 'wss://OPERATOR:8443')} --host-name {args.name} "
        f"--token-file /etc/dockyard/agent.token {trust}"
    )
    return 0


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 (O_EXCL: never through someone's symlink) and write `data`."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


async def _rollout(args: argparse.Namespace) -> int:
    from dockyard_operator import rollouts  # imported late: `dockyard --help` stays fast

    try:
        name = rollouts.parse_target(args.target)
    except rollouts.RolloutError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        kube = await KubeClient.connect(kubeconfig=args.kubeconfig, context=args.context)
    except kube_errors.KubeError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return 1
    try:
        verb = args.rollout_command
        if verb == "status":
            await rollouts.status(kube, args.namespace, name, timeout=args.timeout)
        elif verb == "history":
            await rollouts.history(kube, args.namespace, name, revision=args.revision)
        elif verb == "undo":
            await rollouts.undo(kube, args.namespace, name, to_revision=args.to_revision)
        elif verb == "restart":
            await rollouts.restart(kube, args.namespace, name)
        else:
            await rollouts.pause(kube, args.namespace, name, paused=verb == "pause")
    except rollouts.RolloutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"error: timed out waiting for the rollout of {args.target}", file=sys.stderr)
        return 1
    except kube_errors.NotFoundError:
        print(f'Error from server (NotFound): dockerdeployments.dockyard.dev "{name}" not found', file=sys.stderr)
        return 1
    except kube_errors.KubeError as exc:
        print(f"dockyard: error: {exc}", file=sys.stderr)
        return 1
    finally:
        await kube.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is the command of `exec`, flags included (as kubectl exec).
    after: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, after = argv[:split], argv[split + 1 :]
    args = parser.parse_args(argv)
    if after and args.command != "exec":
        parser.error(f"unexpected arguments after --: {' '.join(after)}")
    if args.command == "operator":
        configure_json_logs(level=args.log_level, extra_processors=[tracing.add_trace_ids])
        raise_open_files_limit()  # a socket per DockerService connection
        return asyncio.run(_run_operator(args))
    if args.command == "host" and args.host_command == "join":
        return asyncio.run(_host_join(args))
    if args.command == "rollout" and args.rollout_command:
        return asyncio.run(_rollout(args))
    if args.command == "status":
        return asyncio.run(_status(args))
    if args.command in ("logs", "exec", "port-forward", "top"):
        if args.command == "exec":
            args.command_args = [*args.argv, *after]
        try:
            return asyncio.run(_access(args))
        except KeyboardInterrupt:
            return 130
    parser.print_help(sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
