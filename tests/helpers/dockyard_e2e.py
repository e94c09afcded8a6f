"""Helpers for end-to-end tests (importable: tests/helpers is on pytest's pythonpath)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import DOCKERCONTAINERS, DOCKERHOSTS, Resource

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "dockyard-system"

#: This test session's identity. Everything the session creates in the API server carries SESSION_LABEL (or the
#: session id in its name), so the session-end check can tell its leftovers from a demo's or another session's.
SESSION = os.environ.get("DOCKYARD_TEST_SESSION") or uuid.uuid4().hex[:6]
#: A container that idles until told to stop (PID 1 in a shell ignores SIGTERM without the trap: 10 s stops).
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
SESSION_LABEL = "dockyard.dev/test-session"
#: The operator class of this session's operators: a running demo (class dockyard) never sees the session's hosts
#: and namespaces, and the session's operators never see the demo's.
E2E_CLASS = f"e2e-{SESSION}"
#: A class no operator serves: objects the API server validates and nobody reconciles.
INERT_CLASS = f"inert-{SESSION}"
CLASS_LABEL = "dockyard.dev/operator-class"


def session_labels(**extra: str) -> dict[str, str]:
    return {SESSION_LABEL: SESSION, **extra}


def host_manifest(
    name: str, spec: dict[str, Any], *, labels: dict[str, str] | None = None, operator_class: str = E2E_CLASS
) -> dict[str, Any]:
    """A DockerHost of this session (its class, its label)."""
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerHost",
        "metadata": {"name": name, "labels": session_labels(**(labels or {}))},
        "spec": {"operatorClass": operator_class, **spec},
    }


def create_namespace(devenv: Any, name: str, *, operator_class: str = E2E_CLASS) -> str:
    """A namespace of this session, served by `operator_class`."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": session_labels(**{CLASS_LABEL: operator_class})},
    }
    kubectl(devenv, "create", "-f", "-", stdin=json.dumps(manifest))
    return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubectl(devenv: Any, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(devenv.kubectl), *args],
        env=devenv.env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        check=False,
    )
    if check and res.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {res.stderr}")
    return res


