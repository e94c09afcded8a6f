"""Dockyard installed for real: the operator as two Pods in a real single-node cluster (hack/cluster.py: kubelet,
containerd, kube-proxy, CoreDNS), installed with `kubectl apply -k manifests/overlays/dev` and nothing else (no
RBAC of the test's), an agent process on this machine joining through the tunnel's NodePort, a Pod reaching a
Docker container by its DockerService's DNS name; then leader failover and `kubectl delete -k`.

The tests of this module run in order on one cluster (module fixture); each later one builds on the earlier.
The cluster has its own name and state directory, so a `make demo-cluster` cluster is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))
import cluster as cluster_module  # noqa: E402

pytestmark = [pytest.mark.cluster, pytest.mark.kube, pytest.mark.docker]

OVERLAY = ROOT / "manifests" / "overlays" / "dev"
SYSTEM = "dockyard-system"
NS = f"clustertest-{os.getpid()}"
HOST = f"clustertest-{os.getpid()}"
IMAGE = "dockyard-test/busybox:1"
SERVE = f"echo started-{NS}; mkdir -p /www && echo served-from-{NS} > /www/index.html && exec httpd -f -p 8080 -h /www"


@dataclass
class Installed:
    cluster: cluster_module.Cluster
    env: Any
    workdir: Path
    agent: subprocess.Popen[bytes] | None = None
    agent_log: Path | None = None

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 240) -> str:
        proc = subprocess.run(
            [str(self.env.kubectl), f"--kubeconfig={self.cluster.kubeconfig}", *args],
            input=stdin, capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc.stdout.strip()

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", "-o", "json", *args))

    def docker(self, *args: str) -> str:
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=self.env.env, check=False)
        return proc.stdout.strip()

    def leader(self) -> str:
        return str(self.json("-n", SYSTEM, "lease", "dockyard-operator")["spec"].get("holderIdentity") or "")


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, KeyError, subprocess.SubprocessError, json.JSONDecodeError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


@pytest.fixture(scope="module")
def installed(devenv: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    agent = ROOT / "dist" / "dockyard-agent"
    assert agent.exists(), f"{agent} is missing: run `make agent` (make test builds it)"
    build = subprocess.run(
        [str(ROOT / "hack" / "build-images")], cwd=ROOT, env=devenv.env, capture_output=True, text=True, check=False
    )
    assert build.returncode == 0, f"hack/build-images failed:\n{build.stderr}"
    state = tmp_path_factory.mktemp("cluster")
    name = f"dockyard-node-t{os.getpid()}"
    try:
        cluster = cluster_module.up(name=name, state=state)
    except Exception as exc:  # whatever failed, the node container must not stay behind
        cluster_module.down(name=name, state=state)
        pytest.fail(f"the single-node cluster could not start: {exc}", pytrace=False)
    inst = Installed(cluster=cluster, env=devenv, workdir=tmp_path_factory.mktemp("cluster-work"))
    try:
        yield inst
    finally:
        try:
            # Whatever a failed test left installed: uninstall it while the operator and the agent can clean up.
            inst.kubectl("delete", "--ignore-not-found", "--timeout=120s", "-k", str(OVERLAY), check=False, timeout=150)
        finally:
            if inst.agent is not None:
                # The single-file agent is PyInstaller's bootloader plus a child: end the whole process group.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(inst.agent.pid, signal.SIGKILL)
                inst.agent.wait(timeout=30)
            cluster_module.down(name=name, state=state)
            for leftover in inst.docker("ps", "-aq", "--filter", f"name=^{NS}_").split():
                inst.docker("rm", "-f", leftover)


def test_the_operator_runs_as_two_pods_one_leading(installed: Installed) -> None:
    k = installed
    k.kubectl("apply", "--server-side", "-k", str(OVERLAY))
    k.kubectl("-n", SYSTEM, "rollout", "status", "deploy/dockyard-operator", "--timeout=180s")
    pods = k.json("-n", SYSTEM, "pods", "-l", "app.kubernetes.io/component=operator")["items"]
    assert len(pods) == 2
    leader = wait_for("a leader", k.leader, 30)
    assert leader in {p["metadata"]["name"] for p in pods}
    for pod in pods:
        # Probes pass (Ready), non-root, read-only root filesystem: as manifests/base declares and the kubelet ran.
        assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["status"]["containerStatuses"][0]["user"]["linux"]["uid"] == 65532
    # Only the leader carries the label the tunnel Service selects, so agents reach it and only it.
    labelled = wait_for(
        "the leader label",
        lambda: [
            p["metadata"]["name"] for p in k.json("-n", SYSTEM, "pods", "-l", "dockyard.dev/leader=true")["items"]
        ],
        30,
    )
    assert labelled == [leader]
    leader_ip = next(p["status"]["podIP"] for p in pods if p["metadata"]["name"] == leader)

    def tunnel_endpoints() -> list[str]:
        slices = k.json("-n", SYSTEM, "endpointslices", "-l", "kubernetes.io/service-name=dockyard-tunnel")["items"]
        return [a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]]

    wait_for("the tunnel Service to reach only the leader", lambda: tunnel_endpoints() == [leader_ip], 30)
    # The one RBAC write the operator may make is fenced by a ValidatingAdmissionPolicy: as the operator, binding
    # its role to someone else is denied (manifests/operator/rbac_copy_policy.yaml).
    as_operator = f"--as=system:serviceaccount:{SYSTEM}:dockyard-operator"
    for name, role, message in (
        ("evil", "dockyard-operator", "may only write the ClusterRole(Binding) dockyard-operator-uninstall"),
        ("dockyard-operator-uninstall", "dockyard-operator-uninstall", "may bind only its own role to its own"),
    ):
        proc = subprocess.run(
            [str(k.env.kubectl), f"--kubeconfig={k.cluster.kubeconfig}", "create", "clusterrolebinding", name,
             f"--clusterrole={role}", "--serviceaccount=default:default", as_operator],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode != 0
        assert message in proc.stderr, proc.stderr


def _start_agent(k: Installed) -> None:
    token = k.workdir / "agent.token"
    out = wait_for(
        "host join",
        lambda: subprocess.run(
            [sys.executable, "-m", "dockyard_operator", "host", "join", HOST, "--token-file", str(token),
             "--kubeconfig", str(k.cluster.kubeconfig)],
            capture_output=True, text=True, check=True, env=k.env.env,
        ).stdout,
        60,
    )  # fmt: skip
    printed = next(line for line in out.splitlines() if line.startswith("dockyard-agent "))
    # The URL and CA pin come from the cluster (the ConfigMap the leader publishes), not from a flag of ours.
    assert "--server wss://localhost:30443" in printed, printed
    assert "--ca-cert-hash sha256:" in printed, printed
    args = shlex.split(printed)[1:]
    args[args.index("--server") + 1] = f"wss://localhost:{k.cluster.tunnel_port}"  # this cluster's published port
    args[args.index("--token-file") + 1] = str(token)
    k.agent_log = k.workdir / "agent.log"
    with k.agent_log.open("ab") as log:
        k.agent = subprocess.Popen(
            [str(ROOT / "dist" / "dockyard-agent"), *args, "--docker-socket", k.env.docker_host],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def _connections(k: Installed) -> int:
    assert k.agent_log is not None
    return len(re.findall(r'"event": "connected"', k.agent_log.read_text()))


def test_an_agent_joins_through_the_nodeport_and_a_pod_reaches_its_container(installed: Installed) -> None:
    k = installed
    k.kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerHost",
        "metadata": {"name": HOST, "labels": {"site": HOST}}, "spec": {"tunnel": {}},
    }))  # fmt: skip
    _start_agent(k)
    k.kubectl("wait", "--for=jsonpath={.status.phase}=Connected", f"dockerhost/{HOST}", "--timeout=60s")
    k.kubectl("create", "namespace", NS)
    k.kubectl("apply", "-n", NS, "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerContainer",
         "metadata": {"name": "web", "labels": {"app": "web"}},
         "spec": {"hostSelector": {"matchLabels": {"site": HOST}}, "image": IMAGE, "imagePullPolicy": "Never",
                  "args": ["sh", "-c", SERVE],
                  "ports": [{"name": "http", "containerPort": 8080}]}},
        {"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerService", "metadata": {"name": "web"},
         "spec": {"selector": {"matchLabels": {"app": "web"}}, "ports": [{"port": 80, "targetPort": "http"}]}},
    ]}))  # fmt: skip
    k.kubectl("wait", "-n", NS, "--for=condition=Ready", "dockercontainer/web", "--timeout=120s")
    k.kubectl("wait", "-n", NS, "--for=condition=Ready", "dockerservice/web", "--timeout=60s")
    url = f"http://web.{NS}.svc.cluster.local/"
    k.kubectl(
        "run", "-n", NS, "fetch", f"--image={IMAGE}", "--image-pull-policy=Never", "--restart=Never", "--command",
        "--", "sh", "-c", f"for i in $(seq 12); do timeout 10 wget -qO- {url} && exit 0; sleep 1; done; exit 1",
    )  # fmt: skip
    k.kubectl("wait", "-n", NS, "--for=jsonpath={.status.phase}=Succeeded", "pod/fetch", "--timeout=150s")
    # The first DNS query of a fresh Pod is sometimes lost (glibc sends A and AAAA at once from one socket, a known
    # conntrack race) and answered by the resolver's retry 5 s later; an attempt that the shell's `timeout` ended
    # leaves "Terminated" in the log, so the body is the last line, not the whole log.
    log = k.kubectl("logs", "-n", NS, "fetch")
    assert log.splitlines()[-1:] == [f"served-from-{NS}"], log


def test_logs_and_exec_through_the_clusters_aggregated_api(installed: Installed) -> None:
    """kube-apiserver -> APIService -> the leader's Pod (by its label) -> tunnel -> agent -> Docker."""
    k = installed
    k.kubectl("wait", "--for=condition=Available", "apiservice/v1alpha1.subresources.dockyard.dev", "--timeout=60s")

    def cli(command: str, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "dockyard_operator", command, "-n", NS, "--kubeconfig", str(k.cluster.kubeconfig),
             *args],
            capture_output=True, text=True, check=False, env=k.env.env, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert f"started-{NS}" in cli("logs", "dc/web")
    assert cli("exec", "dc/web", "--", "cat", "/www/index.html").strip() == f"served-from-{NS}"


