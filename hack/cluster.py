"""A real single-node Kubernetes cluster on this machine, for the in-cluster tests and `make demo-cluster`.

The node is one privileged container on the dev environment's private dockerd that runs etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, containerd 2.x, the kubelet and kube-proxy as processes (kind's shape,
without systemd or kubeadm; hack/node/). Everything is built here: the Kubernetes binaries from the same module as
the dev apiserver, containerd and CoreDNS from their Go modules, a pause binary with gcc, and the node's root
filesystem from Debian's packages. Images the cluster runs (pause, CoreDNS, the operator, the busybox test image)
are saved from the dev dockerd and imported into the node's containerd at start: nothing is pulled.

    python hack/cluster.py up     # prints the kubeconfig path; writes <state>/env.sh
    python hack/cluster.py down
    python hack/cluster.py status

Several clusters may exist at once (a `make cluster-up` one and a test session's): each has a name (its node
container's) and a state directory; the defaults are `dockyard-node` and .dev/cluster.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import devenv

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "hack" / "node"
DEFAULT_NAME = "dockyard-node"
#: Label on every node container, so the dev environment's teardown and leftovers checks can tell them apart.
NODE_LABEL = "dockyard.dev/cluster-node"
#: Debian packages of the node's root filesystem: runc and the CNI plugins for containerd, iptables/conntrack for
#: kube-proxy, curl for the entrypoint's health checks.
NODE_PACKAGES = "runc,containernetworking-plugins,iptables,conntrack,iproute2,procps,kmod,curl,ca-certificates"
NODE_BASE_TAG = "dockyard-node-base:bookworm"
KUBE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
NODE_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr")
TUNNEL_NODE_PORT = 30443
#: What the node container may do. Not --privileged: that asks for every capability, and these machines' root lacks
#: CAP_SYS_RESOURCE in its bounding set, so runc refuses ("unable to apply caps"). Every other capability, no
#: seccomp/AppArmor filter and writable /proc and /sys (the entrypoint remounts the cgroup hierarchies read-write)
#: are what containerd, the kubelet and kube-proxy need; /dev/kmsg is the kubelet's OOM watcher's.
NODE_SECURITY = (
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined", "--device", "/dev/kmsg",
)  # fmt: skip


class ClusterError(Exception):
    """The cluster could not be built or started; the message says why and what to do."""


class NodeDownError(ClusterError):
    """The node container is not running: waiting longer cannot help."""


@dataclass(frozen=True)
class Cluster:
    """A running cluster: what tests and scripts need to use it."""

    name: str
    state: Path
    kubeconfig: Path
    api_port: int
    #: The host port that publishes the node's NodePort 30443 (the tunnel in overlays/kind and overlays/dev).
    tunnel_port: int


def _log(msg: str) -> None:
    print(f"cluster: {msg}", file=sys.stderr, flush=True)


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (ROOT / "hack" / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _docker(env: devenv.Env, *args: str, check: bool = True, capture: bool = True) -> str:
    cmd = ["docker", *args]
    proc = subprocess.run(
        cmd,
        env={**os.environ, "DOCKER_HOST": env.docker_host},
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        check=False,
    )
    if check and proc.returncode != 0:
        raise ClusterError(f"`docker {' '.join(args[:3])}…` failed: {(proc.stderr or '').strip()}")
    return (proc.stdout or "").strip()


def _image_exists(env: devenv.Env, ref: str) -> bool:
    return bool(_docker(env, "image", "inspect", "--format", "{{.Id}}", ref, check=False))


# ---------------------------------------------------------------------------------------------------- building


def node_binaries_dir() -> Path:
    v = _versions()
    return devenv.cache_dir() / "bin" / f"node-{v['CONTAINERD_VERSION']}-{v['COREDNS_VERSION']}"


def ensure_binaries() -> None:
    """hack/build-binaries --cluster: a no-op when everything is cached."""
    kube = devenv.bin_dir()
    node = node_binaries_dir()
    if all((kube / b).exists() for b in KUBE_BINARIES) and all(
        (node / b).exists() for b in (*NODE_BINARIES, "coredns", "pause")
    ):
        return
    _log("building the cluster's binaries (once; cached in ~/.cache/dockyard/bin)")
    if subprocess.run([str(ROOT / "hack" / "build-binaries"), "--cluster"], check=False).returncode != 0:
        raise ClusterError("building the cluster's binaries failed (see above); rerun hack/build-binaries --cluster")


def _node_base(env: devenv.Env) -> None:
    """The node's root filesystem from Debian's packages (debootstrap once, cached as a tarball)."""
    if _image_exists(env, NODE_BASE_TAG):
        return
    cache = devenv.cache_dir() / "images"
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / "node-bookworm.tar"
    if not tarball.exists():
        if shutil.which("debootstrap") is None:
            raise ClusterError("debootstrap is missing: apt-get install debootstrap (make system-deps installs it)")
        root = Path(tempfile.mkdtemp(prefix="node-rootfs.", dir=cache))
        log = cache / "node-debootstrap.log"
        _log(f"debootstrap bookworm minbase + {NODE_PACKAGES} (once; cached in {tarball})")
        try:
            with log.open("w") as out:
                rc = subprocess.run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        f"--include={NODE_PACKAGES}",
                        "bookworm",
                        str(root),
                        "http://deb.debian.org/debian",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                ).returncode
            if rc != 0:
                raise ClusterError(f"debootstrap failed; see {log}")
            for junk in ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists"):
                shutil.rmtree(root / junk, ignore_errors=True)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    _log(f"importing {NODE_BASE_TAG}")
    _docker(env, "import", str(tarball), NODE_BASE_TAG)


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        # Binaries are large: their size and mtime identify a build; small files are hashed.
        h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode() if st.st_size > 1 << 20 else p.read_bytes())
    return h.hexdigest()[:12]


def _build(env: devenv.Env, tag: str, files: dict[str, Path], dockerfile: str) -> None:
    with tempfile.TemporaryDirectory(prefix="dockyard-node-build.") as tmp:
        context = Path(tmp)
        for rel, src in files.items():
            dest = context / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            # Hard links when possible: the binaries are hundreds of MB and the context is sent to dockerd anyway.
            try:
                os.link(src, dest)
            except OSError:
                shutil.copy2(src, dest)
        (context / "Dockerfile").write_text(dockerfile)
        _docker(env, "build", "--quiet", "-t", tag, str(context))


def node_image(env: devenv.Env) -> str:
    """The node image, tagged by a digest of its inputs: rebuilt only when a binary or a node file changes."""
    _node_base(env)
    files = {f"bin/{b}": devenv.bin_dir() / b for b in KUBE_BINARIES}
    files |= {f"bin/{b}": node_binaries_dir() / b for b in NODE_BINARIES}
    files |= {p.name: p for p in NODE_DIR.iterdir() if p.name not in ("Dockerfile", "coredns.yaml")}
    tag = f"dockyard-node:{_digest([*files.values(), NODE_DIR / 'Dockerfile'])}"
    if not _image_exists(env, tag):
        _log(f"building {tag}")
        _build(env, tag, files, (NODE_DIR / "Dockerfile").read_text())
    return tag


def _addon_images(env: devenv.Env) -> list[str]:
    """pause and CoreDNS, each a single static binary on an empty image, named as kubeadm's images are."""
    v = _versions()
    node = node_binaries_dir()
    images = {
        f"registry.k8s.io/pause:{v['PAUSE_VERSION']}": ("pause", 'ENTRYPOINT ["/pause"]\nUSER 65535:65535\n'),
        f"registry.k8s.io/coredns/coredns:{v['COREDNS_VERSION']}": ("coredns", 'ENTRYPOINT ["/coredns"]\n'),
    }
    for ref, (binary, tail) in images.items():
        if not _image_exists(env, ref):
            _log(f"building {ref}")
            _build(env, ref, {binary: node / binary}, f"FROM scratch\nCOPY {binary} /{binary}\n{tail}")
    return list(images)


