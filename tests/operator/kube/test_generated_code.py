"""kubernetes_asyncio's generated API and model classes stay unimported unless used (kube/generated_code.py).

Each case runs in a fresh interpreter: this test session has long since imported the whole library."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_operators_client_loads_no_generated_class() -> None:
    out = run("""
        import sys
        import dockyard_operator.run, dockyard_operator.kube.client
        loaded = [m for m in sys.modules if m.startswith(("kubernetes_asyncio.client.api.",
                                                          "kubernetes_asyncio.client.models."))]
        print(len(loaded), "kubernetes_asyncio.config.kube_config" in sys.modules)
    """)
    assert out == "0 True"


def test_code_that_wants_the_whole_client_still_gets_it() -> None:
    out = run("""
        import dockyard_operator.kube.client
        from kubernetes_asyncio import client, watch
        from kubernetes_asyncio.client import CoreV1Api
        print(CoreV1Api.__name__, client.models.V1Pod.__name__, client.V1ObjectMeta(name="x").name,
              watch.Watch.__name__, client.ApiClient is dockyard_operator.kube.client.k8s_client.ApiClient)
    """)
    assert out == "CoreV1Api V1Pod x Watch True"


def test_a_missing_name_is_still_an_attribute_error() -> None:
    out = run("""
        import dockyard_operator.kube.client
        from kubernetes_asyncio import client
        try:
            client.NoSuchApi
        except AttributeError as exc:
            print("AttributeError", "NoSuchApi" in str(exc))
    """)
    assert out == "AttributeError True"
