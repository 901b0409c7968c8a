"""Forwarding headers (X-Forwarded-For, -Proto, -Host) are trusted only behind nginx.

With QORGAU_PROXY_COUNT=1 the application sits behind exactly one proxy (the
project's nginx, which overwrites these headers on every request), so werkzeug's
ProxyFix takes the client address, scheme and host from them. With the default
of 0 they are ignored: anyone can send them to a server that faces the network.
Chains of proxies are refused rather than guessed at.
"""

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def proxy_count(app: Flask) -> int:
    value = app.config.get("PROXY_COUNT", 0)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in (0, 1):
        raise ValueError(
            f"PROXY_COUNT must be 0 (no proxy in front) or 1 (behind the project's nginx), "
            f"not {value!r}"
        )
    return value


def configure_proxy(app: Flask) -> None:
    """Wrap the WSGI app in ProxyFix when configured to sit behind one proxy."""
    if proxy_count(app) == 1:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
