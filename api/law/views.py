"""The law endpoints: the rules document and a stateless classifier.

Both are public and need no sign-in: the rules are published law, and
classifying facts sent in the request stores and reveals nothing. The PWA
fetches the rules before a user has enrolled, so it can classify offline.
"""

from flask import Blueprint, Response, current_app, request

from api.errors import Problem
from api.law import service
from api.law.schemas import ClassificationSchema, ClassifyRequestSchema
from api.openapi import body_schema, response_schema, spec

bp = Blueprint("law", __name__)


@bp.get("/rules")
@spec(summary="The Article 380-3 rules document", responses={200: None, 304: None},
      tags=["law"])
def get_rules():
    """The Article 380-3 rules document, with a strong ETag."""
    etag = service.rules_etag()
    # no-cache: clients may keep a copy but must revalidate, so a changed
    # law reaches phones on their next connection (a 304 costs a few bytes).
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    # If-None-Match uses the weak comparison (RFC 9110 13.1.2); "*" matches too.
    if request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(service.rules_bytes(), mimetype="application/json", headers=headers)


@bp.post("/classify")
@spec(summary="Classify an incident's facts (provisional; nothing is stored)", tags=["law"])
@body_schema(ClassifyRequestSchema)
@response_schema(ClassificationSchema)
def classify(body: dict):
    """Classify an incident's facts under Article 380-3 (provisional; nothing is stored)."""
    lang = body.pop("lang")
    try:
        result = service.classify(body, lang)
    except ValueError as err:
        # The schema should have caught it; if a fact still slips through, the
        # client hears which one rather than getting a 500.
        raise Problem(422, "Validation failed", str(err), type_="validation") from err
    except service.LawConfigError as err:
        current_app.logger.error("Law configuration error: %s", err)
        raise Problem(500, "Law configuration error", str(err),
                      type_="law-configuration") from err
    return result
