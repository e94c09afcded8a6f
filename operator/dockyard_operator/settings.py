"""The operator's configuration: frozen dataclasses, one per concern, every default explained.

`dockyard operator` fills these from flags and environment variables (cli.py); tests build them directly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dockyard_operator.informer.informing import WatchSettings
from dockyard_operator.kube.electing import LeaderElectionSettings


@dataclasses.dataclass(frozen=True)
class ReconcileSettings:
    workers: int = 4
    """Concurrent reconciles. A key is never reconciled by two workers at once, so this only bounds how many
    different containers are worked on in parallel (Docker calls are I/O-bound; 4 keeps a 2-core box calm)."""

    resync_period: float = 300.0
    """Every managed container is re-checked this often even without any event: the level-triggered safety net
    for missed Docker events (the daemon replays only 256 after a reconnect). Costs one inspect per container."""

    docker_call_timeout: float = 30.0
    """Upper bound for one Docker API call (pulls and stops have their own, longer bounds)."""

    pull_timeout: float = 600.0
    """Upper bound for one image pull."""

    unhealthy_restart_backoff: tuple[float, float] = (10.0, 300.0)
    """Restart-on-unhealthy backoff: first delay and cap (seconds), doubling per consecutive restart, as the
    kubelet's CrashLoopBackOff does; Docker itself never restarts an unhealthy container."""

    failure_backoff: tuple[float, float] = (10.0, 300.0)
    """Back-off after a failed image pull, create or start, and between our own restarts of a container that
    keeps exiting: first delay and cap (seconds), doubling per failure — the kubelet's ImagePullBackOff and
    CrashLoopBackOff numbers."""

    host_drain_timeout: float = 300.0
    """How long a deleted DockerHost waits for its DockerContainers to leave it (each removes its container
    while the host is reachable, or releases at once when it is not) before it goes anyway, with a Warning."""

    deletion_host_timeout: float = 600.0
    """How long deletion waits for an unreachable host before giving up on the container and removing the
    finalizer anyway (the container is orphaned and reported in an Event). `dockyard.dev/orphan: "true"` on the
    object skips the wait."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.resync_period <= 0 or self.docker_call_timeout <= 0 or self.pull_timeout <= 0:
            raise ValueError("periods and timeouts must be positive")


@dataclasses.dataclass(frozen=True)
class HostSettings:
    heartbeat_interval: float = 10.0
    """Direct (non-tunnel) hosts are pinged this often; tunnel hosts are watched by the mux keepalive."""

    agent_connect_grace: float = 30.0
    """After the operator (re)starts, a tunnel host's agent gets this long to reconnect before the host and its
    containers are reported unreachable; agents retry with backoff capped at 30 s."""

    events_resubscribe_delay: float = 1.0
    """Pause before re-subscribing to a host's Docker events after the stream ended while the host is up."""

    events_resubscribe_max: float = 60.0
    """Cap on that pause when streams keep failing at once (it doubles per failure); every re-subscription
    re-checks all of the host's containers, so a broken events endpoint must not cause one per second."""

    events_healthy_after: float = 10.0
    """An events stream that lived this long (or delivered an event) resets the pause to its first value."""


@dataclasses.dataclass(frozen=True)
class TunnelSettings:
    enabled: bool = True
    """Serve the agent tunnel inside the operator process."""

    listen_host: str = "0.0.0.0"  # noqa: S104 — agents connect from other machines; TLS + tokens protect it
    """Address the tunnel server binds."""

    listen_port: int = 8443
    """Port the tunnel server binds."""

    public_url: str = ""
    """wss:// URL agents dial, printed by `dockyard host join`; defaults to the listen address."""

    tls_dir: Path | None = None
    """Scratch directory for the self-signed CA and serving certificate (default: a private temp dir). The
    material itself is kept in the Secret dockyard-tunnel-tls so the CA agents pin survives restarts."""

    cert_file: Path | None = None
    """A serving certificate from your own PKI (then agents use --ca-file, and no CA is minted)."""

    key_file: Path | None = None
    """The key of cert_file."""

    insecure: bool = False
    """Serve plain ws:// (development only; logs a warning)."""


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    address: str = ""
    """The IP the data plane listens on and the EndpointSlices of DockerServices point at. Empty: $POD_IP (the
    Pod's IP, from the downward API); without either, DockerServices report NoDataPlaneAddress and nothing
    listens. Never a loopback address: the API server refuses those in an EndpointSlice."""

    dial_timeout: float = 5.0
    """Seconds for a host's agent to connect to a container before the connection tries another backend."""