def test_leader_failover_keeps_the_containers_and_the_agent_reconnects(installed: Installed) -> None:
    k = installed
    before_id = k.docker("inspect", "--format", "{{.Id}}", f"{NS}_web")
    assert before_id
    old = k.leader()
    connected = _connections(k)
    started = time.monotonic()
    k.kubectl("delete", "pod", "-n", SYSTEM, old, "--wait=false")
    new = wait_for("another replica leading", lambda: (leader := k.leader()) not in ("", old) and leader, 60)
    wait_for("the agent reconnected", lambda: _connections(k) > connected, 60)
    reconnected_after = time.monotonic() - started
    assert reconnected_after <= 15, f"the agent reconnected {reconnected_after:.1f}s after the leader's Pod went"
    assert k.json("-n", SYSTEM, "pods", "-l", "dockyard.dev/leader=true")["items"][0]["metadata"]["name"] == new
    # Status updates resume under the new leader: a new DockerContainer becomes Ready; the old one was not touched.
    k.kubectl("apply", "-n", NS, "-f", "-", stdin=json.dumps({
        "apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerContainer", "metadata": {"name": "after"},
        "spec": {"hostSelector": {"matchLabels": {"site": HOST}}, "image": IMAGE, "imagePullPolicy": "Never",
                 "args": ["sleep", "3600"]},
    }))  # fmt: skip
    k.kubectl("wait", "-n", NS, "--for=condition=Ready", "dockercontainer/after", "--timeout=90s")
    k.kubectl("wait", "-n", NS, "--for=condition=Ready", "dockercontainer/web", "--timeout=30s")
    assert k.docker("inspect", "--format", "{{.Id}}", f"{NS}_web") == before_id


