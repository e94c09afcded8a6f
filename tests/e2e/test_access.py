# The tests drive the CLI as processes, the way a user does, and wait on them; their event loop has nothing else to
# run meanwhile (the async fixtures only read the API server between those steps).
# ruff: noqa: ASYNC220, ASYNC221, ASYNC251
"""Day-2 access through kube-apiserver's aggregator: `dockyard logs|exec|port-forward|top` against the real API
server, operator process, agent and dockerd, with two users of different RBAC."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pty
import select
import signal
import ssl
import struct
import subprocess
import sys
import termios
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dockyard_e2e import (
    ROOT,
    SESSION,
    SLEEPER,
    Agent,
    apply,
    condition,
    container_manifest,
    eventually,
    get_dc,
    join_tunnel_host,
    kubectl,
    leave_tunnel_host,
    session_labels,
    wait_connected,
)

from dockyard_operator.access import protocol
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import DOCKERCONTAINERS

pytestmark = [pytest.mark.kube, pytest.mark.docker]

PLUGIN = str(Path(sys.executable).parent / "kubectl-dockyard")


@pytest.fixture(scope="module")
def access_api(devenv: Any, operator: Any) -> Iterator[None]:
    """The APIService, a selector-less Service and its Endpoints pointing at the session operator's access API
    (as manifests/operator does for the Deployment's Pod). The APIService is cluster-wide: restored at the end."""
    ns = operator.operator_namespace
    ca = (operator.workdir / "access-tls" / "ca.crt").read_bytes()
    labels = session_labels()
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "dockyard-access", "namespace": ns, "labels": labels},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": operator.access_port}]},
    }  # fmt: skip
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "dockyard-access", "namespace": ns, "labels": labels},
        "subsets": [{"addresses": [{"ip": devenv.bridge_gateway}],
                     "ports": [{"name": "https", "port": operator.access_port}]}],
    }  # fmt: skip
    api_service = {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": protocol.API_SERVICE, "labels": labels},
        "spec": {"group": protocol.GROUP, "version": protocol.VERSION, "groupPriorityMinimum": 1000,
                 "versionPriority": 15, "caBundle": base64.b64encode(ca).decode(),
                 "service": {"namespace": ns, "name": "dockyard-access", "port": 443}},
    }  # fmt: skip
    for obj in (service, endpoints, api_service):
        apply(devenv, obj)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = json.loads(kubectl(devenv, "get", "apiservice", protocol.API_SERVICE, "-o", "json").stdout)
        if condition(got, "Available").get("status") == "True":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"APIService never Available: {condition(got, 'Available')}\n{operator.tail()}")
    try:
        yield
    finally:
        kubectl(devenv, "delete", "apiservice", protocol.API_SERVICE, "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def edge(devenv: Any, operator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    name = f"edge-{uuid.uuid4().hex[:6]}"
    agent: Agent = join_tunnel_host(devenv, operator, name, {"site": "access"}, tmp_path_factory.mktemp("edge"))
    wait_connected(devenv, [name])
    try:
        yield name
    finally:
        leave_tunnel_host(devenv, name, agent)


async def _running(devenv: Any, kube: KubeClient, namespace: str, host: str, **spec: Any) -> str:
    name = f"acc-{uuid.uuid4().hex[:6]}"
    apply(devenv, container_manifest(name, namespace, host, image=devenv.test_image, **spec))

    async def ready() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    await eventually(ready, timeout=60, what=f"{name} Ready")
    return name


def _cli(devenv: Any, *args: str, kubeconfig: Path | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**devenv.env, "KUBECONFIG": str(kubeconfig or devenv.kubeconfig)}
    return subprocess.run([PLUGIN, *args], capture_output=True, text=True, env=env, timeout=60, check=False, **kw)


async def test_logs_follow_gets_a_new_line_within_a_second(
    devenv: Any, operator: Any, access_api: None, edge: str, kube: KubeClient, namespace: str
) -> None:
    script = "echo first; while [ ! -f /tmp/go ]; do sleep 0.05; done; echo second-$(cat /tmp/go); sleep 3600"
    name = await _running(devenv, kube, namespace, edge, command=["sh", "-c", script])
    res = _cli(devenv, "logs", f"dc/{name}", "-n", namespace, "--tail", "5")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "first\n"
    env = {**devenv.env, "KUBECONFIG": str(devenv.kubeconfig)}
    follower = subprocess.Popen([PLUGIN, "logs", "-f", f"dc/{name}", "-n", namespace], stdout=subprocess.PIPE, env=env)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"first\n"  # following has started
        cid = (await get_dc(kube, namespace, name))["status"]["containerID"]
        started = time.monotonic()  # the write, straight on the host: the clock measures only the log path
        subprocess.run(["docker", "exec", cid, "sh", "-c", "echo 7 > /tmp/go"], env=devenv.env, check=True)
        line = follower.stdout.readline()
        elapsed = time.monotonic() - started
    finally:
        follower.kill()
        follower.wait()
        if follower.stdout is not None:
            follower.stdout.close()
    assert line == b"second-7\n"
    assert elapsed < 1.0, f"the new line took {elapsed:.2f}s"


async def test_logs_previous_after_a_drift_recreate(
    devenv: Any, operator: Any, access_api: None, edge: str, kube: KubeClient, namespace: str
) -> None:
    name = f"acc-{uuid.uuid4().hex[:6]}"
    manifest = container_manifest(name, namespace, edge, image=devenv.test_image,
                                  command=["sh", "-c", "echo generation-$MODE; sleep 3600"],
                                  env=[{"name": "MODE", "value": "one"}])  # fmt: skip
    apply(devenv, manifest)

    async def ready(previous: str | None = None) -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        cid = (obj.get("status") or {}).get("containerID")
        return obj if cid and cid != previous and condition(obj, "Ready").get("status") == "True" else None

    first = (await eventually(ready, timeout=60, what="Ready"))["status"]["containerID"]
    res = _cli(devenv, "logs", "--previous", f"dc/{name}", "-n", namespace)
    assert res.returncode == 1
    assert "previous terminated container" in res.stderr
    manifest["spec"]["env"] = [{"name": "MODE", "value": "two"}]
    apply(devenv, manifest)
    await eventually(lambda: ready(first), timeout=60, what="recreated after drift")
    assert _cli(devenv, "logs", f"dc/{name}", "-n", namespace).stdout == "generation-two\n"
    res = _cli(devenv, "logs", "-p", f"dc/{name}", "-n", namespace)
    assert (res.returncode, res.stdout) == (0, "generation-one\n"), res.stderr


async def test_exec_exit_codes_and_stdin_half_close(
    devenv: Any, operator: Any, access_api: None, edge: str, kube: KubeClient, namespace: str
) -> None:
    name = await _running(devenv, kube, namespace, edge, args=SLEEPER)
    for code in (0, 3):
        res = _cli(
            devenv, "exec", f"dc/{name}", "-n", namespace, "--", "sh", "-c", f"echo out; echo err >&2; exit {code}"
        )
        assert (res.returncode, res.stdout, res.stderr) == (code, "out\n", "err\n")
    res = _cli(devenv, "exec", "-i", f"dc/{name}", "-n", namespace, "--", "cat", input="x\ny\n")
    assert (res.returncode, res.stdout) == (0, "x\ny\n"), res.stderr
    # kubectl finds the plugin on PATH: `kubectl dockyard ...`
    res = subprocess.run(
        ["kubectl", "dockyard", "exec", f"dc/{name}", "-n", namespace, "--", "echo", "via-kubectl"],
        capture_output=True, text=True, env={**devenv.env, "PATH": f"{Path(PLUGIN).parent}:{devenv.env['PATH']}"},
        timeout=60, check=False,
    )  # fmt: skip
    assert (res.returncode, res.stdout) == (0, "via-kubectl\n"), res.stderr


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"never saw {needle!r} in {out!r}")
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        out += data
        if b"\x1b[6n" in data:  # busybox's line editor asks where the cursor is, as a terminal would answer
            os.write(fd, b"\x1b[1;1R")
    return out


