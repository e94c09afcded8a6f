"""The operator as a process: probes and metrics, crash safety (kill -9 midway), leader election."""

from __future__ import annotations

import asyncio
import datetime
import json
import signal
import socket
import time
import uuid
from typing import Any

import aiodocker
import pytest
from dockyard_e2e import SLEEPER, OperatorProcess, apply, condition, container_manifest, eventually, get_dc, kubectl

from dockyard_operator.kube.client import KubeClient

pytestmark = [pytest.mark.kube, pytest.mark.docker]


def _http_get(port: int, path: str) -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


def test_probes_and_metrics(operator: Any, local_host: str) -> None:
    assert _http_get(operator.metrics_port, "/healthz") == (200, "ok\n")
    assert _http_get(operator.metrics_port, "/readyz") == (200, "ok\n")
    status, body = _http_get(operator.metrics_port, "/metrics")
    assert status == 200
    for series in (
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_time_seconds_bucket",
        "workqueue_depth",
        "workqueue_adds_total",
        "dockyard_host_connected",
        "leader_election_master_status",
    ):
        assert series in body, series
    assert f'dockyard_host_connected{{host="{local_host}"}} 1.0' in body
    events = [
        line for line in body.splitlines() if line.startswith(f'dockyard_docker_events_total{{host="{local_host}"}}')
    ]
    assert events, "Docker events are counted per host"
    assert float(events[0].split()[-1]) > 0


async def test_kill_9_midway_leaves_no_duplicates_and_no_orphans(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    batch = f"crash-{uuid.uuid4().hex[:4]}"
    names = [f"{batch}-{i}" for i in range(8)]
    for name in names:
        apply(devenv, container_manifest(name, namespace, local_host, image=devenv.test_image, args=SLEEPER))
    # Kill while the operator is in the middle of creating them (the first one is usually done by now).
    await asyncio.sleep(0.3)
    operator.kill(signal.SIGKILL)
    operator.start()  # a new identity: it must wait for the dead leader's Lease to expire, then take over

    async def all_ready() -> list[dict[str, Any]] | None:
        objs = [await get_dc(kube, namespace, n) for n in names]
        return objs if all(condition(o, "Ready").get("status") == "True" for o in objs) else None

    objs = await eventually(all_ready, timeout=120, what="all containers Ready after kill -9")
    for obj in objs:
        found = await docker.containers.list(
            all=True, filters={"label": [f"dockyard.dev/uid={obj['metadata']['uid']}"]}
        )
        assert [c.id for c in found] == [obj["status"]["containerID"]], obj["metadata"]["name"]
    ours = await docker.containers.list(all=True, filters={"label": [f"dockyard.dev/namespace={namespace}"]})
    uids = {o["metadata"]["uid"] for o in objs}
    batch_containers = [c for c in ours if c._container["Labels"]["dockyard.dev/name"].startswith(batch)]
    assert {c._container["Labels"]["dockyard.dev/uid"] for c in batch_containers} == uids
    assert len(batch_containers) == len(names)


def test_a_second_replica_waits_and_takes_over_on_shutdown(
    devenv: Any, operator: Any, namespace: str, operator_kubeconfig: Any, tmp_path: Any
) -> None:
    standby = OperatorProcess(devenv, tmp_path, namespace, operator_kubeconfig, operator.operator_namespace)
    with pytest.raises(AssertionError, match="never became ready"):
        standby.start(
            ready_timeout=6, keep_if_not_ready=True
        )  # the Lease is held: the standby must not become ready (nor act)
    assert "became leader" not in standby.log.read_text()
    assert standby.proc is not None
    assert standby.proc.poll() is None, "a standby waits; it does not exit"
    assert operator.stop() == 0  # SIGTERM: the leader releases the Lease on the way out
    try:
        lease = json.loads(kubectl(devenv, "get", "lease", "dockyard-operator", "-n", operator.operator_namespace,
                                   "-o", "json").stdout)  # fmt: skip
        released = lease["spec"]
        # Released, not left to expire: a standby may take it at its next retry (2 s), not after 15 s.
        assert released.get("holderIdentity", "") in ("", standby.identity), released
        standby.wait_ready(timeout=60)
        taken = json.loads(kubectl(devenv, "get", "lease", "dockyard-operator", "-n", operator.operator_namespace,
                                   "-o", "json").stdout)["spec"]  # fmt: skip
        assert taken["holderIdentity"] == standby.identity
        gap = _micro(taken["acquireTime"]) - _micro(released["renewTime"])
        # Both times come from this machine's clock: the standby acquired within the lease duration of the
        # release, i.e. the release (not the expiry) handed it over, however slow readiness was under load.
        assert gap < 15, f"the standby acquired {gap:.1f}s after the release"
    finally:
        assert standby.stop() == 0
        operator.start()


def _micro(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_a_leader_that_cannot_renew_its_lease_exits_1(devenv: Any, operator: Any) -> None:
    """Someone else holds the Lease now (our renewals did not get through in time): stop acting, exit non-zero,
    so the Deployment restarts it with a clean picture (controller-runtime does the same)."""
    assert operator.proc is not None
    namespace = operator.operator_namespace
    try:
        deadline = time.monotonic() + 60
        while operator.proc.poll() is None and time.monotonic() < deadline:
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            patch = {"spec": {"holderIdentity": "someone-else", "renewTime": now, "leaseDurationSeconds": 15}}
            kubectl(devenv, "patch", "lease", "dockyard-operator", "-n", namespace, "--type=merge", "-p",
                    json.dumps(patch))  # fmt: skip
            time.sleep(1)
        assert operator.proc.poll() == 1, f"the operator should exit 1, got {operator.proc.poll()}:\n{operator.tail()}"
        assert "lost leadership" in operator.log.read_text()
    finally:
        release = {"spec": {"holderIdentity": "", "leaseDurationSeconds": 1}}
        kubectl(devenv, "patch", "lease", "dockyard-operator", "-n", namespace, "--type=merge", "-p",
                json.dumps(release))  # fmt: skip
        operator.start()
