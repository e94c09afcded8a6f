"""What a DockerContainer should look like on its Docker host: the create request, the files, the spec hash.

:func:`build_desired` turns a spec plus the Secrets and ConfigMaps it references (already read by the caller) into a
:class:`DesiredContainer`: the Docker Engine API v1.41 ``POST /containers/create`` body, the Secret/ConfigMap files
the reconciler uploads with ``PUT /containers/{id}/archive`` (path ``/``) between create and start, and a stable
hash of all of it. Pure: no I/O, no clock.

Everything is normalized before it is hashed (env sorted by name, ports and binds sorted, paths cleaned the way
Docker cleans them), so reordering list entries in the spec or re-reading the same objects yields the same hash,
and only a real change recreates the container.

The spec hash covers resolved Secret values, so a rotated Secret changes it. It is a one-way digest, but a digest of
a low-entropy value can be guessed offline: publish it where Docker-level access is already required (the container
label, operator logs), not in the DockerContainer status or Events, which namespace readers without Secret access
can see. :class:`DesiredContainer` and :class:`ResolvedRefs` keep values out of their ``repr`` for the same reason.
"""

import hashlib
import io
import ipaddress
import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from dockyard_operator.api import labels, quantities
from dockyard_operator.api.dockercontainer import (
    ConfigMapEnvSource,
    ConfigMapKeySelector,
    ConfigMapVolumeSource,
    DockerContainerSpec,
    HealthCheck,
    KeyToPath,
    PullPolicy,
    RestartPolicy,
    SecretEnvSource,
    SecretKeySelector,
    SecretVolumeSource,
    Volume,
)
from dockyard_operator.containers.errors import MissingReferenceError, UnbuildableSpecError, UnusableValueError

#: Bumped when the normalization below changes meaning; changing it recreates every managed container once.
HASH_SCHEME: Final = 1
#: Hex characters of sha256 kept in the spec-hash label (128 bits: collisions are not a practical concern).
SPEC_HASH_LENGTH: Final = 32
#: Mode of the directories Dockyard creates for Secret and ConfigMap volumes (Kubernetes uses 0755 too).
DIRECTORY_MODE: Final = 0o755

SECRET: Final = "Secret"  # noqa: S105 - a Kubernetes kind, not a credential
CONFIG_MAP: Final = "ConfigMap"

_NANOS_PER_SECOND: Final = 1_000_000_000
_RESTART_POLICIES: Final[Mapping[RestartPolicy, str]] = {
    RestartPolicy.ALWAYS: "always",
    RestartPolicy.ON_FAILURE: "on-failure",
    RestartPolicy.NEVER: "no",
}


@dataclass(frozen=True)
class ResolvedRefs:
    """The Secrets and ConfigMaps a spec references, as read from the namespace (absent = does not exist).

    Secret values are the decoded bytes of ``data``; ConfigMap values are ``data`` (merge ``binaryData`` in as
    needed before calling; env needs text, files take either).
    """

    secrets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict, repr=False)
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class FileToCopy:
    """One file for a Secret or ConfigMap volume: absolute path in the container, content and mode bits."""

    path: str
    content: bytes = field(repr=False)
    mode: int


@dataclass(frozen=True)
class DesiredContainer:
    """Everything needed to create the container, and the hash that identifies this exact version of it.

    ``create_config`` and ``files`` may hold Secret values: they are excluded from ``repr``; never log them.
    Treat ``create_config`` as read-only (``create_body()`` returns a private copy to send).
    """

    container_name: str
    image: str
    pull_policy: PullPolicy
    create_config: dict[str, Any] = field(repr=False)
    files: tuple[FileToCopy, ...] = field(repr=False)
    #: Directories to create before the files (volume mount points and sub-directories of item paths), sorted.
    directories: tuple[str, ...]
    spec_hash: str

    @property
    def labels(self) -> Mapping[str, str]:
        """The Docker labels of the container (identity, spec hash and the user's labels)."""
        result: Mapping[str, str] = self.create_config["Labels"]
        return result

    def create_body(self) -> dict[str, Any]:
        """A fresh copy of the ``POST /containers/create`` body, safe to hand to a client that mutates it."""
        body: dict[str, Any] = json.loads(json.dumps(self.create_config))
        return body

    def archive(self) -> bytes:
        """The tar archive of :attr:`directories` and :attr:`files`, to extract at ``/`` (see :func:`files_tar`)."""
        return files_tar(self.files, directories=self.directories)


