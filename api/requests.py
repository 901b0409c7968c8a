"""Reading a request body: JSON only, validated by a marshmallow schema.

`Schema` here is the base of every schema in the API: whatever a request
sends (body, query string; any field, list item, object key, nested or not)
is refused with a 422 naming the field when it holds a character the
database cannot store, before any field is read.
"""

import re

import marshmallow
from flask import request
from marshmallow import ValidationError, fields

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


def load_body(schema: marshmallow.Schema) -> dict:
    """Parse and validate the body; a ValidationError becomes a 422 per field."""
    return schema.load(json_body())


# What PostgreSQL text and jsonb cannot hold: NUL, and UTF-16 surrogates. JSON's
# "\ud83d" escape (half of an emoji, as a string cut in the middle of a pair
# gives) parses in Python to a lone surrogate, which has no UTF-8 form: psycopg
# fails on it with UnicodeEncodeError. (SQLite would store either; it is
# refused there too, so both databases answer alike.)
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = ("Must not contain NUL or an unpaired UTF-16 surrogate "
                      "(a character cut in half).")


def _printable_key(key: str) -> str:
    return UNSTORABLE.sub("\ufffd", key)


def unstorable(value, skip: frozenset = frozenset()):
    """marshmallow-style errors for every unstorable string in a parsed JSON
    value (keys included), or None. `skip`: keys of a top-level object whose
    values another schema checks (nested schemas check their own input)."""
    if isinstance(value, str):
        return [UNSTORABLE_MESSAGE] if UNSTORABLE.search(value) else None
    if isinstance(value, list):
        found = {i: e for i, item in enumerate(value) if (e := unstorable(item)) is not None}
        return found or None
    if isinstance(value, dict):
        found = {}
        for key, item in value.items():
            name = _printable_key(str(key))
            if isinstance(key, str) and UNSTORABLE.search(key):
                found[name] = [UNSTORABLE_MESSAGE + " (in the name)"]
            elif key not in skip and (errors := unstorable(item)) is not None:
                found[name] = errors
        return found or None
    return None


def _checks_itself(field: fields.Field) -> bool:
    """A nested schema (alone or in a list) checks its own input when it loads it."""
    while isinstance(field, fields.List):
        field = field.inner
    return isinstance(field, fields.Nested)


class Schema(marshmallow.Schema):
    """The base of every schema: input with characters the database cannot
    store is refused as a whole, with a 422 naming each such field."""

    def load(self, data, *, many=None, partial=None, unknown=None):
        many = self.many if many is None else many
        skip = frozenset(f.data_key or name for name, f in self.load_fields.items()
                         if _checks_itself(f))
        if many and isinstance(data, list):
            errors = {i: e for i, item in enumerate(data)
                      if (e := unstorable(item, skip if isinstance(item, dict) else frozenset()))}
        else:
            errors = unstorable(data, skip if isinstance(data, dict) else frozenset())
        if errors:
            raise ValidationError(errors)
        return super().load(data, many=many, partial=partial, unknown=unknown)


def endpoint_name() -> str:
    """The view answering this request, as the access log names it."""
    return request.endpoint or request.path