def test_delete_k_removes_everything_and_every_docker_container(installed: Installed) -> None:
    k = installed
    assert k.docker("ps", "-aq", "--filter", f"name=^{NS}_")
    leader_log = k.workdir / "leader.log"
    with leader_log.open("wb") as out:
        follow = subprocess.Popen(
            [str(k.env.kubectl), f"--kubeconfig={k.cluster.kubeconfig}", "logs", "-f", "-n", SYSTEM, k.leader()],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        proc = subprocess.run(
            [str(k.env.kubectl), f"--kubeconfig={k.cluster.kubeconfig}", "delete", "-k", str(OVERLAY),
             "--timeout=150s"],
            capture_output=True, text=True, check=False, timeout=180,
        )  # fmt: skip
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    said = [line for line in leader_log.read_text().splitlines() if '"debug"' not in line]
    assert proc.returncode == 0, proc.stderr + "\nthe leader's last words:\n" + "\n".join(said[-30:])
    assert k.docker("ps", "-aq", "--filter", f"name=^{NS}_") == ""
    assert not k.kubectl("get", "namespace", SYSTEM, "--ignore-not-found")
    assert "dockyard.dev" not in k.kubectl("get", "crd", "-o", "name")
    # The run-time copy of the ClusterRole (kube/uninstall.py) goes too (its binding by the garbage collector):
    # nothing of ours is left cluster-wide.
    kinds = "clusterroles,clusterrolebindings,apiservices,validatingadmissionpolicies"
    wait_for("nothing of ours cluster-wide", lambda: "dockyard" not in k.kubectl("get", kinds, "-o", "name"), 30)
    k.kubectl("delete", "namespace", NS, "--wait=false")