async def test_exec_tty_sees_the_client_size_then_a_resize(
    devenv: Any, operator: Any, access_api: None, edge: str, kube: KubeClient, namespace: str
) -> None:
    name = await _running(devenv, kube, namespace, edge, args=SLEEPER)
    master, slave = pty.openpty()
    _set_size(slave, 31, 97)
    env = {**devenv.env, "KUBECONFIG": str(devenv.kubeconfig)}
    proc = subprocess.Popen(
        [PLUGIN, "exec", "-it", f"dc/{name}", "-n", namespace, "--", "sh"],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        _read_until(master, b"/ # ")
        os.write(master, b"stty size\r")
        _read_until(master, b"31 97")
        _set_size(master, 50, 132)
        proc.send_signal(signal.SIGWINCH)
        time.sleep(0.3)
        os.write(master, b"stty size\r")
        _read_until(master, b"50 132")
        os.write(master, b"exit 3\r")
        assert proc.wait(timeout=20) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


async def test_port_forward_carries_64_mib_intact(
    devenv: Any, operator: Any, access_api: None, edge: str, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    script = "head -c 67108864 /dev/urandom > /www/blob && sha256sum /www/blob > /www/sum && httpd -f -p 8080 -h /www"
    name = await _running(devenv, kube, namespace, edge, command=["sh", "-c", script])
    env = {**devenv.env, "KUBECONFIG": str(devenv.kubeconfig)}
    proc = subprocess.Popen(
        [PLUGIN, "port-forward", f"dc/{name}", "-n", namespace, ":8080"], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # Forwarding from 127.0.0.1:PORT -> 8080
        port = int(line.split(":")[1].split()[0])

        def fetch(path: str) -> bytes:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as resp:
                        return bytes(resp.read())
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

        expected = fetch("/sum").split()[0].decode()
        import hashlib

        blob = fetch("/blob")
        assert len(blob) == 64 * 1024 * 1024
        assert hashlib.sha256(blob).hexdigest() == expected
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


async def test_logs_of_a_deployment_all_replicas_top_and_host_status(
    devenv: Any, operator: Any, access_api: None, edge: str, kube: KubeClient, namespace: str
) -> None:
    name = f"accd-{uuid.uuid4().hex[:6]}"
    apply(devenv, {
        "apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"image": devenv.test_image, "hostRef": {"name": edge},
                                       "stopGracePeriodSeconds": 1,
                                       "command": ["sh", "-c", "echo hi from $(hostname); sleep 3600"]}}},
    })  # fmt: skip

    async def replicas() -> list[str] | None:
        items = (await kube.list(DOCKERCONTAINERS, namespace=namespace))["items"]
        mine = [o for o in items if o["metadata"]["name"].startswith(name)]
        ready = [o for o in mine if condition(o, "Ready").get("status") == "True"]
        return sorted(o["metadata"]["name"] for o in ready) if len(ready) == 2 else None

    names = await eventually(replicas, timeout=90, what="2 ready replicas")
    res = _cli(devenv, "logs", f"ddeploy/{name}", "-n", namespace)
    assert (res.returncode, res.stdout.startswith("hi from ")) == (0, True), res.stderr
    res = _cli(devenv, "logs", "--all", f"ddeploy/{name}", "-n", namespace)
    assert res.returncode == 0, res.stderr
    assert sorted(line.split("]")[0] + "]" for line in res.stdout.splitlines()) == [f"[dc/{n}]" for n in names]
    res = _cli(devenv, "top", "dc", "-n", namespace)
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()[1:]}
    for n in names:
        assert rows[n][1] == edge
        assert rows[n][3].endswith("Mi")
    res = _cli(devenv, "status", f"dh/{edge}")
    assert res.returncode == 0, res.stderr
    assert "Phase:" in res.stdout
    assert "Connected" in res.stdout
    assert "Last heartbeat:" in res.stdout
    for n in names:
        assert n in res.stdout
    kubectl(devenv, "delete", "ddeploy", name, "-n", namespace, "--timeout=60s")


