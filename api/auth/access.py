"""Who is calling, and may they: the one place where roles are enforced.

Every view declares the roles it admits with @require(...). The session comes
from an HttpOnly cookie; every state-changing request must also carry the
session's CSRF token in the X-CSRF-Token header (the page reads it from
/api/v1/auth/me), so a form or script on another site cannot act for the person.
Scope within a role (whose incidents) is applied by each domain's queries from
the Person's station/post, through the helpers on Person.
"""

import functools
import hmac
import ipaddress
import os
import sys

import click
from flask import Flask, current_app, g, request

from api.auth.models import AuthSession
from api.auth.sessions import find_session
from api.errors import Problem
from api.orgs.models import Person, Role

SESSION_COOKIE = "qorgau_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_access(app: Flask) -> None:
    check_demo_bind(app)

    @app.before_request
    def _load_session():
        g.auth_session = find_session(request.cookies.get(SESSION_COOKIE))
        g.person = g.auth_session.person if g.auth_session else None


def current_person() -> Person | None:
    return g.get("person")


def current_session() -> AuthSession | None:
    return g.get("auth_session")


def check_csrf(session: AuthSession) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise Problem(403, "CSRF token missing or wrong",
                      f"Send the session's CSRF token in the {CSRF_HEADER} header.",
                      type_="csrf")


def require(*roles: Role):
    """Admit only signed-in people with one of `roles` (all roles if none are named)."""
    allowed = frozenset(roles) or frozenset(Role)

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            session = current_session()
            if session is None:
                raise Problem(401, "Sign-in required",
                              "Sign in with your passkey to continue.", type_="unauthenticated")
            check_csrf(session)
            if session.person.role not in allowed:
                raise Problem(403, "Forbidden",
                              "Your role does not allow this.", type_="forbidden")
            return view(*args, **kwargs)

        wrapper.required_roles = allowed  # read by the role-matrix test and OpenAPI
        return wrapper

    return decorator


def cookie_secure() -> bool:
    """Secure cookies everywhere except plain-HTTP localhost development."""
    return request.host.split(":")[0] not in {"localhost", "127.0.0.1", "[::1]"} or \
        request.is_secure


def set_session_cookie(response, token: str, session: AuthSession) -> None:
    response.set_cookie(SESSION_COOKIE, token, expires=session.expires_at, httponly=True,
                        samesite="Lax", secure=cookie_secure(), path="/")


def clear_session_cookie(response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=cookie_secure())




# --- the demo sign-in: the one-command local run only --------------------------

# Headers a reverse proxy adds: a proxied request is never "from this machine",
# even when the proxy itself connects over loopback.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_allowed() -> bool:
    """DEMO is on, and the request comes straight from this machine's loopback."""
    return (bool(current_app.config.get("DEMO"))
            and is_loopback(request.remote_addr)
            and not any(request.headers.get(h) for h in PROXY_HEADERS))


def check_demo_bind(app: Flask) -> None:
    """Refuse to start with DEMO on unless serving on loopback only.

    `flask run` builds the app inside its click command, so its --host (or
    FLASK_RUN_HOST) is in the click context; gunicorn is a production server,
    where the demo never belongs; QORGAU_HOST is what `./qorgau run` binds.
    Anything else that serves must pass through one of these, and the demo
    endpoints themselves also demand a loopback client (demo_allowed).
    """
    if not app.config.get("DEMO"):
        return
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.info_name == "run" and "host" in ctx.params:
        host = ctx.params.get("host")
        if not is_loopback(host):
            raise RuntimeError(f"QORGAU_DEMO is on: refusing to serve on {host!r}; "
                               "the demo sign-in is only for 127.0.0.1.")
    if "gunicorn" in sys.modules:
        raise RuntimeError("QORGAU_DEMO is on: the demo sign-in never runs under gunicorn.")
    host = os.environ.get("QORGAU_HOST")
    if host and not is_loopback(host):
        raise RuntimeError(f"QORGAU_DEMO is on: refusing QORGAU_HOST={host!r}; "
                           "the demo sign-in is only for 127.0.0.1.")


def check_origin() -> None:
    """Sign-in endpoints act before there is a session (and so a CSRF token): a
    browser's Origin header, when sent, must be one of ours. (A cross-site form
    cannot send the JSON these endpoints require, either.)"""
    origin = request.headers.get("Origin")
    if origin and origin not in current_app.config["ALLOWED_ORIGINS"]:
        raise Problem(403, "Origin not allowed",
                      f"Requests from {origin} are not accepted.", type_="origin")
