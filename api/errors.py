"""Every error leaves the API as RFC 9457 problem+json.

Views raise `Problem` (or let marshmallow's ValidationError propagate); the
handlers here turn that, and every werkzeug HTTPException, into a
problem document. A database that cannot be reached (down, restarting,
refusing connections) is a 503 with Retry-After, so clients back off and
send again (sync is idempotent); any other unexpected exception becomes a
500 with no stack trace.
"""

import contextlib

from flask import Flask, Response, json, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

PROBLEM_MIME = "application/problem+json"
PROBLEM_BASE = "https://qorgau.kz/problems/"
# Seconds a client is asked to wait when the database is unavailable
# (setting DB_UNAVAILABLE_RETRY_AFTER overrides).
DB_RETRY_AFTER_SECONDS = 5


class Problem(Exception):
    """An error a view wants the client to see, with its status and detail."""

    def __init__(self, status: int, title: str, detail: str | None = None,
                 type_: str | None = None, headers: dict | None = None, **extra):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extra = extra


def problem_response(status: int, title: str, detail: str | None = None,
                     type_: str | None = None, headers: dict | None = None,
                     **extra) -> Response:
    body = {"type": PROBLEM_BASE + (type_ or str(status)), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIME)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_errors(messages, prefix: str = "") -> list[dict]:
    """marshmallow's nested {field: [msg]} dict as a flat list of {field, message}.

    Nested fields are joined with dots and list indexes kept: `records.3.kind`.
    """
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_errors(value, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.extend({"field": prefix or "_body", "message": m} for m in messages)
    elif isinstance(messages, list):
        for value in messages:
            out.extend(flatten_errors(value, prefix))
    else:
        out.append({"field": prefix or "_body", "message": str(messages)})
    return out


def validation_problem(err: ValidationError) -> Response:
    errors = flatten_errors(err.messages)
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        422, "Validation failed", f"Invalid fields: {fields}",
        type_="validation", errors=errors,
    )


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(err: Problem):
        return problem_response(err.status, err.title, err.detail, err.type,
                                err.headers, **err.extra)

    @app.errorhandler(ValidationError)
    def _validation(err: ValidationError):
        return validation_problem(err)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        headers = {}
        if err.code == 405 and err.valid_methods:
            headers["Allow"] = ", ".join(err.valid_methods)
        retry_after = getattr(err, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        detail = err.description
        if err.code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            detail = f"The request body is larger than the limit of {limit} bytes."
        return problem_response(err.code or 500, err.name, detail, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        from api.db import database_unavailable_in

        cause = database_unavailable_in(err)
        if cause is not None:
            return _unavailable(cause)
        # Logged with its trace for operators; the client sees no internals.
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "Internal Server Error",
                                "An unexpected error occurred. It has been logged.")

    def _unavailable(cause: BaseException):
        from api.db import describe_unavailable

        # No trace and no SQL: its parameters could be a person's data or a token.
        app.logger.error("Database unavailable on %s %s: %s", request.method, request.path,
                         describe_unavailable(cause))
        _forget_session()
        retry_after = str(app.config.get("DB_UNAVAILABLE_RETRY_AFTER", DB_RETRY_AFTER_SECONDS))
        return problem_response(
            503, "Service Unavailable",
            "The database cannot be reached just now; send the request again after "
            "Retry-After seconds.",
            type_="database-unavailable", headers={"Retry-After": retry_after})


def _forget_session() -> None:
    """Drop the request's session and its dead connection quietly: SQLAlchemy has
    marked a lost connection invalid, so the pool opens (and pre-pings) a new one
    for the next request once the database is back."""
    from api.extensions import db

    with contextlib.suppress(Exception):  # the connection is gone; this only tidies up
        db.session.rollback()
