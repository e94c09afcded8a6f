"""Drift: how a container, as ``GET /containers/{id}/json`` shows it, differs from the :class:`DesiredContainer`.

Docker merges the image's defaults into what inspect reports (image ENV, CMD/ENTRYPOINT when we set none, EXPOSE,
image LABELs, VOLUME mounts, HEALTHCHECK fields we leave zero), and we do not know the image's defaults. So every
field compares only what we set:

- env, labels, exposed ports: every desired entry must be present with the same value; extra entries are allowed
  (they may come from the image). A *removed* env var or label is caught by the spec hash instead (``config``).
- command and args: compared when we set them. With our entrypoint Docker does not merge the image's CMD, so args
  are then compared exactly (clearing args is noticed).
- workingDir and healthCheck: compared when we set them; StartPeriod 0 means "not set" for Docker, so it is only
  compared when non-zero.
- port bindings, binds, resources and restart policy live in HostConfig, which Docker never merges from the
  image: compared exactly, with an absent value equal to Docker's zero value.
- ``config``: the spec-hash label differs. The hash covers everything, including Secret/ConfigMap contents that
  inspect cannot show (files), so a rotated Secret or any removal is always detected. It is reported alongside the
  fields inspect can explain, so it appears on every spec change; a drift of only ``config`` means a change
  inspect cannot show (file contents, a removed env var or label, a stop grace period).

Names are the DockerContainer spec's field names, so an Event or status can say what to look at.
"""

from collections.abc import Iterable, Mapping
from typing import Any, Final

from dockyard_operator.api import labels
from dockyard_operator.containers.desired import DesiredContainer

IMAGE: Final = "image"
COMMAND: Final = "command"
ARGS: Final = "args"
ENV: Final = "env"
PORTS: Final = "ports"
VOLUMES: Final = "volumes"
RESOURCES: Final = "resources"
RESTART_POLICY: Final = "restartPolicy"
HEALTH_CHECK: Final = "healthCheck"
LABELS: Final = "labels"
WORKING_DIR: Final = "workingDir"
CONFIG: Final = "config"

#: Every name detect_drift can return, in the order it returns them.
FIELDS: Final = (
    IMAGE,
    COMMAND,
    ARGS,
    ENV,
    PORTS,
    VOLUMES,
    RESOURCES,
    RESTART_POLICY,
    HEALTH_CHECK,
    LABELS,
    WORKING_DIR,
    CONFIG,
)

_HEALTHCHECK_EXACT: Final = ("Interval", "Timeout", "Retries")


def detect_drift(desired: DesiredContainer, inspect: Mapping[str, Any]) -> tuple[str, ...]:
    """Names of the fields where the inspected container differs from ``desired`` (empty: no drift).

    The result is in :data:`FIELDS` order and never contains values (they may be Secret data).
    """
    want = desired.create_config
    want_host: Mapping[str, Any] = want.get("HostConfig") or {}
    config: Mapping[str, Any] = inspect.get("Config") or {}
    host: Mapping[str, Any] = inspect.get("HostConfig") or {}
    drifted: set[str] = set()

    if config.get("Image") != want["Image"]:
        drifted.add(IMAGE)
    if "Entrypoint" in want and list(config.get("Entrypoint") or []) != list(want["Entrypoint"]):
        drifted.add(COMMAND)
    # With our entrypoint the image's CMD is not merged, so absent args must be absent in the container too.
    if ("Cmd" in want or "Entrypoint" in want) and list(config.get("Cmd") or []) != list(want.get("Cmd") or []):
        drifted.add(ARGS)
    if not _env_subset(want.get("Env") or [], config.get("Env") or []):
        drifted.add(ENV)
    if not _ports_match(want, want_host, config, host):
        drifted.add(PORTS)
    if sorted(host.get("Binds") or []) != sorted(want_host.get("Binds") or []):
        drifted.add(VOLUMES)
    if any(int(host.get(key) or 0) != int(want_host.get(key) or 0) for key in ("NanoCpus", "Memory")):
        drifted.add(RESOURCES)
    if _restart_policy_name(host) != _restart_policy_name(want_host):
        drifted.add(RESTART_POLICY)
    if "Healthcheck" in want and not _healthcheck_matches(want["Healthcheck"], config.get("Healthcheck") or {}):
        drifted.add(HEALTH_CHECK)
    actual_labels: Mapping[str, str] = config.get("Labels") or {}
    if any(actual_labels.get(k) != v for k, v in desired.labels.items() if k != labels.SPEC_HASH):
        drifted.add(LABELS)
    if "WorkingDir" in want and config.get("WorkingDir") != want["WorkingDir"]:
        drifted.add(WORKING_DIR)
    if actual_labels.get(labels.SPEC_HASH) != desired.spec_hash:
        drifted.add(CONFIG)
    return tuple(name for name in FIELDS if name in drifted)


def _env_dict(entries: Iterable[str]) -> dict[str, str | None]:
    # Docker keeps the last definition of a name; an entry without "=" is a name without a value.
    result: dict[str, str | None] = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        result[name] = value if sep else None
    return result


def _env_subset(wanted: Iterable[str], actual: Iterable[str]) -> bool:
    have = _env_dict(actual)
    return all(have.get(name, None) == value for name, value in _env_dict(wanted).items())


def _bindings(raw: Mapping[str, Any] | None) -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    for key, values in (raw or {}).items():
        pairs = sorted((str(v.get("HostIp") or ""), str(v.get("HostPort") or "")) for v in values or [])
        if pairs:
            result[key] = pairs
    return result


def _ports_match(
    want: Mapping[str, Any], want_host: Mapping[str, Any], config: Mapping[str, Any], host: Mapping[str, Any]
) -> bool:
    exposed: Mapping[str, Any] = config.get("ExposedPorts") or {}
    if any(key not in exposed for key in want.get("ExposedPorts") or {}):
        return False
    return _bindings(host.get("PortBindings")) == _bindings(want_host.get("PortBindings"))


def _restart_policy_name(host: Mapping[str, Any]) -> str:
    # Docker reports an unset policy as "" and means "no".
    return str((host.get("RestartPolicy") or {}).get("Name") or "no")


def _healthcheck_matches(want: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    if list(actual.get("Test") or []) != list(want["Test"]):
        return False
    if any(int(actual.get(key) or 0) != int(want[key]) for key in _HEALTHCHECK_EXACT):
        return False
    # Zero means "unset" to Docker, which then takes the image's value: only a set StartPeriod is ours to check.
    return not want.get("StartPeriod") or int(actual.get("StartPeriod") or 0) == int(want["StartPeriod"])