def container_name(*, namespace: str, name: str) -> str:
    """The Docker name of a DockerContainer's container: ``<namespace>_<name>``.

    Kubernetes names never contain ``_``, so the split is unambiguous; identity is by labels all the same.
    """
    return f"{namespace}_{name}"


def previous_container_name(current: str) -> str:
    """The Docker name of the container kept after a recreate: ``<namespace>_<name>_previous``. A second ``_``
    never occurs in a current container's name, so the two can never be confused."""
    return f"{current}_previous"


def is_previous(listed_names: list[str]) -> bool:
    """Whether a listed container (Docker's ``Names``, with a leading ``/``) is a kept previous container."""
    return any(n.lstrip("/").count("_") >= 2 and n.endswith("_previous") for n in listed_names)


def referenced_secrets(spec: DockerContainerSpec) -> set[str]:
    """Names of all Secrets the spec references: env valueFrom, envFrom, volumes and imagePullSecrets."""
    names = {ref.name for ref in spec.image_pull_secrets}
    names.update(s.secret_ref.name for s in spec.env_from if s.secret_ref is not None)
    for var in spec.env:
        if var.value_from is not None and var.value_from.secret_key_ref is not None:
            names.add(var.value_from.secret_key_ref.name)
    names.update(v.secret.secret_name for v in spec.volumes if v.secret is not None)
    return names


def referenced_config_maps(spec: DockerContainerSpec) -> set[str]:
    """Names of all ConfigMaps the spec references: env valueFrom, envFrom and volumes."""
    names = {s.config_map_ref.name for s in spec.env_from if s.config_map_ref is not None}
    for var in spec.env:
        if var.value_from is not None and var.value_from.config_map_key_ref is not None:
            names.add(var.value_from.config_map_key_ref.name)
    names.update(v.config_map.name for v in spec.volumes if v.config_map is not None)
    return names


def build_desired(
    *,
    namespace: str,
    name: str,
    uid: str,
    spec: DockerContainerSpec,
    refs: ResolvedRefs,
    import_gateway: str | None = None,
) -> DesiredContainer:
    """The container a DockerContainer asks for, with its references resolved.

    ``import_gateway`` is the address of the container network's gateway on its host, where the agent listens for
    the spec's serviceImports; every import's host name maps to it in the container's /etc/hosts.

    Raises :class:`MissingReferenceError` for a missing non-optional Secret, ConfigMap or key (optional ones are
    skipped, as Kubernetes does), :class:`UnusableValueError` for a value that cannot be used where it is
    referenced, and :class:`UnbuildableSpecError` for a spec that cannot become one container.
    """
    config: dict[str, Any] = {"Image": spec.image}
    if spec.command:
        # Docker, like Kubernetes, ignores the image's CMD once the entrypoint is overridden.
        config["Entrypoint"] = list(spec.command)
    if spec.args:
        config["Cmd"] = list(spec.args)
    if spec.working_dir is not None:
        config["WorkingDir"] = clean_path(spec.working_dir)
    config["Env"] = [f"{key}={value}" for key, value in sorted(_resolve_env(spec, refs).items())]
    exposed, port_bindings = _ports(spec)
    if exposed:
        config["ExposedPorts"] = exposed
    if spec.health_check is not None:
        config["Healthcheck"] = _healthcheck(spec.health_check)
    config["StopTimeout"] = spec.stop_grace_period_seconds
    config["Labels"] = _labels(namespace=namespace, name=name, uid=uid, user=spec.labels)
    if spec.service_imports:
        targets = sorted({i.target(namespace) for i in spec.service_imports})
        config["Labels"] = dict(sorted({**config["Labels"], labels.IMPORTS: ",".join(targets)}.items()))

    binds, files, directories = _volumes(spec.volumes, refs)
    host_config: dict[str, Any] = {"RestartPolicy": {"Name": _RESTART_POLICIES[spec.restart_policy]}}
    if binds:
        host_config["Binds"] = binds
    if port_bindings:
        host_config["PortBindings"] = port_bindings
    if spec.service_imports:
        if import_gateway is None:
            raise UnbuildableSpecError("serviceImports: the address of the container network's gateway is not known")
        host_config["ExtraHosts"] = sorted(f"{i.host_name(namespace)}:{import_gateway}" for i in spec.service_imports)
    limits = spec.resources.limits if spec.resources is not None else None
    try:
        if limits is not None and limits.cpu is not None:
            host_config["NanoCpus"] = quantities.cpu_to_nanocpus(limits.cpu)
        if limits is not None and limits.memory is not None:
            host_config["Memory"] = quantities.memory_to_bytes(limits.memory)
    except quantities.InvalidQuantityError as exc:
        # Admission rejects these already; a spec that got past it still gets a ContainersError, not a crash.
        raise UnbuildableSpecError(f"resources.limits: {exc}") from exc
    config["HostConfig"] = host_config

    spec_hash = _hash(config, files, directories)
    config["Labels"] = dict(sorted({**config["Labels"], labels.SPEC_HASH: spec_hash}.items()))
    return DesiredContainer(
        container_name=container_name(namespace=namespace, name=name),
        image=spec.image,
        pull_policy=spec.effective_image_pull_policy,
        create_config=config,
        files=files,
        directories=directories,
        spec_hash=spec_hash,
    )


