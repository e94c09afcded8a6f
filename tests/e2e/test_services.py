"""DockerService end to end: two tunnel DockerHosts with real agents on the real dockerd, the operator as a process,
its Service and EndpointSlice on the real API server, and HTTP through the data plane's listeners.

The EndpointSlice's address and ports are what kube-proxy would forward a ClusterIP's traffic to; the tests
connect there (this environment runs no kube-proxy), so the path tested is the one a Pod's connection takes after
kube-proxy: data-plane listener -> mux stream -> agent -> container.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiodocker
import pytest
from dockyard_e2e import (
    SESSION,
    Agent,
    condition,
    eventually,
    join_tunnel_host,
    kubectl,
    leave_tunnel_host,
    wait_connected,
)

from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.errors import NotFoundError
from dockyard_operator.kube.resources import DOCKERCONTAINERS, DOCKERSERVICES, ENDPOINTSLICES, SERVICES

pytestmark = [pytest.mark.kube, pytest.mark.docker]

SITE = {"site": f"svc-{SESSION}"}
#: Two web servers (8080 named http, 8081), answering with the container's name; healthy while /www/healthy exists;
#: an upload sink on 9000 that answers with the sha256 of what it received (after the client's half-close).
SERVE = (
    "mkdir -p /www && echo $NAME > /www/index.html && touch /www/healthy && "
    "httpd -p 8081 -h /www && nc -ll -p 9000 -e sha256sum & exec httpd -f -p 8080 -h /www"
)


@pytest.fixture(scope="module")
def edges(devenv: Any, operator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    """Two tunnel DockerHosts, each with its own agent process."""
    workdir = tmp_path_factory.mktemp("services")
    agents = {}
    try:
        for i in (1, 2):
            name = f"svc{i}-{SESSION}"
            agents[name] = join_tunnel_host(devenv, operator, name, SITE, workdir)
        wait_connected(devenv, list(agents))
        yield agents
    finally:
        for name, agent in agents.items():
            leave_tunnel_host(devenv, name, agent)


def apply(devenv: Any, manifest: dict[str, Any]) -> None:
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))


def web(name: str, namespace: str, host: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerContainer",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {
            "image": "dockyard-test/busybox:1",
            "imagePullPolicy": "Never",
            "command": ["sh", "-c", SERVE],
            "env": [{"name": "NAME", "value": name}],
            "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 8081}],
            "healthCheck": {
                "shell": {"command": "test -f /www/healthy"},
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
                "retries": 1,
            },
            "hostRef": {"name": host},
            "stopGracePeriodSeconds": 1,
        },
    }


def service(name: str, namespace: str, app: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "alt", "port": 81, "targetPort": 8081},
                {"name": "sink", "port": 9000},
            ],
            **spec,
        },
    }


async def endpoint(kube: KubeClient, namespace: str, name: str) -> tuple[str, dict[str, int]]:
    """The EndpointSlice's address and its ports by name, once it is ready."""

    async def check() -> tuple[str, dict[str, int]] | None:
        try:
            es = await kube.get(ENDPOINTSLICES, f"{name}-dockyard", namespace=namespace)
        except NotFoundError:
            return None
        (ep,) = es["endpoints"]
        if not ep["conditions"].get("ready"):
            return None
        return ep["addresses"][0], {p["name"]: p["port"] for p in es["ports"]}

    return await eventually(check, timeout=60, what=f"EndpointSlice of {name} ready")


