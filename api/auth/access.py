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

from flask import Flask, g, request

from api.auth.models import AuthSession
from api.auth.sessions import find_session
from api.errors import Problem
from api.orgs.models import Person, Role

SESSION_COOKIE = "qorgau_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_access(app: Flask) -> None:
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


