#!/usr/bin/env python3
"""The dev environment: a real etcd + kube-apiserver + kube-controller-manager and a private dockerd, started from
this checkout.

Used three ways, always through this one module: `make dev-up` / `make dev-down` (humans and the demo),
and the session-scoped pytest fixture in tests/conftest.py (so a bare `pytest` brings up what it needs).

Everything lives under the dev directory (default `<repo>/.dev`, git-ignored): PKI, kubeconfig, etcd data,
dockerd data-root/exec-root/pidfile/socket, logs, and `env.sh`. Only processes recorded in pid files there are
ever stopped; a system Docker daemon or cluster is never touched.

Standard library only (plus the `openssl` and `ip` commands): it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import http.client
import io
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HACK = ROOT / "hack"

#: The locally built test image: busybox-static from Debian, imported as a one-layer image (no registry here).
TEST_IMAGE = "dockyard-test/busybox:1"

#: Docker Engine API version pinned for our own calls (Debian 12's docker.io 20.10 speaks 1.41).
DOCKER_API = "v1.41"

# System commands the environment needs, and the Debian package that provides each.
SYSTEM_COMMANDS = {
    "dockerd": "docker.io",
    "containerd": "containerd",
    "busybox": "busybox-static",
    "openssl": "openssl",
    "ip": "iproute2",
    "iptables": "iptables",
}


class DevEnvError(Exception):
    """The dev environment cannot start; the message says what to install or where to look."""


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


KUBE_VERSION = _versions()["KUBE_VERSION"]


def cache_dir() -> Path:
    return Path(os.environ.get("DOCKYARD_CACHE", Path.home() / ".cache" / "dockyard"))


def bin_dir() -> Path:
    return cache_dir() / "bin" / KUBE_VERSION


def dev_dir() -> Path:
    return Path(os.environ.get("DOCKYARD_DEV_DIR", ROOT / ".dev")).resolve()


@dataclasses.dataclass(frozen=True)
class Env:
    """What a running dev environment offers; the contract shared by tests, docs and people."""

    dev: Path
    kubeconfig: Path
    kube_server: str
    docker_socket: Path
    kubectl: Path
    bin_dir: Path
    test_image: str
    bridge: str
    bridge_cidr: str

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    @property
    def bridge_gateway(self) -> str:
        """This machine's address on the private bridge: not loopback, so an EndpointSlice may hold it (the data
        plane of DockerServices listens there in the demo and the tests)."""
        return str(ipaddress.ip_network(self.bridge_cidr).network_address + 1)

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus what env.sh exports, for subprocesses."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["DOCKER_HOST"] = self.docker_host
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env


# --------------------------------------------------------------------------------------------------- helpers


def _log(msg: str) -> None:
    print(f"devenv: {msg}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise DevEnvError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()[-2000:]}")
    return res  # type: ignore[no-any-return]


@contextlib.contextmanager
def _locked(dev: Path) -> Iterator[None]:
    """Serialize up/down between concurrent callers (several pytest sessions, make and a test run)."""
    dev.mkdir(parents=True, exist_ok=True)
    with (dev / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _wait(what: str, check: object, *, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:  # the component is still coming up; remember why for the error message
            last = exc
        time.sleep(0.2)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- last lines of " + str(log) + " ---\n" + "\n".join(log.read_text().splitlines()[-25:])
    raise DevEnvError(f"{what} did not become ready within {timeout:.0f}s (last error: {last}){tail}")


# Handles of the components this process started. They are meant to outlive it, but a Popen object that is
# garbage-collected while its child runs raises ResourceWarning (an error under pytest's filterwarnings).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _start(cmd: list[str], *, log: Path, pidfile: Path, env: dict[str, str] | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # start_new_session: our components must not die with the shell that ran `make dev-up`, and a Ctrl-C
        # in a pytest run must not kill them halfway; dev-down stops them by pid.
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    _CHILDREN[proc.pid] = proc
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def _stop_pid(pidfile: Path, name: str, *, grace: float = 15.0) -> None:
    pid = _read_pid(pidfile)
    if pid is None:
        for child in list(_CHILDREN):  # reap a child of ours that already exited (a zombie reads as dead)
            _reap(child)
        pidfile.unlink(missing_ok=True)
        return
    _log(f"stopping {name} (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid_alive(pid):
        _reap(pid)
        time.sleep(0.1)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    _reap(pid)
    pidfile.unlink(missing_ok=True)


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# ------------------------------------------------------------------------------------------ preconditions


def missing_system_commands() -> list[str]:
    return [cmd for cmd in SYSTEM_COMMANDS if shutil.which(cmd, path=_sbin_path()) is None]


def _sbin_path() -> str:
    # dockerd and ip live in /usr/sbin, which is not on every user's PATH.
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _which(cmd: str) -> str:
    found = shutil.which(cmd, path=_sbin_path())
    if found is None:
        raise DevEnvError(
            f"`{cmd}` is not installed: run `make system-deps` (or `apt-get install {SYSTEM_COMMANDS.get(cmd, cmd)}`)"
        )
    return found


def ensure_binaries(*, build: bool) -> None:
    needed = [bin_dir() / name for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")]
    if all(p.exists() for p in needed):
        return
    if not build:
        raise DevEnvError(f"Kubernetes binaries missing in {bin_dir()}: run `hack/build-binaries` (needs Go)")
    _log(f"building kube-apiserver, kube-controller-manager, kubectl and etcd {KUBE_VERSION} (first run; minutes)")
    res = subprocess.run([str(HACK / "build-binaries")], check=False)
    if res.returncode != 0:
        raise DevEnvError("hack/build-binaries failed; see its output above")


# ------------------------------------------------------------------------------------------------------ PKI


def _openssl(*args: str) -> None:
    _run([_which("openssl"), *args])


#: Client certificates the components use, by file stem: (subject, purpose). kube-controller-manager gets the
#: identity Kubernetes' bootstrap RBAC knows (system:kube-controller-manager), not system:masters.
CLIENT_CERTS = {
    "admin": "/O=system:masters/CN=dockyard-admin",
    "controller-manager": "/CN=system:kube-controller-manager",
}


#: The aggregator's client certificate (kube-apiserver --proxy-client-cert-file), from its own CA: an aggregated
#: API server (the operator's subresources.dockyard.dev) trusts request headers only from a certificate of that CA,
#: which no user certificate can be.
FRONT_PROXY_CN = "front-proxy-client"


def ensure_front_proxy_pki(pki: Path) -> None:
    if (pki / "front-proxy-client.crt").exists():
        return
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", str(pki / "front-proxy-ca.key"), "-out", str(pki / "front-proxy-ca.crt"),
        "-days", "3650", "-subj", "/CN=dockyard-dev-front-proxy-ca",
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pki / "front-proxy-client.key"),
        "-out", str(pki / "front-proxy-client.csr"), "-subj", f"/CN={FRONT_PROXY_CN}",
    )  # fmt: skip
    (pki / "front-proxy-client.ext").write_text("extendedKeyUsage=clientAuth\n")
    _openssl(
        "x509", "-req", "-in", str(pki / "front-proxy-client.csr"), "-CA", str(pki / "front-proxy-ca.crt"),
        "-CAkey", str(pki / "front-proxy-ca.key"), "-CAcreateserial", "-out", str(pki / "front-proxy-client.crt"),
        "-days", "3650", "-extfile", str(pki / "front-proxy-client.ext"),
    )  # fmt: skip
    for key in pki.glob("*.key"):
        os.chmod(key, 0o600)


def ensure_pki(pki: Path) -> None:
    """CA, apiserver serving cert, client certs (admin, controller manager) and the service-account key pair."""
    if all((pki / f"{name}.crt").exists() for name in CLIENT_CERTS):
        ensure_front_proxy_pki(pki)
        return
    pki.mkdir(parents=True, exist_ok=True)
    os.chmod(pki, 0o700)
    days = "3650"
    fresh = not (pki / "ca.crt").exists()
    if fresh:
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(pki / "ca.key"),
            "-out",
            str(pki / "ca.crt"),
            "-days",
            days,
            "-subj",
            "/CN=dockyard-dev-ca",
        )
    sans = ",".join(
        [
            "IP:127.0.0.1",
            "IP:10.96.0.1",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
    )
    certs = [("apiserver", "/CN=kube-apiserver", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth")]
    certs += [(name, subject, "extendedKeyUsage=clientAuth") for name, subject in CLIENT_CERTS.items()]
    # An environment from before a client was added keeps its CA and what exists, and gains the new client.
    certs = [c for c in certs if not (pki / f"{c[0]}.crt").exists()]
    for name, subj, ext in certs:
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(pki / f"{name}.key"),
            "-out",
            str(pki / f"{name}.csr"),
            "-subj",
            subj,
        )
        (pki / f"{name}.ext").write_text(ext + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(pki / f"{name}.csr"),
            "-CA",
            str(pki / "ca.crt"),
            "-CAkey",
            str(pki / "ca.key"),
            "-CAcreateserial",
            "-out",
            str(pki / f"{name}.crt"),
            "-days",
            days,
            "-extfile",
            str(pki / f"{name}.ext"),
        )
    if fresh:
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(pki / "sa.key"))
        _openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    for key in pki.glob("*.key"):
        os.chmod(key, 0o600)
    ensure_front_proxy_pki(pki)


# ----------------------------------------------------------------------------------------------- kubernetes


def _state_path(dev: Path) -> Path:
    return dev / "state.json"


def _load_state(dev: Path) -> dict[str, object]:
    try:
        data = json.loads(_state_path(dev).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(dev: Path, state: dict[str, object]) -> None:
    tmp = _state_path(dev).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(_state_path(dev))


def _etcd_healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        body = conn.getresponse().read()
    finally:
        conn.close()
    return b'"health":"true"' in body


def _kube_ssl(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def _kube_ready(port: int, pki: Path) -> bool:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=3, context=_kube_ssl(pki))
    try:
        conn.request("GET", "/readyz")
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    return resp.status == 200


def ensure_etcd(dev: Path, state: dict[str, object]) -> None:
    pidfile = dev / "etcd.pid"
    port = state.get("etcd_port")
    if _read_pid(pidfile) and isinstance(port, int):
        with contextlib.suppress(Exception):
            if _etcd_healthy(port):
                return
        _stop_pid(pidfile, "etcd (unhealthy)")
    port, peer = _free_port(), _free_port()
    data = dev / "etcd"
    _log(f"starting etcd on 127.0.0.1:{port}")
    _start(
        [
            str(bin_dir() / "etcd"),
            "--name=dockyard-dev",
            f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{port}",
            f"--advertise-client-urls=http://127.0.0.1:{port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=dockyard-dev=http://127.0.0.1:{peer}",
            # A throwaway dev/test store: durability buys nothing, fsync costs seconds per test run.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        log=dev / "logs" / "etcd.log",
        pidfile=pidfile,
    )
    state["etcd_port"] = port
    _wait("etcd", lambda: _etcd_healthy(port), timeout=30, log=dev / "logs" / "etcd.log")


#: Bumped when the apiserver's flags change: a running apiserver started with other flags is restarted.
APISERVER_FLAGS_VERSION = 2


def ensure_apiserver(dev: Path, state: dict[str, object]) -> None:
    pki = dev / "pki"
    pidfile = dev / "kube-apiserver.pid"
    port = state.get("kube_port")
    same_flags = state.get("kube_flags_version") == APISERVER_FLAGS_VERSION
    if (
        _read_pid(pidfile)
        and isinstance(port, int)
        and state.get("kube_etcd_port") == state["etcd_port"]
        and same_flags
    ):
        with contextlib.suppress(Exception):
            if _kube_ready(port, pki):
                return
    _stop_pid(pidfile, "kube-apiserver (stale)")
    port = _free_port()
    _log(f"starting kube-apiserver {KUBE_VERSION} on https://127.0.0.1:{port}")
    _start(
        [
            str(bin_dir() / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{state['etcd_port']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            # ServiceAccount TokenRequest: an issuer plus a signing key; the public half verifies tokens.
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            # RBAC only: permissions are tested for real; the admin credential is in system:masters.
            "--authorization-mode=RBAC",
            # The aggregation layer (APIService subresources.dockyard.dev: logs, exec, port-forward): the
            # aggregator proxies with its own client certificate and names the user in these headers; with no
            # kube-proxy here it dials the Service's endpoint addresses itself.
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CN}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--enable-aggregator-routing=true",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=false",
            "--profiling=false",
            "--v=1",
        ],
        log=dev / "logs" / "kube-apiserver.log",
        pidfile=pidfile,
    )
    state["kube_port"] = port
    state["kube_etcd_port"] = state["etcd_port"]
    state["kube_flags_version"] = APISERVER_FLAGS_VERSION
    _wait("kube-apiserver", lambda: _kube_ready(port, pki), timeout=90, log=dev / "logs" / "kube-apiserver.log")


def write_kubeconfig(dev: Path, port: int, *, user: str = "admin", path: Path | None = None) -> Path:
    """A kubeconfig for one of the client certificates in .dev/pki (the admin's by default)."""
    pki = dev / "pki"
    path = path or dev / "kubeconfig"
    # JSON is valid YAML; kubectl and kubernetes_asyncio both read it.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "dockyard-dev",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority": str(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": "dockyard-admin",
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "dockyard-dev", "context": {"cluster": "dockyard-dev", "user": "dockyard-admin"}}],
        "current-context": "dockyard-dev",
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    os.chmod(path, 0o600)
    return path