def files_tar(files: Iterable[FileToCopy], *, directories: Iterable[str] = ()) -> bytes:
    """A tar archive of the directories (mode 0755) and files, owned by root, to extract at ``/``.

    Member names are the absolute paths without the leading ``/``. Directories come first, parents before
    children. Only the given directories get entries: an entry for an existing directory such as ``/tmp`` would
    reset its mode, and Docker creates missing ancestors (0755, root) by itself. Timestamps are zero so the same
    input always gives the same bytes.
    """
    buffer = io.BytesIO()
    # PAX: paths may exceed ustar's 100/155-character limits.
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted(set(directories)):
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = DIRECTORY_MODE
            tar.addfile(info)
        for item in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(item.path.lstrip("/"))
            info.size = len(item.content)
            info.mode = item.mode
            tar.addfile(info, io.BytesIO(item.content))
    return buffer.getvalue()


def clean_path(path: str) -> str:
    """An absolute path cleaned like Go's ``filepath.Clean`` (Docker cleans WorkingDir the same way)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


# --- Environment -----------------------------------------------------------------------------------------------


_Value = bytes | str


def _find_object(
    objects: Mapping[str, Mapping[str, _Value]], *, kind: str, name: str, optional: bool, field: str
) -> Mapping[str, _Value] | None:
    """The object's data; None when it is missing and optional."""
    data = objects.get(name)
    if data is None and not optional:
        raise MissingReferenceError(kind=kind, object_name=name, key=None, field=field)
    return data


def _find_value(
    objects: Mapping[str, Mapping[str, _Value]], *, kind: str, name: str, key: str, optional: bool, field: str
) -> _Value | None:
    """One key's value; None when the object or the key is missing and optional (optional covers both)."""
    data = _find_object(objects, kind=kind, name=name, optional=optional, field=field)
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        raise MissingReferenceError(kind=kind, object_name=name, key=key, field=field)
    return data[key]


def _env_text(raw: bytes | str, *, kind: str, name: str, key: str, field: str) -> str:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnusableValueError(
                kind=kind, object_name=name, key=key, field=field, reason="is not UTF-8 text (mount it as a file)"
            ) from None
    else:
        text = raw
    if "\x00" in text:
        # execve cannot pass a NUL byte; Docker would fail at start with a less helpful message.
        raise UnusableValueError(
            kind=kind, object_name=name, key=key, field=field, reason="contains a NUL byte (mount it as a file)"
        )
    return text


