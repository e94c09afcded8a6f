"""How the Kubernetes client is set up: the proxy resolved once from the environment, no per-request env reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard_operator.kube.client import KubeClient, proxy_from_environment

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://api.example.test:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("no_proxy", "server", "expected"),
    [
        ("", "https://api.example.test:6443", "http://proxy.test:3128"),
        ("*", "https://api.example.test:6443", None),
        ("example.test", "https://api.example.test:6443", None),
        (".example.test", "https://api.example.test:6443", None),
        ("other.test,api.example.test:6443", "https://api.example.test:6443", None),
        ("ample.test", "https://api.example.test:6443", "http://proxy.test:3128"),
        ("10.0.0.0/8", "https://10.1.2.3:6443", None),
        ("10.0.0.0/8", "https://192.168.1.1:6443", "http://proxy.test:3128"),
        ("fd00::1", "https://[fd00::1]:6443", None),
        ("[fd00::1]:6443", "https://[fd00::1]:6443", None),
        ("*.example.test", "https://api.example.test:6443", None),
        ("", "https://localhost:6443", None),
        ("", "https://127.0.0.1:6443", None),
        ("", "https://[::1]:6443", None),
    ],
)
def test_proxy_follows_https_proxy_and_no_proxy(
    no_proxy_env: pytest.MonkeyPatch, no_proxy: str, server: str, expected: str | None
) -> None:
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    no_proxy_env.setenv("NO_PROXY", no_proxy)
    assert proxy_from_environment(server) == expected


async def test_the_session_reads_no_environment_per_request(no_proxy_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """trust_env would read ~/.netrc and the proxy variables in a thread on every call; the proxy is set once."""
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    client = await KubeClient.connect(kubeconfig=str(config))
    try:
        rest = client._api.rest_client
        assert rest.pool_manager.trust_env is False
        assert rest.proxy == "http://proxy.test:3128"
    finally:
        await client.close()