async def http_get(address: str, port: int, path: str = "/index.html", timeout: float = 5) -> str:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(address, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    return body.decode().strip()


async def run_in(container: Any, cmd: list[str]) -> str:
    """Run `cmd` in a Docker container and return its output."""
    exec_ = await container.exec(cmd)
    text = b""
    async with exec_.start(detach=False) as stream:
        while (msg := await stream.read_out()) is not None:
            text += msg.data
    return text.decode()


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def backends(devenv: Any, namespace: str, edges: dict[str, Agent]) -> Iterator[dict[str, str]]:
    """One web container on each host behind one DockerService: {container name: host}."""
    app = f"web-{uuid.uuid4().hex[:4]}"
    placed = {f"{app}-{i}": host for i, host in enumerate(edges, 1)}
    for name, host in placed.items():
        apply(devenv, web(name, namespace, host, app))
    apply(devenv, service(app, namespace, app))
    kubectl(devenv, "wait", "--for=condition=Ready", f"dockerservice/{app}", "-n", namespace, "--timeout=90s")
    yield placed
    kubectl(devenv, "delete", "dockerservice", app, "-n", namespace, "--timeout=60s", check=False)
    for name in placed:
        kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--timeout=60s", check=False)


def service_name(backends: dict[str, str]) -> str:
    return next(iter(backends)).rsplit("-", 1)[0]


async def wait_all_ready(kube: KubeClient, namespace: str, name: str, ready: int) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(DOCKERSERVICES, name, namespace=namespace)
        return obj if (obj.get("status") or {}).get("readyEndpoints") == ready else None

    return await eventually(check, timeout=60, what=f"{name} with {ready} ready endpoints")


async def test_the_service_spreads_over_both_hosts_on_every_port(
    devenv: Any, kube: KubeClient, namespace: str, backends: dict[str, str]
) -> None:
    name = service_name(backends)
    obj = await wait_all_ready(kube, namespace, name, 2)
    status = obj["status"]
    assert (status["ready"], status["ports"]) == ("2/2", "80/TCP,81/TCP,9000/TCP")
    assert {e["container"]: e["host"] for e in status["endpoints"]} == backends
    svc = await kube.get(SERVICES, name, namespace=namespace)
    assert svc["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    assert "selector" not in svc["spec"], "the endpoints are the data plane's, not Pods"
    assert status["clusterIP"] == svc["spec"]["clusterIP"]
    address, ports = await endpoint(kube, namespace, name)
    assert address == devenv.bridge_gateway
    assert set(ports) == {"http", "alt", "sink"}

    answers = await asyncio.gather(*(http_get(address, ports["http"]) for _ in range(30)))
    assert set(answers) == set(backends), "targetPort by name, spread over both hosts"
    alt = await asyncio.gather(*(http_get(address, ports["alt"]) for _ in range(30)))
    assert set(alt) == set(backends), "the second port, targetPort by number"
    table = kubectl(devenv, "get", "dsvc", name, "-n", namespace).stdout
    assert "2/2" in table, table
    assert status["clusterIP"] in table, table


async def test_an_unhealthy_backend_gets_no_new_connections_and_comes_back(
    devenv: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, backends: dict[str, str]
) -> None:
    name = service_name(backends)
    await wait_all_ready(kube, namespace, name, 2)
    address, ports = await endpoint(kube, namespace, name)
    sick = sorted(backends)[0]
    container = await docker.containers.get(await _container_id(kube, namespace, sick))
    await run_in(container, ["rm", "/www/healthy"])

    async def unhealthy() -> float | None:
        shown = await container.show()
        return time.monotonic() if shown["State"]["Health"]["Status"] == "unhealthy" else None

    # Requests every 50 ms from now on; the last one that reaches `sick` must be at most 2 s after Docker said so.
    hits: list[tuple[float, str]] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            hits.append((time.monotonic(), await http_get(address, ports["http"])))
            await asyncio.sleep(0.05)

    loader = asyncio.create_task(load())
    try:
        since = await eventually(unhealthy, timeout=15, what=f"{sick} unhealthy in Docker")
        await asyncio.sleep(3)
    finally:
        stop.set()
        await loader
    last_sick = max((t for t, who in hits if who == sick), default=0.0)
    assert last_sick - since <= 2.0, f"{sick} still got new connections {last_sick - since:.2f} s after unhealthy"
    after = [who for t, who in hits if t > since + 2.0]
    assert after, "requests went on"
    assert sick not in after
    obj = await wait_all_ready(kube, namespace, name, 1)
    assert condition(obj, "Ready")["status"] == "True"

    await run_in(container, ["touch", "/www/healthy"])
    await wait_all_ready(kube, namespace, name, 2)

    async def back() -> bool | None:
        answers = await asyncio.gather(*(http_get(address, ports["http"]) for _ in range(10)))
        return True if sick in answers else None

    await eventually(back, timeout=10, what=f"{sick} serving again")


async def _container_id(kube: KubeClient, namespace: str, name: str) -> str:
    return str((await kube.get(DOCKERCONTAINERS, name, namespace=namespace))["status"]["containerID"])


async def test_a_big_upload_and_download_keep_their_bytes_and_memory_stays_bounded(
    devenv: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, operator: Any, backends: dict[str, str]
) -> None:
    name = service_name(backends)
    await wait_all_ready(kube, namespace, name, 2)
    address, ports = await endpoint(kube, namespace, name)
    size = 256 * 1024 * 1024
    before = rss(operator.proc.pid)
    peak = before

    # Upload: 256 MiB in, half-close, the container's sha256sum of what arrived comes back.
    payload = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    reader, writer = await asyncio.open_connection(address, ports["sink"])
    for _ in range(size // len(payload)):
        writer.write(payload)
        digest.update(payload)
        await writer.drain()
        peak = max(peak, rss(operator.proc.pid))
    writer.write_eof()
    async with asyncio.timeout(60):
        answer = (await reader.read()).decode().split()[0]
    writer.close()
    assert answer == digest.hexdigest(), "the upload arrived intact, and the half-close reached the container"

    # Download: 256 MiB made in each container, fetched back through the service from whichever it picks.
    expected = {}
    for c in backends:
        container = await docker.containers.get(await _container_id(kube, namespace, c))
        made = await run_in(container, ["sh", "-c", f"head -c {size} /dev/urandom > /www/big && sha256sum /www/big"])
        expected[made.split()[0]] = c
    reader, writer = await asyncio.open_connection(address, ports["http"])
    writer.write(b"GET /big HTTP/1.0\r\n\r\n")
    await writer.drain()
    got = hashlib.sha256()
    head = b""
    while b"\r\n\r\n" not in head:
        head += await reader.read(65536)
    head, _, rest = head.partition(b"\r\n\r\n")
    got.update(rest)
    received = len(rest)
    while chunk := await reader.read(1024 * 1024):
        got.update(chunk)
        received += len(chunk)
        peak = max(peak, rss(operator.proc.pid))
    writer.close()
    assert received == size
    assert got.hexdigest() in expected, "the download kept every byte"
    assert peak - before < 96 * 1024 * 1024, f"the operator grew {(peak - before) >> 20} MiB moving 512 MiB"

    # A client that stops reading: the container is held back, the operator does not buffer the file.
    reader, writer = await asyncio.open_connection(address, ports["http"])
    writer.write(b"GET /big HTTP/1.0\r\n\r\n")
    await writer.drain()
    start = rss(operator.proc.pid)
    await asyncio.sleep(3)
    grown = rss(operator.proc.pid) - start
    writer.close()
    assert grown < 48 * 1024 * 1024, f"a stalled client grew the operator by {grown >> 20} MiB"


async def test_killing_one_agent_sends_everything_to_the_other_host(
    devenv: Any, kube: KubeClient, namespace: str, edges: dict[str, Agent], backends: dict[str, str]
) -> None:
    name = service_name(backends)
    await wait_all_ready(kube, namespace, name, 2)
    address, ports = await endpoint(kube, namespace, name)
    victim_container, victim_host = sorted(backends.items())[1]
    agent = edges[victim_host]
    agent.kill()
    killed = time.monotonic()
    results: list[tuple[float, str | BaseException]] = []
    while time.monotonic() - killed < 4:
        try:
            results.append((time.monotonic(), await http_get(address, ports["http"], timeout=3)))
        except (OSError, AssertionError, TimeoutError) as exc:
            results.append((time.monotonic(), exc))
        await asyncio.sleep(0.02)
    late = [r for t, r in results if t - killed > 1.0]
    assert late, "requests were made"
    failed = [r for r in late if not isinstance(r, str)]
    assert not failed, f"{len(failed)} of {len(late)} requests failed after the first second: {failed[:3]}"
    assert {r for r in late} == {c for c in backends if c != victim_container}
    agent.start()
    wait_connected(devenv, [victim_host])
    await wait_all_ready(kube, namespace, name, 2)


async def test_bad_services_are_refused_or_reported(
    devenv: Any, kube: KubeClient, namespace: str, backends: dict[str, str]
) -> None:
    udp = service("udp", namespace, "x", ports=[{"port": 53, "protocol": "UDP"}])
    result = kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(udp), check=False)
    assert result.returncode != 0
    assert "only TCP for now" in result.stderr, result.stderr

    # A Service of that name that is not ours is left alone and said so.
    taken = f"taken-{uuid.uuid4().hex[:4]}"
    apply(devenv, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": taken, "namespace": namespace},
        "spec": {"ports": [{"port": 1234}]},
    })  # fmt: skip
    apply(devenv, service(taken, namespace, "x", ports=[{"port": 80}]))

    async def conflict() -> dict[str, Any] | None:
        obj = await kube.get(DOCKERSERVICES, taken, namespace=namespace)
        return obj if condition(obj, "ServiceCreated").get("reason") == "NameConflict" else None

    await eventually(conflict, timeout=30, what="ServiceCreated=False NameConflict")
    svc = await kube.get(SERVICES, taken, namespace=namespace)
    assert svc["spec"]["ports"][0]["port"] == 1234
    assert not svc["metadata"].get("ownerReferences")
    kubectl(devenv, "delete", "dockerservice", taken, "-n", namespace, "--timeout=60s")
    kubectl(devenv, "delete", "service", taken, "-n", namespace, "--timeout=60s")


async def test_containers_reach_services_by_alias_through_the_tunnel(
    devenv: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, edges: dict[str, Agent]
) -> None:
    """The way back: a container on one host reaches a DockerService whose container runs on the other host, and a
    Kubernetes-side server behind a selector-less Service, by their aliases; an import of a Service in a namespace
    that does not allow it is refused with a condition."""
    near, far = sorted(edges)
    tag = uuid.uuid4().hex[:4]
    far_app, kside, port, kport = f"far-{tag}", f"kside-{tag}", 20000 + int(tag, 16) % 5000, 25000 + int(tag, 16) % 5000

    # A server on the Kubernetes side: a process on this machine behind a Service and an EndpointSlice.
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 16\r\n\r\nfrom-kubernetes\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, devenv.bridge_gateway, 0)
    server_port = server.sockets[0].getsockname()[1]
    apply(devenv, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": kside, "namespace": namespace},
        "spec": {"ports": [{"name": "web", "port": kport}]},
    })  # fmt: skip
    apply(devenv, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": kside, "namespace": namespace, "labels": {"kubernetes.io/service-name": kside}},
        "addressType": "IPv4", "endpoints": [{"addresses": [devenv.bridge_gateway]}],
        "ports": [{"name": "web", "port": server_port}],
    })  # fmt: skip
    apply(devenv, web(f"{far_app}-web", namespace, far, far_app))
    apply(devenv, service(far_app, namespace, far_app, ports=[{"port": port, "targetPort": 8080}]))
    client: dict[str, Any] = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerContainer",
        "metadata": {"name": f"client-{tag}", "namespace": namespace},
        "spec": {
            "image": "dockyard-test/busybox:1",
            "imagePullPolicy": "Never",
            "command": ["sleep", "3600"],
            "serviceImports": [
                {"service": far_app, "port": port},
                {"service": kside, "port": kport, "alias": "db.internal"},
            ],
            "hostRef": {"name": near},
            "stopGracePeriodSeconds": 1,
        },
    }
    refused = {
        **client,
        "metadata": {"name": f"refused-{tag}", "namespace": namespace},
        "spec": {**client["spec"], "serviceImports": [{"service": "kubernetes", "namespace": "default", "port": 443}]},
    }
    try:
        apply(devenv, client)
        apply(devenv, refused)
        kubectl(devenv, "wait", "--for=condition=Ready", f"dockerservice/{far_app}", "-n", namespace, "--timeout=90s")
        kubectl(devenv, "wait", "--for=condition=ServiceImports", f"dockercontainer/client-{tag}", "-n", namespace,
                "--timeout=90s")  # fmt: skip
        container = await docker.containers.get(await _container_id(kube, namespace, f"client-{tag}"))
        hosts_file = await run_in(container, ["cat", "/etc/hosts"])
        assert f"{far_app}.{namespace}" in hosts_file, hosts_file
        assert "db.internal" in hosts_file, hosts_file

        async def fetch(url: str) -> str | None:
            out = await run_in(container, ["timeout", "5", "wget", "-q", "-O-", url])  # (-T crashes busybox 1.35 wget)
            return out.strip() or None

        got = await eventually(
            lambda: fetch(f"http://{far_app}.{namespace}:{port}/index.html"), timeout=30, what="the far DockerService"
        )
        assert got == f"{far_app}-web", "container on one host -> its agent -> operator -> the other host's container"
        got = await eventually(lambda: fetch(f"http://db.internal:{kport}/"), timeout=30, what="the Kubernetes side")
        assert got == "from-kubernetes"

        async def not_allowed() -> dict[str, Any] | None:
            obj = await kube.get(DOCKERCONTAINERS, f"refused-{tag}", namespace=namespace)
            return obj if condition(obj, "ServiceImports").get("reason") == "NotAllowed" else None

        # The listener is on the gateway, reachable from every container there; only importers get through.
        other = await docker.containers.get(await _container_id(kube, namespace, f"refused-{tag}"))
        gateway = hosts_file.split(f"{far_app}.{namespace}")[0].split()[-1]
        stolen = await run_in(other, ["timeout", "5", "wget", "-q", "-O-", f"http://{gateway}:{port}/index.html"])
        assert f"{far_app}-web" not in stolen, "a container that does not import the Service is refused"
        assert "reset by peer" in stolen or not stolen.strip(), stolen

        obj = await eventually(not_allowed, timeout=60, what="ServiceImports=False NotAllowed")
        assert "dockyard.dev/allow-imports-from" in condition(obj, "ServiceImports")["message"]
    finally:
        server.close()
        for kind, name in (
            ("dockercontainer", f"client-{tag}"), ("dockercontainer", f"refused-{tag}"), ("dockerservice", far_app),
            ("dockercontainer", f"{far_app}-web"), ("endpointslice", kside), ("service", kside),
        ):  # fmt: skip
            kubectl(devenv, "delete", kind, name, "-n", namespace, "--timeout=60s", "--ignore-not-found", check=False)
