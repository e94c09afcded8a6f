"""The watch reader against a scripted HTTP server: a long event line is read whole; a line beyond any sane
object size is a connection error (resume), never an unexpected exception (which forced a full relist).

The real API server cannot produce such lines (etcd refuses objects over 1.5 MiB), so the stream is scripted;
the real server path is covered in test_informer_against_the_api_server.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s_client

from dockyard_operator.kube import client as kube_client
from dockyard_operator.kube import errors
from dockyard_operator.kube.resources import CONFIGMAPS

JSON = dict[str, Any]


def _event(size: int) -> bytes:
    obj = {"metadata": {"name": "big", "namespace": "x", "resourceVersion": "5"}, "data": {"blob": "x" * size}}
    return json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    sizes = {"line": 0}

    async def watch(_: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(_)
        await response.write(_event(sizes["line"]))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/x/configmaps", watch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", sizes
    finally:
        await runner.cleanup()


def _client(url: str) -> kube_client.KubeClient:
    cfg = k8s_client.Configuration(host=url)
    return kube_client.KubeClient(k8s_client.ApiClient(cfg))


async def test_a_5_mib_event_is_read_whole(server: tuple[str, dict[str, int]]) -> None:
    """aiohttp's default line limit with this client is 4 MiB: readline() without a limit raised LineTooLong."""
    url, sizes = server
    sizes["line"] = 5 * 1024 * 1024
    kube = _client(url)
    try:
        events = [e async for e in kube.watch(CONFIGMAPS, namespace="x", resource_version="1", timeout_seconds=5,
                                              inactivity_timeout=10)]  # fmt: skip
    finally:
        await kube.close()
    assert len(events[0]["object"]["data"]["blob"]) == sizes["line"]


async def test_a_line_beyond_the_limit_is_a_connection_error(
    server: tuple[str, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, sizes = server
    monkeypatch.setattr(kube_client, "MAX_WATCH_EVENT", 64 * 1024)
    sizes["line"] = 200 * 1024
    kube = _client(url)
    try:
        with pytest.raises(errors.KubeConnectionError, match="exceeds"):
            async for _ in kube.watch(CONFIGMAPS, namespace="x", resource_version="1", timeout_seconds=5,
                                      inactivity_timeout=10):  # fmt: skip
                pass
    finally:
        await kube.close()


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [(410, "Expired", errors.GoneError), (500, "InternalError", errors.APIError), (429, "TooManyRequests",
                                                                                  errors.TooManyRequestsError)],
)  # fmt: skip
async def test_watch_error_events_become_the_matching_errors(code: int, reason: str, error: type[Exception]) -> None:
    """The API server reports a failed watch in-band, as an ERROR event carrying a Status: 410 means re-list."""
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
              "message": "too old resource version: 2 (215)"}  # fmt: skip
    line = json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(line)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/x/configmaps", watch)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    kube = _client(f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        with pytest.raises(error) as raised:
            async for _ in kube.watch(CONFIGMAPS, namespace="x", resource_version="2", timeout_seconds=5,
                                      inactivity_timeout=10):  # fmt: skip
                pass
        assert isinstance(raised.value, errors.APIError)
        assert raised.value.status == code
    finally:
        await kube.close()
        await runner.cleanup()


async def test_an_expired_continue_token_falls_back_to_one_unpaged_list() -> None:
    """Starting the paged list over would expire again on a busy cluster; client-go's pager lists once instead."""
    names = [f"cm-{i}" for i in range(5)]
    seen: list[str] = []

    def items(chosen: list[str]) -> list[JSON]:
        return [{"metadata": {"name": n, "namespace": "x", "resourceVersion": "9"}} for n in chosen]

    async def list_(request: web.Request) -> web.Response:
        seen.append(request.query_string)
        if "continue" in request.query:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                      "message": "The provided continue parameter is too old"}  # fmt: skip
            return web.json_response(status, status=410)
        if "limit" in request.query:
            return web.json_response({"kind": "ConfigMapList", "apiVersion": "v1", "items": items(names[:2]),
                                      "metadata": {"resourceVersion": "9", "continue": "tok"}})  # fmt: skip
        return web.json_response({"kind": "ConfigMapList", "apiVersion": "v1", "items": items(names),
                                  "metadata": {"resourceVersion": "12"}})  # fmt: skip

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/x/configmaps", list_)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    kube = _client(f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        listed = await kube.list(CONFIGMAPS, namespace="x", page_size=2)
    finally:
        await kube.close()
        await runner.cleanup()
    assert [i["metadata"]["name"] for i in listed["items"]] == names
    assert listed["metadata"]["resourceVersion"] == "12"
    assert len(seen) == 3