def save_images(env: devenv.Env, refs: list[str], directory: Path) -> None:
    """`docker save` each image into directory (the node imports every *.tar there at start), skipping unchanged."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted: set[str] = set()
    for ref in refs:
        image_id = _docker(env, "image", "inspect", "--format", "{{.Id}}", ref, check=False)
        if not image_id:
            raise ClusterError(f"image {ref} is not in the dev dockerd (make image builds dockyard-operator:dev)")
        name = f"{ref.replace('/', '_').replace(':', '_')}-{image_id.split(':')[-1][:12]}.tar"
        wanted.add(name)
        if not (directory / name).exists():
            _log(f"saving {ref}")
            _docker(env, "save", "-o", str(directory / f"{name}.partial"), ref)
            (directory / f"{name}.partial").rename(directory / name)
    for stale in directory.glob("*.tar"):
        if stale.name not in wanted:
            stale.unlink()


# ------------------------------------------------------------------------------------------------------ PKI


#: Client identities of the node's components, as Kubernetes' bootstrap RBAC and the Node authorizer know them.
CLIENTS = {
    "admin": "/O=system:masters/CN=dockyard-admin",
    "controller-manager": "/CN=system:kube-controller-manager",
    "scheduler": "/CN=system:kube-scheduler",
    "kubelet": "/O=system:nodes/CN=system:node:dockyard-node",
    "kube-proxy": "/CN=system:kube-proxy",
    "apiserver-kubelet-client": "/O=system:masters/CN=kube-apiserver-kubelet-client",
}


def _sign(pki: Path, name: str, subject: str, ext: str) -> None:
    devenv._openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pki / f"{name}.key"),
        "-out", str(pki / f"{name}.csr"), "-subj", subject,
    )  # fmt: skip
    (pki / f"{name}.ext").write_text(ext + "\n")
    devenv._openssl(
        "x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
        "-CAcreateserial", "-out", str(pki / f"{name}.crt"), "-days", "3650", "-extfile", str(pki / f"{name}.ext"),
    )  # fmt: skip


def ensure_pki(pki: Path) -> None:
    """A CA of its own (never the dev apiserver's), serving and client certificates, the service-account keys."""
    if (pki / "kube-proxy.kubeconfig").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    devenv._openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
        "-days", "3650", "-subj", "/CN=dockyard-node-ca",
    )  # fmt: skip
    sans = "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:dockyard-node,DNS:kubernetes,DNS:kubernetes.default"
    sans += ",DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    _sign(pki, "apiserver", "/CN=kube-apiserver", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth")
    for name, subject in CLIENTS.items():
        _sign(pki, name, subject, "extendedKeyUsage=clientAuth")
    devenv._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(pki / "sa.key"))
    devenv._openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    # The aggregation layer (the access API behind an APIService): a front-proxy CA and client, as kubeadm makes.
    devenv.ensure_front_proxy_pki(pki)
    for leftover in [*pki.glob("*.csr"), *pki.glob("*.ext"), *pki.glob("*.srl")]:
        leftover.unlink()
    # Component kubeconfigs, with the paths they have inside the node.
    for name in ("controller-manager", "scheduler", "kubelet", "kube-proxy"):
        _write_kubeconfig(
            pki / f"{name}.kubeconfig", pki, name, "https://127.0.0.1:6443", inside="/etc/kubernetes/node"
        )
    # The key files are read by root in the node; the directory is mounted read-only.
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def _write_kubeconfig(path: Path, pki: Path, user: str, server: str, *, inside: str | None = None) -> None:
    """inside: reference the files at that path (the node's view); otherwise embed them (portable)."""
    if inside:
        cluster = {"server": server, "certificate-authority": f"{inside}/ca.crt"}
        creds = {"client-certificate": f"{inside}/{user}.crt", "client-key": f"{inside}/{user}.key"}
    else:

        def b64(name: str) -> str:
            return base64.b64encode((pki / name).read_bytes()).decode()

        cluster = {"server": server, "certificate-authority-data": b64("ca.crt")}
        creds = {"client-certificate-data": b64(f"{user}.crt"), "client-key-data": b64(f"{user}.key")}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dockyard-node", "cluster": cluster}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": "dockyard-node", "context": {"cluster": "dockyard-node", "user": user}}],
        "current-context": "dockyard-node",
    }
    # Created 0600: the admin kubeconfig embeds a system:masters key.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(config, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------- lifecycle