def _resolve_env(spec: DockerContainerSpec, refs: ResolvedRefs) -> dict[str, str]:
    """envFrom in order, then env in order; a later definition of a name wins, as in Kubernetes."""
    env: dict[str, str] = {}
    for index, source in enumerate(spec.env_from):
        objects: Mapping[str, Mapping[str, _Value]]
        ref: SecretEnvSource | ConfigMapEnvSource
        if source.secret_ref is not None:
            kind, ref, objects, field = SECRET, source.secret_ref, refs.secrets, f"envFrom[{index}].secretRef"
        elif source.config_map_ref is not None:
            kind, ref, objects = CONFIG_MAP, source.config_map_ref, refs.config_maps
            field = f"envFrom[{index}].configMapRef"
        else:  # the model guarantees exactly one source
            continue
        data = _find_object(objects, kind=kind, name=ref.name, optional=ref.optional, field=field)
        for key in sorted(data or {}):
            assert data is not None
            env[(source.prefix or "") + key] = _env_text(data[key], kind=kind, name=ref.name, key=key, field=field)
    for var in spec.env:
        if var.value_from is None:
            env[var.name] = var.value or ""
            continue
        selector: SecretKeySelector | ConfigMapKeySelector
        if var.value_from.secret_key_ref is not None:
            kind, selector, objects = SECRET, var.value_from.secret_key_ref, refs.secrets
            field = f"env[{var.name}].valueFrom.secretKeyRef"
        elif var.value_from.config_map_key_ref is not None:
            kind, selector, objects = CONFIG_MAP, var.value_from.config_map_key_ref, refs.config_maps
            field = f"env[{var.name}].valueFrom.configMapKeyRef"
        else:  # the model guarantees exactly one source
            continue
        value = _find_value(
            objects, kind=kind, name=selector.name, key=selector.key, optional=selector.optional, field=field
        )
        if value is not None:  # optional and missing: unset (a value from envFrom stays, as in Kubernetes)
            env[var.name] = _env_text(value, kind=kind, name=selector.name, key=selector.key, field=field)
    return env


# --- Ports, health, labels -------------------------------------------------------------------------------------


def _ports(spec: DockerContainerSpec) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, str]]]]:
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in spec.ports:
        key = port_key(port.container_port, port.protocol.value)
        exposed[key] = {}
        if port.host_port is not None:
            host_ip = str(ipaddress.ip_address(port.host_ip)) if port.host_ip is not None else ""
            bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": str(port.host_port)})
    sorted_bindings = {
        key: sorted(values, key=lambda b: (b["HostIp"], int(b["HostPort"]))) for key, values in sorted(bindings.items())
    }
    return dict(sorted(exposed.items())), sorted_bindings


def port_key(container_port: int, protocol: str) -> str:
    """Docker's name of a container port: ``80/tcp``."""
    return f"{container_port}/{protocol.lower()}"


def _healthcheck(check: HealthCheck) -> dict[str, Any]:
    if check.exec_ is not None:
        test = ["CMD", *check.exec_.command]
    elif check.shell is not None:
        test = ["CMD-SHELL", check.shell.command]
    else:  # the model guarantees exactly one
        raise UnbuildableSpecError("healthCheck needs exec or shell")
    return {
        "Test": test,
        "Interval": check.interval_seconds * _NANOS_PER_SECOND,
        "Timeout": check.timeout_seconds * _NANOS_PER_SECOND,
        "Retries": check.retries,
        "StartPeriod": check.start_period_seconds * _NANOS_PER_SECOND,
    }


def _labels(*, namespace: str, name: str, uid: str, user: Mapping[str, str]) -> dict[str, str]:
    reserved = sorted(key for key in user if labels.is_reserved(key))
    if reserved:
        # The API rejects these at admission; a spec that got past it must not overwrite our identity.
        raise UnbuildableSpecError(f"labels: keys under {labels.PREFIX} are reserved: {reserved}")
    identity = {
        labels.MANAGED: labels.MANAGED_VALUE,
        labels.UID: uid,
        labels.NAMESPACE: namespace,
        labels.NAME: name,
    }
    return dict(sorted({**user, **identity}.items()))


# --- Volumes ---------------------------------------------------------------------------------------------------


def _check_bind_path(path: str, *, field: str) -> str:
    if ":" in path:
        # Binds are "source:target[:ro]"; a colon would be read as a separator (or an option).
        raise UnbuildableSpecError(f"{field}: {path!r} contains ':', which Docker binds cannot express")
    return path