def _user_kubeconfig(devenv: Any, namespace: str, account: str, path: Path) -> Path:
    kubectl(devenv, "create", "serviceaccount", account, "-n", namespace)
    token = kubectl(devenv, "create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    admin = json.loads(devenv.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    path.touch(mode=0o600)
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": cluster["name"], "user": account}}],
        "current-context": account,
    }))  # fmt: skip
    return path


async def test_two_users_rbac_logs_but_not_exec_and_neither(
    devenv: Any, operator: Any, access_api: None, edge: str, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    name = await _running(devenv, kube, namespace, edge, command=["sh", "-c", "echo hello; sleep 3600"])
    reader = _user_kubeconfig(devenv, namespace, f"reader-{SESSION}", tmp_path / "reader")
    nobody = _user_kubeconfig(devenv, namespace, f"nobody-{SESSION}", tmp_path / "nobody")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "log-reader", "namespace": namespace},
        "rules": [{"apiGroups": [protocol.GROUP], "resources": ["dockercontainers/log"], "verbs": ["get"]}],
    }  # fmt: skip
    apply(devenv, role)
    kubectl(devenv, "create", "rolebinding", "log-reader", "-n", namespace, "--role=log-reader",
            f"--serviceaccount={namespace}:reader-{SESSION}")  # fmt: skip
    time.sleep(1)  # RBAC caches
    res = _cli(devenv, "logs", f"dc/{name}", "-n", namespace, kubeconfig=reader)
    assert (res.returncode, res.stdout) == (0, "hello\n"), res.stderr
    res = _cli(devenv, "exec", f"dc/{name}", "-n", namespace, "--", "true", kubeconfig=reader)
    assert (res.returncode, "Forbidden" in res.stderr) == (1, True), res.stderr
    for verb in (["logs", f"dc/{name}"], ["exec", f"dc/{name}", "--", "true"]):
        res = _cli(devenv, *verb, "-n", namespace, kubeconfig=nobody)
        assert (res.returncode, "Forbidden" in res.stderr) == (1, True), res.stderr
    # The user needs nothing of the tunnel: not its Secrets, not even the DockerContainer itself.
    can = kubectl(devenv, "auth", "can-i", "get", "secrets", "-n", operator.operator_namespace,
                  f"--as=system:serviceaccount:{namespace}:reader-{SESSION}", check=False)  # fmt: skip
    assert can.stdout.strip() == "no"