def _kubectl(cluster_kubeconfig: Path, *args: str, check: bool = True, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [str(devenv.bin_dir() / "kubectl"), f"--kubeconfig={cluster_kubeconfig}", *args],
        input=stdin,
        text=True,
        capture_output=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args[:3])}… failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _published(env: devenv.Env, name: str, port: int) -> int:
    out = _docker(env, "port", name, f"{port}/tcp")
    return int(out.splitlines()[0].rsplit(":", 1)[1])


def _node_logs(env: devenv.Env, name: str, component: str) -> str:
    return _docker(env, "exec", name, "tail", "-n", "25", f"/var/log/node/{component}.log", check=False)


def _wait(what: str, check: Callable[[], bool], timeout: float, on_fail: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except NodeDownError:
            raise
        except (ClusterError, subprocess.SubprocessError, OSError, ValueError):
            pass
        time.sleep(0.5)
    detail = on_fail() if on_fail is not None else ""
    raise ClusterError(f"{what} not within {timeout:.0f}s\n{detail}")


def up(
    *,
    name: str = DEFAULT_NAME,
    state: Path | None = None,
    images: tuple[str, ...] = ("dockyard-operator:dev",),
    tunnel_host_port: int | None = None,
) -> Cluster:
    """Start (or reuse) the cluster; images are loaded into its containerd (the dev test image always is).

    tunnel_host_port: where this machine publishes NodePort 30443 (overlays/kind and overlays/dev advertise
    wss://localhost:30443, as kind's extraPortMappings do); None picks a free port (tests).
    """
    env = devenv.up(build=True)
    state = state or env.dev / "cluster"
    running = _docker(env, "inspect", "--format", "{{.State.Running}}", name, check=False) == "true"
    kubeconfig = state / "kubeconfig"
    if running and kubeconfig.exists():
        cluster = Cluster(name, state, kubeconfig, _published(env, name, 6443), _published(env, name, TUNNEL_NODE_PORT))
        _log(f"reusing {name}")
        _load_images(env, cluster, images)
        return cluster
    started = time.monotonic()
    ensure_binaries()
    image = node_image(env)
    refs = [*_addon_images(env), env.test_image, *images]
    save_images(env, refs, state / "images")
    ensure_pki(state / "pki")
    _docker(env, "rm", "-f", "-v", name, check=False)
    _log(f"starting {name} ({image})")
    _docker(
        env, "run", "-d", "--name", name, "--hostname", "dockyard-node", "--label", f"{NODE_LABEL}={name}",
        *NODE_SECURITY, "--cgroupns", "private", "--tmpfs", "/run", "--tmpfs", "/tmp", "-v", "/var",
        "-v", "/lib/modules:/lib/modules:ro", "-v", f"{state / 'pki'}:/etc/kubernetes/node:ro",
        "-v", f"{state / 'images'}:/images:ro", "-p", "127.0.0.1::6443",
        "-p", f"127.0.0.1:{tunnel_host_port or ''}:{TUNNEL_NODE_PORT}",
        image,
    )  # fmt: skip
    api_port = _published(env, name, 6443)
    _write_kubeconfig(kubeconfig, state / "pki", "admin", f"https://127.0.0.1:{api_port}")
    cluster = Cluster(name, state, kubeconfig, api_port, _published(env, name, TUNNEL_NODE_PORT))
    (state / "env.sh").write_text(f"export KUBECONFIG={kubeconfig}\n")

    def node_running() -> bool:
        if _docker(env, "inspect", "--format", "{{.State.Running}}", name, check=False) != "true":
            raise NodeDownError(node_failed())
        return True

    def node_failed() -> str:
        status = _docker(env, "inspect", "--format", "{{.State.Status}}", name, check=False)
        return f"node container {status}; its log:\n" + _docker(env, "logs", "--tail", "30", name, check=False)

    _wait(
        "the API server",
        lambda: node_running() and _kubectl(kubeconfig, "get", "--raw=/readyz") == "ok",
        120,
        node_failed,
    )
    _wait(
        "the node Ready",
        lambda: _kubectl(kubeconfig, "get", "node", "dockyard-node", "-o",
                         "jsonpath={.status.conditions[?(@.type=='Ready')].status}") == "True",
        120,
        lambda: node_failed() + "\nkubelet:\n" + _node_logs(env, name, "kubelet"),
    )  # fmt: skip
    _kubectl(kubeconfig, "apply", "-f", str(NODE_DIR / "coredns.yaml"))
    _wait(
        "CoreDNS available",
        lambda: _kubectl(kubeconfig, "-n", "kube-system", "get", "deploy", "coredns", "-o",
                         "jsonpath={.status.availableReplicas}") == "1",
        120,
        lambda: _kubectl(kubeconfig, "-n", "kube-system", "describe", "pods", check=False)[-3000:],
    )  # fmt: skip
    _log(f"{name} ready in {time.monotonic() - started:.0f}s: export KUBECONFIG={kubeconfig}")
    return cluster


def _load_images(env: devenv.Env, cluster: Cluster, refs: tuple[str, ...]) -> None:
    """Into a running node (what `kind load docker-image` does): saved, copied in, imported."""
    save_images(env, [*_addon_images(env), env.test_image, *refs], cluster.state / "images")
    for tar in sorted((cluster.state / "images").glob("*.tar")):
        _docker(
            env, "exec", cluster.name, "ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io",
            "images", "import", "--snapshotter", "overlayfs", f"/images/{tar.name}",
        )  # fmt: skip


def down(*, name: str = DEFAULT_NAME, state: Path | None = None) -> None:
    """Stop the node (its entrypoint stops the Pods and removes their cgroups), remove it and its state."""
    env = devenv.current()
    if env is not None:
        if _docker(env, "inspect", "--format", "{{.Id}}", name, check=False):
            _log(f"stopping {name}")
            _docker(env, "stop", "-t", "60", name, check=False)
            _docker(env, "rm", "-f", "-v", name, check=False)
        state = state or env.dev / "cluster"
    state = state or devenv.dev_dir() / "cluster"
    shutil.rmtree(state, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/cluster.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--name", default=DEFAULT_NAME, help="the node container's name (default %(default)s)")
    parser.add_argument("--state", type=Path, help="state directory (default .dev/cluster)")
    parser.add_argument(
        "--tunnel-port",
        type=int,
        default=TUNNEL_NODE_PORT,
        help="this machine's port for the tunnel NodePort (default %(default)s, as overlays/dev advertises; 0: any)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            cluster = up(name=args.name, state=args.state, tunnel_host_port=args.tunnel_port)
            print(cluster.kubeconfig)
        elif args.command == "down":
            down(name=args.name, state=args.state)
        else:
            env = devenv.current()
            if env is None:
                print("the dev environment is down")
                return 1
            print(_docker(env, "ps", "-a", "--filter", f"label={NODE_LABEL}", check=False))
    except (ClusterError, devenv.DevEnvError) as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
