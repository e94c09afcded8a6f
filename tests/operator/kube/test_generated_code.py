"""kubernetes_asyncio's generated API and model classes stay unimported unless used (kube/generated_code.py).

Each case runs in a fresh interpreter: this test session has long since imported the whole library."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path


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
        from kubernetes_asyncio import client, dynamic, watch
        from kubernetes_asyncio.client import CoreV1Api
        import kubernetes_asyncio
        print(CoreV1Api.__name__, client.models.V1Pod.__name__, client.V1ObjectMeta(name="x").name,
              watch.Watch.__name__, client.ApiClient is dockyard_operator.kube.client.k8s_client.ApiClient,
              dynamic.DynamicClient.__name__, kubernetes_asyncio.__version__ == kubernetes_asyncio.__version__)
    """)
    assert out == "CoreV1Api V1Pod x Watch True DynamicClient True"


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


def test_without_the_generated_code_a_lookup_is_an_attribute_error(tmp_path: Path) -> None:
    """As in the operator image (hack/build-images deletes client/api and client/models)."""
    import kubernetes_asyncio

    copy = tmp_path / "site" / "kubernetes_asyncio"
    shutil.copytree(Path(kubernetes_asyncio.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(copy / "client" / "api")
    shutil.rmtree(copy / "client" / "models")
    out = run(f"""
        import sys
        sys.path.insert(0, {str(tmp_path / "site")!r})
        import dockyard_operator.kube.client
        from kubernetes_asyncio import client
        assert client.ApiClient and client.Configuration
        here = client.__path__[0].startswith({str(tmp_path)!r})
        print(hasattr(client.models, "V1Pod"), hasattr(client, "CoreV1Api"), here)
    """)
    assert out == "False False True"