def _is_at_or_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _projected(
    data: Mapping[str, _Value],
    items: list[KeyToPath],
    *,
    default_mode: int,
    optional: bool,
    kind: str,
    name: str,
    field: str,
) -> list[tuple[str, _Value, int]]:
    """(relative path, content, mode) of each projected key: all keys named as themselves, or the listed items."""
    if not items:
        return [(key, data[key], default_mode) for key in sorted(data)]
    result: list[tuple[str, _Value, int]] = []
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise MissingReferenceError(kind=kind, object_name=name, key=item.key, field=field)
        result.append((item.path, data[item.key], item.mode if item.mode is not None else default_mode))
    return result


def _volume_files(volume: Volume, refs: ResolvedRefs, *, field: str) -> list[tuple[str, _Value, int]]:
    """The files of a Secret or ConfigMap volume (empty for a missing optional object)."""
    objects: Mapping[str, Mapping[str, _Value]]
    if volume.secret is not None:
        source: SecretVolumeSource | ConfigMapVolumeSource = volume.secret
        kind, name, objects, field = SECRET, volume.secret.secret_name, refs.secrets, f"{field}.secret"
    elif volume.config_map is not None:
        source = volume.config_map
        kind, name, objects, field = CONFIG_MAP, volume.config_map.name, refs.config_maps, f"{field}.configMap"
    else:
        raise UnbuildableSpecError(f"{field}: needs hostPath, dockerVolume, secret or configMap")
    data = _find_object(objects, kind=kind, name=name, optional=source.optional, field=field)
    if data is None:
        return []
    return _projected(
        data,
        source.items,
        default_mode=source.default_mode,
        optional=source.optional,
        kind=kind,
        name=name,
        field=field,
    )


def _volumes(volumes: list[Volume], refs: ResolvedRefs) -> tuple[list[str], tuple[FileToCopy, ...], tuple[str, ...]]:
    binds: list[tuple[str, str]] = []  # (target, bind string)
    files: dict[str, FileToCopy] = {}
    directories: set[str] = set()
    for volume in volumes:
        target = clean_path(volume.mount_path)
        field = f"volumes[{volume.name}]"
        if target == "/":
            raise UnbuildableSpecError(f"{field}.mountPath: a volume cannot be mounted on / (the container's root)")
        suffix = ":ro" if volume.read_only else ""
        if volume.host_path is not None or volume.docker_volume is not None:
            _check_bind_path(target, field=f"{field}.mountPath")
            if volume.host_path is not None:
                source = _check_bind_path(clean_path(volume.host_path.path), field=f"{field}.hostPath.path")
            else:
                assert volume.docker_volume is not None
                source = volume.docker_volume.name
            binds.append((target, f"{source}:{target}{suffix}"))
            continue
        directories.add(target)
        for relative, content, mode in _volume_files(volume, refs, field=field):
            path = clean_path(f"{target}/{relative}")
            if path == target or not _is_at_or_under(path, target):
                raise UnbuildableSpecError(f"{field}: item path {relative!r} leaves the mount point")
            if path in files:
                raise UnbuildableSpecError(f"{field}: two files map to {path}")
            raw = content.encode("utf-8") if isinstance(content, str) else content
            files[path] = FileToCopy(path=path, content=raw, mode=mode)
            parent = path.rsplit("/", 1)[0]
            while parent != target:
                directories.add(parent)
                parent = parent.rsplit("/", 1)[0]
    clashing = sorted(set(files) & directories)
    if clashing:
        raise UnbuildableSpecError(f"volumes: {clashing[0]} is both a file and a directory")
    for target, _bind in binds:
        # Docker mounts binds and volumes while extracting an archive, so a file under one would be written to
        # the Docker host or into the named volume, not into the container.
        for path in sorted({*files, *directories}):
            if _is_at_or_under(path, target):
                raise UnbuildableSpecError(
                    f"volumes: Secret/ConfigMap path {path} lies inside the hostPath/dockerVolume mount {target}"
                )
    return (
        [bind for _target, bind in sorted(binds)],
        tuple(files[path] for path in sorted(files)),
        tuple(sorted(directories)),
    )


# --- Hash ------------------------------------------------------------------------------------------------------


def _hash(config: Mapping[str, Any], files: tuple[FileToCopy, ...], directories: tuple[str, ...]) -> str:
    document = {
        "scheme": HASH_SCHEME,
        "config": config,
        "files": [[f.path, f.mode, hashlib.sha256(f.content).hexdigest()] for f in files],
        "directories": list(directories),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:SPEC_HASH_LENGTH]
