"""Import kubernetes_asyncio without its generated API and model classes until someone asks for them.

`import kubernetes_asyncio` runs the package's ``__init__``, which imports every sub-package, and
``kubernetes_asyncio.client``'s ``__init__`` imports ~700 generated API modules and ~800 models; ``api_client``
imports all the models once more. We use four things of it: ``ApiClient`` (its authenticated aiohttp session),
``Configuration``, the kubeconfig/in-cluster loaders of ``kubernetes_asyncio.config`` and ``ApiException``. Measured
on this project's machine (Python 3.11, bytecode cached): the whole import costs ~33 MiB of resident memory and
~0.12 s at every start, for code the operator never runs. In the operator image the generated code is not even
shipped (hack/build-images removes it: ~45 MB).

:func:`install` puts lazy stand-ins for the three packages in ``sys.modules`` before anything imports them: each
has the real ``__path__`` (so ``kubernetes_asyncio.config`` and ``client.api_client`` import as usual) and runs
the real ``__init__`` only when an attribute that only it defines is asked for. Code that uses the whole client
(some of our tests do) therefore still works, at the usual cost, on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from pathlib import Path
from typing import Any

PACKAGE = "kubernetes_asyncio"


#: Dunder names the real ``__init__`` defines (``dynamic`` imports ``__version__``; ``import *`` reads ``__all__``).
#: Any other dunder lookup is a probe (importlib, inspect, pickle, copy) and must not load anything.
_DEFINED_DUNDERS = frozenset({"__version__", "__project__", "__all__"})
#: One lock for every stand-in: a thread that asks while another runs an ``__init__`` waits for it to finish.
_LOADING = threading.RLock()


class _LazyPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first lookup of a name it has not got yet."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name not in _DEFINED_DUNDERS:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        with _LOADING:
            if name in self.__dict__:  # loaded by another thread meanwhile
                return self.__dict__[name]
            return self._load(name)

    def _load(self, name: str) -> Any:
        if self.__dict__.get("_dockyard_initialised"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        # `from package import submodule` asks for the attribute first (importlib's fromlist handling): a submodule
        # is imported on its own, without the package's __init__.
        directory = Path(self.__path__[0])
        if (directory / f"{name}.py").is_file() or (directory / name / "__init__.py").is_file():
            return importlib.import_module(f"{self.__name__}.{name}")
        self.__dict__["_dockyard_initialised"] = True
        spec = self.__spec__
        assert spec is not None
        assert spec.loader is not None
        try:
            spec.loader.exec_module(self)
        except (ImportError, OSError) as exc:
            # The operator image leaves the generated code out (hack/build-images): its __init__ files are gone
            # (OSError) or import modules that are (ImportError).
            raise AttributeError(f"{self.__name__}.{name} is not available here: {exc}") from exc
        return getattr(self, name)


def _stand_in(name: str, directory: Path) -> _LazyPackage:
    spec = importlib.util.spec_from_file_location(
        name, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    assert spec is not None
    module = _LazyPackage(name)
    module.__spec__ = spec
    module.__path__ = [str(directory)]
    module.__file__ = spec.origin
    module.__package__ = name
    module.__loader__ = spec.loader
    sys.modules[name] = module
    return module


def install() -> None:
    """Make ``kubernetes_asyncio``, its ``client`` and ``client.models`` lazy (no-op when already imported)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: the ordinary import reports it
    root = Path(next(iter(spec.submodule_search_locations)))
    top = _stand_in(PACKAGE, root)
    client = _stand_in(f"{PACKAGE}.client", root / "client")
    top.__dict__["client"] = client
    client.__dict__["models"] = _stand_in(f"{PACKAGE}.client.models", root / "client" / "models")
    # What the client package's __init__ would export and the config loaders import from it.
    client.__dict__["Configuration"] = importlib.import_module(f"{PACKAGE}.client.configuration").Configuration
    client.__dict__["ApiClient"] = importlib.import_module(f"{PACKAGE}.client.api_client").ApiClient
    top.__dict__["config"] = importlib.import_module(f"{PACKAGE}.config")
