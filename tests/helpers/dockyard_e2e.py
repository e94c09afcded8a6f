"""Helpers for end-to-end tests (importable: tests/helpers is on pytest's pythonpath)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import DOCKERCONTAINERS, DOCKERHOSTS, Resource

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "dockyard-system"


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

    def __init__(self, devenv: Any, workdir: Path, namespace: str, kubeconfig: Path, operator_namespace: str) -> None:
        self.devenv = devenv
        self.operator_namespace = operator_namespace
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.workdir = workdir
        self.metrics_port = _free_port()
        self.tunnel_port = _free_port()
        self.log = workdir / "operator.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, ready_timeout: float = 60, keep_if_not_ready: bool = False) -> None:
        cmd = [
            sys.executable, "-m", "dockyard_operator", "operator",
            "--kubeconfig", str(self.kubeconfig),
            "--operator-namespace", self.operator_namespace,
            # Only this session's namespace: other test sessions' objects are not ours to touch.
            "--namespace", self.namespace,
            "--metrics-address", f"127.0.0.1:{self.metrics_port}",
            "--tunnel-address", f"127.0.0.1:{self.tunnel_port}",
            "--tunnel-tls-dir", str(self.workdir / "tunnel-tls"),
            "--resync-period", "30",
            "--identity", f"e2e-{uuid.uuid4().hex[:6]}",
            "--log-level", "debug",
        ]  # fmt: skip
        out = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.devenv.env, cwd=ROOT)
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
