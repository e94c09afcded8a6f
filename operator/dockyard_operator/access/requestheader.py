"""Who is asking: the user kube-apiserver's aggregator names in request headers, trusted only on a connection
that presents the front-proxy client certificate (the requestheader CA and allowed names that the API server
publishes in kube-system/extension-apiserver-authentication, as every aggregated API server reads them)."""

from __future__ import annotations

import dataclasses
import json
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDictProxy

from dockyard_operator.access.errors import AccessError

AUTHENTICATION_CONFIGMAP = ("kube-system", "extension-apiserver-authentication")


@dataclasses.dataclass(frozen=True)
class RequestHeaderConfig:
    client_ca: str
    """PEM of the CA that signs the aggregator's (front-proxy) client certificate."""
    allowed_names: tuple[str, ...] = ()
    """Common names the front-proxy certificate may have; empty: any certificate of that CA."""
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)

    @classmethod
    def from_configmap(cls, data: Mapping[str, str]) -> RequestHeaderConfig:
        ca = data.get("requestheader-client-ca-file") or ""
        if not ca.strip():
            raise AccessError(
                "the API server publishes no requestheader-client-ca-file in kube-system/"
                "extension-apiserver-authentication: start kube-apiserver with --requestheader-client-ca-file"
            )

        def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = data.get(key)
            return tuple(json.loads(raw)) if raw else default

        return cls(
            client_ca=ca,
            allowed_names=names("requestheader-allowed-names", ()),
            username_headers=names("requestheader-username-headers", cls.username_headers),
            group_headers=names("requestheader-group-headers", cls.group_headers),
            extra_prefixes=names("requestheader-extra-headers-prefix", cls.extra_prefixes),
        )

    def server_context(self, *, cert_file: str, key_file: str) -> ssl.SSLContext:
        """TLS for the access API: a client certificate is checked against the front-proxy CA when presented.
        Optional, not required: discovery answers the aggregator's availability probe, which may come without."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_file, key_file)
        ctx.load_verify_locations(cadata=self.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    extra: dict[str, list[str]]
    uid: str = ""


def _common_name(peercert: Mapping[str, Any]) -> str:
    for rdn in peercert.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def authenticate(
    config: RequestHeaderConfig, peercert: Mapping[str, Any] | None, headers: CIMultiDictProxy[str]
) -> User:
    """The user named by the headers, if the connection carries a verified front-proxy certificate; else
    AccessError. (The TLS layer already verified the chain: a certificate is only present when it did.)"""
    if not peercert:
        raise AccessError("no front-proxy client certificate: this API is only served through kube-apiserver")
    name = _common_name(peercert)
    if config.allowed_names and name not in config.allowed_names:
        raise AccessError(f"client certificate {name!r} is not an allowed front proxy")
    user = next((headers[h] for h in config.username_headers if headers.get(h)), "")
    if not user:
        raise AccessError("the front proxy named no user")
    groups = tuple(g for h in config.group_headers for g in headers.getall(h, []))
    extra: dict[str, list[str]] = {}
    for key in dict.fromkeys(k.lower() for k in headers):  # each header once, however often it is repeated
        for prefix in config.extra_prefixes:
            if key.lower().startswith(prefix.lower()):
                # Keys are percent-encoded by the front proxy (a key may hold characters a header name cannot).
                name = urllib.parse.unquote(key[len(prefix) :]).lower()
                extra.setdefault(name, []).extend(headers.getall(key))
    return User(name=user, groups=groups, extra=extra)