def test_operator_answers_only_the_front_proxy_and_authorizes_itself(
    devenv: Any, operator: Any, access_api: None, namespace: str
) -> None:
    """The operator's own checks, beneath the API server's: a request that does not come from the aggregator is
    refused (401), and a user the aggregator names is authorized again with a SubjectAccessReview (403)."""
    pki = devenv.kubeconfig.parent / "pki"
    url = (f"https://{devenv.bridge_gateway}:{operator.access_port}"
           f"{protocol.path(namespace, 'anything', protocol.LOG)}")  # fmt: skip
    plain = ssl.create_default_context(cafile=str(operator.workdir / "access-tls" / "ca.crt"))
    plain.check_hostname = False
    req = urllib.request.Request(url, headers={"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=plain, timeout=10)  # noqa: S310
    assert err.value.code == 401
    proxy = ssl.create_default_context(cafile=str(operator.workdir / "access-tls" / "ca.crt"))
    proxy.check_hostname = False
    proxy.load_cert_chain(str(pki / "front-proxy-client.crt"), str(pki / "front-proxy-client.key"))
    req = urllib.request.Request(url, headers={"X-Remote-User": "mallory", "X-Remote-Group": "system:authenticated"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=proxy, timeout=10)  # noqa: S310
    assert err.value.code == 403
    assert "mallory" in json.loads(err.value.read())["message"]
    assert ROOT.exists()
