"""Reading a request body: JSON only, validated by a marshmallow schema."""

from flask import request
from marshmallow import Schema, ValidationError

from api.errors import Problem

# No request the PWA or a passkey ceremony sends nests deeper than a few levels;
# far deeper input only exists to exhaust the parser's (or a later walker's) stack.
MAX_JSON_DEPTH = 32


def json_body() -> object:
    """The parsed JSON body, or a specific 415/400 problem."""
    if not request.is_json:
        raise Problem(415, "Unsupported Media Type",
                      "The request body must be JSON (Content-Type: application/json).")
    try:
        data = request.get_json(silent=True)
        too_deep = data is not None and depth(data) > MAX_JSON_DEPTH
    except RecursionError:  # the parser's own stack ran out first
        too_deep = True
    if too_deep:
        raise Problem(400, "JSON nested too deeply",
                      f"The request body nests arrays or objects more than {MAX_JSON_DEPTH} "
                      "levels deep.", type_="json-too-deep")
    if data is None:
        raise Problem(400, "Malformed JSON",
                      "The request body is not valid JSON.", type_="malformed-json")
    return data


def depth(value: object) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (iterative: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in node)
    return deepest


def load_body(schema: Schema) -> dict:
    """Parse and validate the body; a ValidationError becomes a 422 per field."""
    return schema.load(json_body())


def no_nul(value: str) -> None:
    """A marshmallow validator: PostgreSQL text cannot hold NUL, so refuse it at the door
    (a clear 422 naming the field) rather than fail on insert (a 500)."""
    if isinstance(value, str) and "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")


def endpoint_name() -> str:
    """The view answering this request, as the access log names it."""
    return request.endpoint or request.path
