"""Reading a request body: JSON only, validated by a marshmallow schema."""

from flask import request
from marshmallow import Schema

from api.errors import Problem


def json_body() -> object:
    """The parsed JSON body, or a specific 415/400 problem."""
    if not request.is_json:
        raise Problem(415, "Unsupported Media Type",
                      "The request body must be JSON (Content-Type: application/json).")
    data = request.get_json(silent=True)
    if data is None:
        raise Problem(400, "Malformed JSON",
                      "The request body is not valid JSON.", type_="malformed-json")
    return data


def load_body(schema: Schema) -> dict:
    """Parse and validate the body; a ValidationError becomes a 422 per field."""
    return schema.load(json_body())
