"""Which push endpoints the server will ever send to (no request forgery).

A push subscription's endpoint is a URL the browser got from its push service;
the server later POSTs to it from inside the network. So an endpoint must be
`https`, its host must resolve only to public addresses (not loopback, private,
link-local such as 169.254.169.254, CGNAT, multicast or reserved), and, unless an
administrator lifts it, its host must be one of the known push services
(PUSH_ENDPOINT_HOSTS in api/config.py; default: FCM, Mozilla autopush, Apple,
Windows; an empty list lifts the restriction, the address checks stay).

Checked when a device subscribes (a 422 naming `endpoint`) and again when the
worker sends: the worker resolves the host itself, checks the addresses and
connects to the address it checked (`PinnedAdapter`), so a DNS answer that
changes in between (rebinding) cannot lead it inside. It never follows a redirect.

PUSH_ALLOW_LOOPBACK_FOR_TESTS lets the test suite's loopback push service
(tests/push_service.py, plain http on 127.0.0.1) through; it is set by
tests/conftest.py only, and is never to be set in production.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class EndpointRefused(ValueError):
    """An endpoint the server will not send to; `temporary` when DNS failed."""

    def __init__(self, message: str, temporary: bool = False):
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class Policy:
    hosts: tuple[str, ...] | None  # None: any host with public addresses
    loopback: bool  # tests only: the loopback push service

    @classmethod
    def of(cls, config) -> Policy:
        hosts = config.get("PUSH_ENDPOINT_HOSTS")
        return cls(tuple(h.lower() for h in hosts) if hosts else None,
                   bool(config.get("PUSH_ALLOW_LOOPBACK_FOR_TESTS")))


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (the system resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def _host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def checked_addresses(host: str, port: int, scheme: str, policy: Policy) -> list[str]:
    """The host's addresses if all may be reached with `scheme`, else EndpointRefused."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as err:
        raise EndpointRefused("The push service's host name does not resolve.",
                              temporary=True) from err
    if not addresses:
        raise EndpointRefused("The push service's host name does not resolve.", temporary=True)
    if policy.loopback and all(_loopback(a) for a in addresses):
        return addresses  # the test suite's loopback push service
    if scheme != "https":
        raise EndpointRefused("Must be an https URL of a push service.")
    if not all(_public(a) for a in addresses):
        raise EndpointRefused("Must be a push service on the internet, not an address "
                              "inside a private network.")
    return addresses


def check_endpoint(url: str, policy: Policy) -> list[str]:
    """Refuse (EndpointRefused) an endpoint the server must not send to; its addresses."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as err:
        raise EndpointRefused("Must be an https URL of a push service.") from err
    if not host or parts.scheme not in ("https", "http") or parts.username or parts.password:
        raise EndpointRefused("Must be an https URL of a push service.")
    if parts.scheme != "https" and not policy.loopback:
        raise EndpointRefused("Must be an https URL of a push service.")
    host = host.rstrip(".").lower()
    port = port or (443 if parts.scheme == "https" else 80)
    loopback_name = policy.loopback and host in ("localhost", "127.0.0.1", "::1")
    if policy.hosts is not None and not loopback_name and not _host_allowed(host, policy.hosts):
        raise EndpointRefused("Must be the endpoint of a known push service "
                              f"({', '.join(policy.hosts)}).")
    return checked_addresses(host, port, parts.scheme, policy)


# ---------------------------------------------------------------------------
# Sending: connect only to an address just checked, never follow a redirect.


class _Pinned:
    """Resolve, check and connect to the checked address; TLS and the Host header
    still use the host name (urllib3 reads `_dns_host` only to open the socket)."""

    policy_of = staticmethod(lambda: Policy(None, False))
    scheme = "https"

    def _new_conn(self):
        name = self._dns_host
        addresses = checked_addresses(name.rstrip("."), self.port, self.scheme,
                                      self.policy_of())
        self._dns_host = addresses[0]
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


def pinned_session(policy_of, connections: int = 10) -> requests.Session:
    """A requests session for the push worker: no redirects, no proxies from the
    environment, and every connection to an address checked by `policy_of()`;
    up to `connections` kept alive per push service (one per sending thread)."""

    class PinnedHTTP(_Pinned, HTTPConnection):
        scheme = "http"

    class PinnedHTTPS(_Pinned, HTTPSConnection):
        scheme = "https"

    PinnedHTTP.policy_of = PinnedHTTPS.policy_of = staticmethod(policy_of)

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = PinnedHTTP

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = PinnedHTTPS

    class PinnedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}

    class NoRedirects(requests.Session):
        def request(self, *args, **kwargs):
            kwargs["allow_redirects"] = False
            return super().request(*args, **kwargs)

        def get_redirect_target(self, resp):
            return None  # never followed, whatever the caller asks

    session = NoRedirects()
    session.trust_env = False  # HTTPS_PROXY would make the proxy the address connected to
    adapter = PinnedAdapter(pool_maxsize=connections)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