@dataclasses.dataclass(frozen=True)
class StatsSettings:
    interval: float = 30.0
    """Seconds between two requests for a host's container stats (one request per host, answered by its agent
    from one-shot Docker stats of each managed container). Prometheus' rate() needs two samples inside its
    window: 30 s suits the usual 1-minute windows and a 15-30 s scrape; 0 turns collection off."""

    timeout: float = 20.0
    """Seconds a host gets to answer; past that it has no figures until it answers again (a gap, not stale
    numbers). dockerd answers stats once a second; an agent asks for 100 containers at a time, so 200 take 2-3 s."""

    def __post_init__(self) -> None:
        if self.interval < 0 or self.timeout <= 0:
            raise ValueError("the stats interval must be >= 0 (0: off) and its timeout positive")


@dataclasses.dataclass(frozen=True)
class AccessSettings:
    listen_host: str = ""
    """Address the access API (`subresources.dockyard.dev`: logs, exec, port-forward, stats) binds. Empty: not
    served. The Deployment sets $POD_IP; kube-apiserver reaches it through the APIService's Service."""

    listen_port: int = 8444
    """Port of the access API (the Service `dockyard-access` targets it)."""

    tls_dir: Path | None = None
    """Directory for the access API's self-signed CA and serving certificate (default: a private temp dir).
    The APIService carries that CA as its caBundle; the leader writes it there when it starts serving."""

    server_names: tuple[str, ...] = ("dockyard-access.dockyard-system.svc", "localhost", "127.0.0.1")
    """Names in the serving certificate: the aggregator verifies the Service's DNS name."""

    @property
    def enabled(self) -> bool:
        return bool(self.listen_host)


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces whose DockerContainers are watched; empty means all namespaces."""

    operator_class: str = "dockyard"
    """The class this operator serves: DockerHosts with this spec.operatorClass, and DockerContainers in namespaces
    labelled dockyard.dev/operator-class with it (unlabelled namespaces and hosts are class dockyard)."""

    operator_namespace: str = "dockyard-system"
    """Where the leader-election Lease and the per-host token Secrets live."""

    identity: str = ""
    """This replica's name in the Lease (default: hostname + pid)."""

    leader_election: bool = True
    """Run leader election; off only for single-replica development."""

    pod_name: str = ""
    """This replica's Pod (env DOCKYARD_POD_NAME from the downward API), set when running as Pods. The leader then
    labels its Pod dockyard.dev/leader=true, which the tunnel Service selects, and a replica waiting for the Lease
    counts as ready (so rolling updates of the operator proceed). Empty outside a cluster: /readyz then means
    "leading and synced"."""

    metrics_address: str = "127.0.0.1:8080"
    """host:port for /healthz, /readyz and /metrics."""

    watch: WatchSettings = dataclasses.field(default_factory=WatchSettings)
    election: LeaderElectionSettings = dataclasses.field(default_factory=LeaderElectionSettings)
    reconcile: ReconcileSettings = dataclasses.field(default_factory=ReconcileSettings)
    hosts: HostSettings = dataclasses.field(default_factory=HostSettings)
    tunnel: TunnelSettings = dataclasses.field(default_factory=TunnelSettings)
    services: ServiceSettings = dataclasses.field(default_factory=ServiceSettings)
    stats: StatsSettings = dataclasses.field(default_factory=StatsSettings)
    access: AccessSettings = dataclasses.field(default_factory=AccessSettings)