#: The controllers a cluster's behaviour depends on for what Dockyard does: ownerReferences and cascading deletion
#: (garbage collector), namespace deletion, EndpointSlices for selector-less Services, ServiceAccounts and their
#: tokens, the kube-root-ca.crt ConfigMap, aggregated ClusterRoles. Pod-running controllers (Deployment, Job...)
#: are left out: nothing here runs Pods.
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)


def _controller_manager_healthy(port: int) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # its serving certificate is self-signed; /healthz is all we ask
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=3, context=ctx)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    return resp.status == 200


def ensure_controller_manager(dev: Path, state: dict[str, object]) -> None:
    pidfile = dev / "kube-controller-manager.pid"
    port = state.get("kcm_port")
    if _read_pid(pidfile) and isinstance(port, int) and state.get("kcm_kube_port") == state["kube_port"]:
        with contextlib.suppress(Exception):
            if _controller_manager_healthy(port):
                return
    _stop_pid(pidfile, "kube-controller-manager (stale)")
    pki = dev / "pki"
    kubeconfig = write_kubeconfig(
        dev, int(str(state["kube_port"])), user="controller-manager", path=dev / "controller-manager.kubeconfig"
    )
    port = _free_port()
    log = dev / "logs" / "kube-controller-manager.log"
    _log(f"starting kube-controller-manager {KUBE_VERSION} ({len(CONTROLLERS)} controllers)")
    _start(
        [
            str(bin_dir() / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--authentication-skip-lookup",  # only /healthz is ever asked of it, and that path is always allowed
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={dev / 'controller-manager-certs'}",
            f"--controllers={','.join(CONTROLLERS)}",
            # Each controller acts as its own ServiceAccount with the bootstrap RBAC Kubernetes ships for it,
            # as in a kubeadm cluster (the manager's own identity may only mint their tokens).
            "--use-service-account-credentials",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ],
        log=log,
        pidfile=pidfile,
    )
    state["kcm_port"] = port
    state["kcm_kube_port"] = state["kube_port"]
    _wait("kube-controller-manager", lambda: _controller_manager_healthy(port), timeout=60, log=log)


# ---------------------------------------------------------------------------------------------------- docker


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def docker_api(sock: Path, method: str, path: str, body: bytes | None = None, *, timeout: float = 60) -> bytes:
    conn = _UnixHTTPConnection(sock, timeout=timeout)
    try:
        headers = {"Content-Type": "application/x-tar"} if body is not None else {}
        conn.request(method, f"/{DOCKER_API}{path}", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    if resp.status >= 400:
        raise DevEnvError(f"docker {method} {path}: {resp.status} {data[:500]!r}")
    return data


def _bridge_for(dev: Path) -> tuple[str, str, str]:
    """A bridge name and a /24 for this dev dir: derived from its path, skipping subnets other interfaces use
    (another checkout's bridge, even one whose daemon is long gone), so two environments never collide."""
    digest = hashlib.sha256(str(dev).encode()).digest()
    name = "dy" + digest[:4].hex()  # 10 chars; Linux allows 15
    taken: set[int] = set()
    for line in _run([_which("ip"), "-o", "-4", "addr", "show"]).stdout.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1] != name and fields[3].startswith("10.213."):
            taken.add(int(fields[3].split(".")[2]))
    for step in range(128):
        third = 64 + (digest[4] + step) % 128  # 10.213.64.0/24 .. 10.213.191.0/24
        if third not in taken:
            return name, f"10.213.{third}.1/24", f"10.213.{third}.0/24"
    raise DevEnvError("no free 10.213.64.0/18 subnet for the test bridge: remove stale dy* bridges (ip link)")


def _runtime_dir(dev: Path) -> Path:
    # dockerd's exec-root holds containerd's sockets; unix socket paths are limited to 108 bytes, so a deep
    # checkout would break it. Keep the exec-root short (under /run when root) but unique per dev dir.
    digest = hashlib.sha256(str(dev).encode()).hexdigest()[:10]
    base = Path("/run") if os.geteuid() == 0 else Path("/tmp")
    return base / f"dockyard-{digest}"


def ensure_bridge(name: str, cidr: str) -> None:
    ip = _which("ip")
    if subprocess.run([ip, "link", "show", name], capture_output=True, check=False).returncode != 0:
        _run([ip, "link", "add", name, "type", "bridge"])
    addrs = _run([ip, "-o", "addr", "show", "dev", name]).stdout
    if cidr.split("/")[0] + "/" not in addrs:
        _run([ip, "addr", "add", cidr, "dev", name])
    _run([ip, "link", "set", name, "up"])


def ensure_dockerd(dev: Path, state: dict[str, object]) -> Path:
    ddir = dev / "docker"
    sock = ddir / "docker.sock"
    pidfile = ddir / "dockerd.pid"
    if isinstance(state.get("bridge_cidr"), str) and isinstance(state.get("bridge"), str):
        bridge, bridge_cidr = str(state["bridge"]), str(state["bridge_cidr"])
        bridge_ip = bridge_cidr.replace(".0/24", ".1/24")
    else:
        bridge, bridge_ip, bridge_cidr = _bridge_for(dev)
    state["bridge"], state["bridge_cidr"] = bridge, bridge_cidr
    if _read_pid(pidfile):
        with contextlib.suppress(Exception):
            if docker_api(sock, "GET", "/_ping", timeout=5) == b"OK":
                return sock
        _stop_pid(pidfile, "dockerd (unhealthy)")
    if os.geteuid() != 0:
        raise DevEnvError("the private dockerd needs root (it manages a bridge and cgroups): run as root")
    ensure_bridge(bridge, bridge_ip)
    ddir.mkdir(parents=True, exist_ok=True)
    runtime = _runtime_dir(dev)
    runtime.mkdir(parents=True, exist_ok=True)
    log = dev / "logs" / "dockerd.log"
    _log(f"starting a private dockerd on {sock} (bridge {bridge} {bridge_cidr}, no masquerade)")
    env = dict(os.environ)
    env["PATH"] = _sbin_path()
    _start(
        [
            _which("dockerd"),
            f"--data-root={ddir / 'data'}",
            f"--exec-root={runtime}",
            f"--pidfile={pidfile}.daemon",
            f"--host=unix://{sock}",
            f"--bridge={bridge}",
            # No outbound NAT: containers are reachable from this machine but test traffic never leaves it.
            "--ip-masq=false",
            "--storage-driver=overlay2",
            "--log-level=warn",
        ],
        log=log,
        pidfile=pidfile,
        env=env,
    )
    _wait("dockerd", lambda: docker_api(sock, "GET", "/_ping", timeout=5) == b"OK", timeout=60, log=log)
    return sock


def busybox_rootfs_tar() -> bytes:
    """A tiny rootfs: Debian's static busybox plus a symlink per applet, /etc basics and a web root."""
    busybox = Path(_which("busybox")).resolve()
    applets = _run([str(busybox), "--list-full"]).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for d in (
            "bin",
            "sbin",
            "usr",
            "usr/bin",
            "usr/sbin",
            "etc",
            "root",
            "var",
            "www",
            "proc",
            "sys",
            "dev",
        ):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            if applet == "bin/busybox":
                continue
            info = tarfile.TarInfo(applet)
            info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(info)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnobody:x:65534:\n")
        add_file("www/index.html", b"hello from dockyard-test\n")
    return buf.getvalue()


def ensure_test_image(sock: Path) -> None:
    with contextlib.suppress(DevEnvError):
        docker_api(sock, "GET", f"/images/{TEST_IMAGE}/json")
        return
    repo, tag = TEST_IMAGE.rsplit(":", 1)
    _log(f"importing {TEST_IMAGE} from busybox-static")
    query = urllib.parse.urlencode({"fromSrc": "-", "repo": repo, "tag": tag})
    docker_api(sock, "POST", f"/images/create?{query}", busybox_rootfs_tar(), timeout=120)
    docker_api(sock, "GET", f"/images/{TEST_IMAGE}/json")


# -------------------------------------------------------------------------------------------------- up/down


def write_env_sh(env: Env) -> Path:
    path = env.dev / "env.sh"
    venv_bin = ROOT / ".venv" / "bin"
    path.write_text(
        "# Generated by hack/devenv.py: source it to use the dev environment (`. .dev/env.sh`).\n"
        f"export DOCKYARD_DEV_DIR='{env.dev}'\n"
        f"export KUBECONFIG='{env.kubeconfig}'\n"
        f"export DOCKER_HOST='{env.docker_host}'\n"
        f"export DOCKYARD_SERVICE_ADDRESS='{env.bridge_gateway}'  # where DockerServices' data plane listens\n"
        f"export PATH='{env.bin_dir}:{venv_bin}':\"$PATH\"\n"
    )
    return path


def current(dev: Path | None = None) -> Env | None:
    """The running environment, or None when any part of it is down."""
    dev = dev or dev_dir()
    state = _load_state(dev)
    if not (state.get("kube_port") and _read_pid(dev / "kube-apiserver.pid") and _read_pid(dev / "etcd.pid")):
        return None
    if not _read_pid(dev / "kube-controller-manager.pid"):
        return None
    if not _read_pid(dev / "docker" / "dockerd.pid"):
        return None
    return _env_from_state(dev, state)


def _env_from_state(dev: Path, state: dict[str, object]) -> Env:
    return Env(
        dev=dev,
        kubeconfig=dev / "kubeconfig",
        kube_server=f"https://127.0.0.1:{state['kube_port']}",
        docker_socket=dev / "docker" / "docker.sock",
        kubectl=bin_dir() / "kubectl",
        bin_dir=bin_dir(),
        test_image=TEST_IMAGE,
        bridge=str(state["bridge"]),
        bridge_cidr=str(state["bridge_cidr"]),
    )


def up(*, build: bool = True) -> Env:
    """Start (or reuse) etcd, kube-apiserver and dockerd; idempotent and safe to call concurrently."""
    missing = missing_system_commands()
    if missing:
        pkgs = " ".join(sorted({SYSTEM_COMMANDS[c] for c in missing}))
        raise DevEnvError(f"missing commands {', '.join(missing)}: run `make system-deps` or `apt-get install {pkgs}`")
    ensure_binaries(build=build)
    dev = dev_dir()
    with _locked(dev):
        (dev / "logs").mkdir(parents=True, exist_ok=True)
        state = _load_state(dev)
        ensure_pki(dev / "pki")
        ensure_etcd(dev, state)
        _save_state(dev, state)
        ensure_apiserver(dev, state)
        _save_state(dev, state)
        write_kubeconfig(dev, int(str(state["kube_port"])))
        ensure_controller_manager(dev, state)
        _save_state(dev, state)
        sock = ensure_dockerd(dev, state)
        _save_state(dev, state)
        ensure_test_image(sock)
        env = _env_from_state(dev, state)
        write_env_sh(env)
    return env


def _unmount_under(path: Path) -> None:
    """Unmount whatever a killed dockerd left mounted below `path` (deepest first), so removal is safe."""
    prefix = str(path) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mnt in sorted((m for m in mounts if m.startswith(prefix) or m == str(path)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)


def processes_under(path: Path) -> list[int]:
    """Pids of processes whose command line names `path` (containerd and its shims name the exec-root)."""
    needle = str(path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and _pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def _stop_containers(sock: Path, runtime: Path, *, timeout: float = 60.0) -> None:
    """Kill every container of a still-running private dockerd and wait for containerd to reap their shims.

    Stopping dockerd with containers running leaves some containerd-shim processes behind (their exec-root is
    deleted under them; about one in ten with 200 containers). A dev environment is throwaway: SIGKILL is fine.
    """
    if not sock.exists():
        return
    try:
        listed = json.loads(docker_api(sock, "GET", "/containers/json", timeout=10))
    except (OSError, DevEnvError, ValueError):
        return  # no daemon answering: whatever is left is ended by pid below
    running = [str(c["Id"]) for c in listed]
    # Single-node cluster nodes (hack/cluster.py) are stopped, not killed: their entrypoint ends the Pods and
    # removes the Pods' cgroups, which a SIGKILL would leave behind on the machine.
    for c in listed:
        if "dockyard.dev/cluster-node" in (c.get("Labels") or {}):
            with contextlib.suppress(OSError, DevEnvError):
                docker_api(sock, "POST", f"/containers/{c['Id']}/stop?t=60", timeout=90)
    if running:
        _log(f"killing {len(running)} running container(s)")
    for cid in running:
        with contextlib.suppress(OSError, DevEnvError):
            docker_api(sock, "POST", f"/containers/{cid}/kill", timeout=10)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any("shim" in _cmdline(p) for p in processes_under(runtime)):
        time.sleep(0.2)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _end_processes_under(runtime: Path) -> None:
    """Whatever still runs from the exec-root once dockerd is gone (a shim it never reaped) is ended by pid."""
    left = processes_under(runtime)
    if not left:
        return
    _log(f"ending {len(left)} process(es) left under {runtime}")
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and processes_under(runtime):
        time.sleep(0.1)
    for pid in processes_under(runtime):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def down(dev: Path | None = None) -> None:
    """Stop only what this dev dir started (by pid file) and remove its state."""
    dev = dev or dev_dir()
    if not dev.exists():
        return
    with _locked(dev):
        state = _load_state(dev)
        # What `make demo` started on top (operator, agent) goes first: it talks to what follows.
        for extra in sorted([*dev.glob("*.pid"), *dev.glob("cluster/*.pid")]):
            if extra.name not in ("etcd.pid", "kube-apiserver.pid", "kube-controller-manager.pid"):
                _stop_pid(extra, extra.stem)
        runtime = _runtime_dir(dev)
        _stop_containers(dev / "docker" / "docker.sock", runtime)
        _stop_pid(dev / "docker" / "dockerd.pid", "dockerd", grace=30)
        _end_processes_under(runtime)
        _stop_pid(dev / "kube-controller-manager.pid", "kube-controller-manager")
        _stop_pid(dev / "kube-apiserver.pid", "kube-apiserver")
        _stop_pid(dev / "etcd.pid", "etcd")
        for tree in (dev / "docker", runtime):
            _unmount_under(tree)
        shutil.rmtree(runtime, ignore_errors=True)
        bridge = state.get("bridge")
        if isinstance(bridge, str) and bridge.startswith("dy"):
            subprocess.run([_which("ip"), "link", "delete", bridge], capture_output=True, check=False)
        for child in dev.iterdir():
            if child.name == ".lock":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    _log(f"stopped and removed {dev}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/devenv.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start or reuse etcd, kube-apiserver and dockerd; write .dev/env.sh")
    sub.add_parser("down", help="stop what `up` started and remove its state")
    sub.add_parser("status", help="print the running environment as JSON (exit 1 when down)")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "up":
            started = time.monotonic()
            env = up()
            _log(
                f"ready in {time.monotonic() - started:.1f}s: KUBECONFIG={env.kubeconfig} DOCKER_HOST={env.docker_host}"
            )
            _log(f"use it with: . {env.dev / 'env.sh'}")
        elif args.cmd == "down":
            down()
        else:
            cur = current()
            if cur is None:
                print("down")
                return 1
            print(json.dumps({k: str(v) for k, v in dataclasses.asdict(cur).items()}, indent=2))
    except DevEnvError as exc:
        print(f"devenv: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
