"""The leader writes its access API CA into the APIService's caBundle, so kube-apiserver verifies the operator's
serving certificate (never insecureSkipTLSVerify), and a new leader's new CA is trusted as soon as it serves."""

from __future__ import annotations

import asyncio
import base64

import structlog

from dockyard_operator.access import protocol
from dockyard_operator.access.server import AccessServer
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import APISERVICES

log = structlog.get_logger("dockyard.access")


async def publish_ca_bundle(kube: KubeClient, server: AccessServer) -> None:
    if server.ca_file is None:
        return
    pem = await asyncio.to_thread(server.ca_file.read_bytes)
    patch = {"spec": {"caBundle": base64.b64encode(pem).decode()}}
    try:
        await kube.merge_patch(APISERVICES, protocol.API_SERVICE, patch)
    except kube_errors.NotFoundError:
        log.warning("no APIService to trust the access API; logs/exec/port-forward need it", name=protocol.API_SERVICE)
    except kube_errors.KubeError as exc:
        log.warning("cannot publish the access API CA", name=protocol.API_SERVICE, error=str(exc))