@dataclass(frozen=True)
class Kubectl:
    """The pinned kubectl against the dev environment's API server."""

    binary: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
        return result

    def create(self, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("create", "-o", "json", "-f", "-", stdin=json.dumps(obj), check=False)


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 30, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = await check()
        except AssertionError as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


async def get_dc(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    return await kube.get(DOCKERCONTAINERS, name, namespace=namespace)


async def get_host(kube: KubeClient, name: str) -> dict[str, Any]:
    return await kube.get(DOCKERHOSTS, name)


async def events_for(kube: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    events = Resource("events.k8s.io", "v1", "events")
    items = (await kube.request("GET", events.path(namespace=namespace)))["items"]
    return [e for e in items if (e.get("regarding") or {}).get("name") == name]


def container_manifest(name: str, namespace: str, host: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerContainer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hostRef": {"name": host}, **spec},
    }


def apply(devenv: Any, manifest: dict[str, Any]) -> None:
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))


class OperatorProcess:
    """The operator under test, restartable and killable like a real deployment."""

    def __init__(
        self,
        devenv: Any,
        workdir: Path,
        namespace: str,
        kubeconfig: Path,
        operator_namespace: str,
        *,
        operator_class: str = E2E_CLASS,
        extra_args: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.devenv = devenv
        self.extra_args = extra_args
        self.extra_env = extra_env or {}
        self.operator_class = operator_class
        self.operator_namespace = operator_namespace
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.workdir = workdir
        self.metrics_port = _free_port()
        self.tunnel_port = _free_port()
        self.access_port = _free_port()
        self.log = workdir / "operator.log"
        self.identity = f"e2e-{uuid.uuid4().hex[:6]}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, ready_timeout: float = 60, keep_if_not_ready: bool = False) -> None:
        self.identity = f"e2e-{uuid.uuid4().hex[:6]}"  # a new replica each start, as a restarted Pod would be
        cmd = [
            sys.executable, "-m", "dockyard_operator", "operator",
            "--kubeconfig", str(self.kubeconfig),
            "--operator-namespace", self.operator_namespace,
            "--operator-class", self.operator_class,
            # Only this session's namespace: other test sessions' objects are not ours to touch.
            "--namespace", self.namespace,
            "--metrics-address", f"127.0.0.1:{self.metrics_port}",
            "--tunnel-address", f"127.0.0.1:{self.tunnel_port}",
            "--tunnel-tls-dir", str(self.workdir / "tunnel-tls"),
            "--service-address", self.devenv.bridge_gateway,
            "--access-address", f"{self.devenv.bridge_gateway}:{self.access_port}",
            "--access-tls-dir", str(self.workdir / "access-tls"),
            "--resync-period", "30",
            # Container stats every 2 s, not 30: tests read /metrics within seconds of a change.
            "--container-stats-interval", "2",
            "--identity", self.identity,
            "--log-level", "debug",
            *self.extra_args,
        ]  # fmt: skip
        out = self.log.open("ab")
        env = {**self.devenv.env, **self.extra_env}
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        out.close()
        try:
            self.wait_ready(timeout=ready_timeout)
        except BaseException:
            if not keep_if_not_ready:
                self.kill()  # never leave a half-started operator behind to interfere with later runs
            raise

    def wait_ready(self, *, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=1) as conn:
                    conn.sendall(b"GET /readyz HTTP/1.0\r\n\r\n")
                    if b" 200 " in conn.recv(200):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"operator never became ready:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ------------------------------------------------------------------------------------------------ agents


class Agent:
    """A real dockyard-agent process, started as `dockyard host join` prints it."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def join_tunnel_host(
    devenv: Any,
    operator: Any,
    name: str,
    labels: dict[str, str],
    workdir: Path,
    *,
    arch: str | None = None,
    command: Callable[[list[str], Path], list[str]] | None = None,
) -> Agent:
    """Create a tunnel DockerHost of the session, `dockyard host join` it, start its agent on the private dockerd
    (several hosts may share that daemon: each sees only its own containers).

    `arch` is passed as `host join --arch`; `command` turns the printed agent arguments (after `dockyard-agent`)
    and the token file into the argv to run (default: `python -m dockyard_tunnel.agent` on this machine)."""
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(host_manifest(name, {"tunnel": {}}, labels=labels)))
    workdir.mkdir(parents=True, exist_ok=True)
    token_file = workdir / f"{name}.token"

    def join() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dockyard_operator", "host", "join", name, "--token-file", str(token_file),
             "--kubeconfig", str(devenv.kubeconfig), "--operator-namespace", operator.operator_namespace,
             *(["--arch", arch] if arch else [])],
            capture_output=True, text=True, env=devenv.env, check=False, timeout=60,
        )  # fmt: skip

    deadline = time.monotonic() + 30
    res = join()
    while res.returncode != 0 and time.monotonic() < deadline:  # the token Secret appears within a reconcile
        time.sleep(0.2)
        res = join()
    assert res.returncode == 0, res.stderr
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    printed = next(line for line in res.stdout.splitlines() if line.startswith("dockyard-agent "))
    assert token not in res.stdout, "the join command must never contain the token"
    if arch:
        assert f"install -m 0755 dockyard-agent-linux-{arch} /usr/local/bin/dockyard-agent" in res.stdout, res.stdout
    args = shlex.split(printed)[1:]
    if command is None:
        args[args.index("--token-file") + 1] = str(token_file)
        argv = [sys.executable, "-m", "dockyard_tunnel.agent", *args, "--docker-socket", devenv.docker_host]
    else:
        argv = command(args, token_file)
    agent = Agent(argv, devenv.env, workdir / f"{name}.agent.log")
    agent.start()
    return agent


def wait_connected(devenv: Any, names: list[str], *, timeout: float = 60) -> None:
    """Wait until every named DockerHost reports Connected."""
    deadline = time.monotonic() + timeout
    for name in names:
        while time.monotonic() < deadline:
            host = json.loads(kubectl(devenv, "get", "dockerhost", name, "-o", "json").stdout)
            if (host.get("status") or {}).get("phase") == "Connected":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"{name} never connected")


def leave_tunnel_host(devenv: Any, name: str, agent: Agent) -> None:
    """Delete what runs on the host while its agent runs (a dead host would hold finalizers), then the host."""
    if agent.proc is None or agent.proc.poll() is not None:
        agent.start()
    objs = json.loads(kubectl(devenv, "get", "dockercontainers", "-A", "-o", "json").stdout)["items"]
    by_namespace: dict[str, list[str]] = {}
    for obj in objs:
        if name in ((obj["spec"].get("hostRef") or {}).get("name"), (obj.get("status") or {}).get("host")):
            by_namespace.setdefault(obj["metadata"]["namespace"], []).append(obj["metadata"]["name"])
    # One delete per namespace: the containers stop (each up to its grace period) at the same time.
    for namespace, names in by_namespace.items():
        kubectl(devenv, "delete", "dockercontainer", *names, "-n", namespace, "--timeout=60s", "--ignore-not-found")
    kubectl(devenv, "delete", "dockerhost", name, "--timeout=60s")
    agent.stop()


# ------------------------------------------------------------------------------------------ session-end check

#: Kinds whose new objects count as leftovers. Namespaced kinds are only checked in namespaces that existed before
#: the session (objects in the session's own namespaces go with them).
CLUSTER_KINDS = "namespaces,dockerhosts.dockyard.dev,clusterroles,clusterrolebindings,customresourcedefinitions"
NAMESPACED_KINDS = (
    "dockercontainers.dockyard.dev,dockerdeployments.dockyard.dev,dockerjobs.dockyard.dev,"
    "dockercronjobs.dockyard.dev,dockerservices.dockyard.dev,controllerrevisions.apps,configmaps,"
    "secrets,serviceaccounts,roles,rolebindings,services,endpointslices.discovery.k8s.io"
)


def _items(devenv: Any, kinds: str, *, all_namespaces: bool) -> list[dict[str, Any]]:
    """Objects of these kinds; a kind the server does not serve (our CRDs before they are installed) has none."""
    items: list[dict[str, Any]] = []
    for kind in kinds.split(","):
        res = kubectl(devenv, "get", kind, "-o", "json", *(["-A"] if all_namespaces else []), check=False)
        if res.returncode != 0:
            if "doesn't have a resource type" in res.stderr:
                continue
            raise AssertionError(f"kubectl get {kind} failed: {res.stderr}")
        items.extend(json.loads(res.stdout)["items"])
    return items


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']}/{where}{meta['name']}"


def _shape(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What a user reads from a Dockyard object's status; a change means someone acted on it."""
    status = obj.get("status") or {}
    conditions = sorted((c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or [])
    return (status.get("phase"), status.get("reason"), status.get("host"), status.get("containerID"), conditions)


def inventory(devenv: Any) -> dict[str, Any]:
    """What exists before the session: object keys, and the status of every Dockyard object (a demo's)."""
    cluster = _items(devenv, CLUSTER_KINDS, all_namespaces=False)
    namespaced = _items(devenv, NAMESPACED_KINDS, all_namespaces=True)
    dockyard = [
        o
        for o in cluster + namespaced
        if o["kind"]
        in ("DockerHost", "DockerContainer", "DockerDeployment", "DockerJob", "DockerCronJob", "DockerService")
    ]
    return {
        "keys": {_key(o) for o in cluster + namespaced},
        "uids": {o["metadata"]["uid"] for o in cluster + namespaced},
        "namespaces": {o["metadata"]["name"] for o in cluster if o["kind"] == "Namespace"},
        "dockyard": {_key(o): _shape(o) for o in dockyard},
    }


def _wait_for_terminating_namespaces(devenv: Any, timeout: float = 90.0) -> None:
    """Namespaces deleted with --wait=false finish in seconds (the namespace controller runs): give them time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = _items(devenv, "namespaces", all_namespaces=False)
        if not any(ns["metadata"].get("deletionTimestamp") for ns in items):
            return
        time.sleep(0.5)


def leftovers(devenv: Any, before: dict[str, Any]) -> list[str]:
    """What the session left behind, and what it changed of the objects that were there before it."""
    _wait_for_terminating_namespaces(devenv)
    problems = []
    now = _items(devenv, CLUSTER_KINDS, all_namespaces=False) + [
        o for o in _items(devenv, NAMESPACED_KINDS, all_namespaces=True)
        if o["metadata"]["namespace"] in before["namespaces"] and not o["metadata"]["namespace"].startswith("kube-")
    ]  # fmt: skip
    spawned = _spawned_by(now, set(before.get("uids", ())))
    for obj in now:
        key = _key(obj)
        meta = obj["metadata"]
        if meta["uid"] in spawned:
            continue  # made by a controller for an object that was there before (a demo CronJob's run)
        owner = (meta.get("labels") or {}).get(SESSION_LABEL)
        if key in before["keys"]:
            shape = before["dockyard"].get(key)
            if shape is not None and _shape(obj) != shape:
                problems.append(f"{key} was changed during the session: {shape} -> {_shape(obj)}")
            continue
        if owner is not None and owner != SESSION:
            continue  # another test session's, still running
        if obj["kind"] == "CustomResourceDefinition" and meta["name"].split(".", 1)[1] == "dockyard.dev":
            continue  # the environment's CRDs, shared with a demo
        if meta["name"].startswith("system:") or meta["name"] in ("kube-root-ca.crt", "default"):
            continue  # made by the control plane itself (bootstrap RBAC, the controller manager)
        if obj["kind"] == "Namespace" and meta.get("deletionTimestamp"):
            problems.append(f"{key} is still terminating")
            continue
        problems.append(f"{key} was left behind")
    return problems


def _spawned_by(objects: list[dict[str, Any]], owners: set[str]) -> set[str]:
    """UIDs of the objects owned, directly or through other such objects, by one of `owners`."""
    known, spawned = set(owners), set()
    grew = True
    while grew:
        grew = False
        for obj in objects:
            uid = obj["metadata"]["uid"]
            refs = {r.get("uid") for r in obj["metadata"].get("ownerReferences") or []}
            if uid not in known and refs & known:
                known.add(uid)
                spawned.add(uid)
                grew = True
    return spawned
