"""The OpenAPI document, generated from the marshmallow schemas that validate.

Views describe themselves with @spec(...) (summary, tags), and let the schemas
do the work with @body_schema, @query_schema and @response_schema, which load
the request and dump the answer with the schema they declare and document it,
all from that one declaration. @spec may still declare body/query/responses for a view that
loads and dumps by hand. The generator walks the URL map, so an endpoint
without @spec is still listed (with its docstring), never missed.
"""

import functools
import re

from flask import Blueprint, Response, current_app, request
from marshmallow import Schema, fields

from api.config import VERSION
from api.requests import load_body

bp = Blueprint("openapi", __name__)


def spec(*, summary: str | None = None, body: type[Schema] | Schema | None = None,
         query: type[Schema] | Schema | None = None,
         responses: dict[int, type[Schema] | Schema | None] | None = None,
         tags: list[str] | None = None):
    """Attach OpenAPI metadata to a view. Put it above @require(...)."""

    def decorator(view):
        view.openapi = {"summary": summary, "body": body, "query": query,
                        "responses": responses or {}, "tags": tags or []}
        return view

    return decorator


def _schema_instance(schema):
    return schema() if isinstance(schema, type) else schema


def _declared(view) -> dict:
    """What @body_schema, @query_schema and @response_schema declared; shared by
    every wrapper of the view (functools.wraps copies the reference)."""
    return view.__dict__.setdefault("openapi_io", {})


def body_schema(schema: type[Schema] | Schema):
    """Load the JSON body with `schema` (a 422 naming each bad field) and pass it
    to the view as `body`. Put it below @require(...): the caller is checked first."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            return view(*args, body=load_body(_schema_instance(schema)), **kwargs)

        _declared(wrapper)["body"] = schema
        return wrapper

    return decorator


def query_schema(schema: type[Schema] | Schema):
    """Load the query string with `schema` and pass it to the view as `query`.
    Put it below @require(...)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            loaded = _schema_instance(schema).load(request.args.to_dict())
            return view(*args, query=loaded, **kwargs)

        _declared(wrapper)["query"] = schema
        return wrapper

    return decorator


def response_schema(schema: type[Schema] | Schema, status: int | tuple[int, ...] = 200):
    """Dump what the view returns with `schema` (a Response passes as it is; a
    (result, status) pair is dumped and keeps its status). `status` may name
    several answers of the same shape, e.g. (200, 201) for an upsert."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            result = view(*args, **kwargs)
            if isinstance(result, Response):
                return result
            if isinstance(result, tuple):
                result, code = result
                return _schema_instance(schema).dump(result), code
            return _schema_instance(schema).dump(result)

        for code in (status,) if isinstance(status, int) else status:
            _declared(wrapper).setdefault("responses", {})[code] = schema
        return wrapper

    return decorator


def _meta(view) -> dict:
    """@spec's metadata, with what the schema decorators declared."""
    meta = dict(getattr(view, "openapi", {}))
    declared = getattr(view, "openapi_io", {})
    for key in ("body", "query"):
        if declared.get(key) is not None:
            meta[key] = declared[key]
    if declared.get("responses"):
        meta["responses"] = {**(meta.get("responses") or {}), **declared["responses"]}
    return meta


# marshmallow field -> JSON Schema (the parts Qorgau uses).
_SIMPLE = {
    fields.UUID: {"type": "string", "format": "uuid"},
    fields.AwareDateTime: {"type": "string", "format": "date-time"},
    fields.DateTime: {"type": "string", "format": "date-time"},
    fields.Date: {"type": "string", "format": "date"},
    fields.Email: {"type": "string", "format": "email"},
    fields.Url: {"type": "string", "format": "uri"},
    fields.String: {"type": "string"},
    fields.Integer: {"type": "integer"},
    fields.Float: {"type": "number"},
    fields.Decimal: {"type": "number"},
    fields.Number: {"type": "number"},
    fields.Boolean: {"type": "boolean"},
    fields.Dict: {"type": "object"},
    fields.Raw: {},
}


def field_schema(field: fields.Field, components: dict) -> dict:
    from marshmallow import validate

    out: dict = {}
    if isinstance(field, fields.Nested):
        nested = _schema_instance(field.nested() if callable(field.nested)
                                  and not isinstance(field.nested, type) else field.nested)
        ref = {"$ref": "#/components/schemas/" + schema_component(nested, components)}
        out = {"type": "array", "items": ref} if field.many else ref
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": field_schema(field.inner, components)}
    elif isinstance(field, fields.Enum):
        out = {"type": "string",
               "enum": [m.value if field.by_value else m.name for m in field.enum]}
    else:
        for cls in type(field).__mro__:
            if cls in _SIMPLE:
                out = dict(_SIMPLE[cls])
                break
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            out["enum"] = list(validator.choices)
        elif isinstance(validator, validate.Length):
            key = "Items" if out.get("type") == "array" else "Length"
            if validator.min is not None:
                out[f"min{key}"] = validator.min
            if validator.max is not None:
                out[f"max{key}"] = validator.max
        elif isinstance(validator, validate.Range):
            if validator.min is not None:
                out["minimum"] = validator.min
            if validator.max is not None:
                out["maximum"] = validator.max
        elif isinstance(validator, validate.Regexp):
            out["pattern"] = validator.regex.pattern
    if field.allow_none:
        # OpenAPI 3.0 ignores siblings of a $ref, so a nullable reference is an allOf.
        out = {"allOf": [out], "nullable": True} if "$ref" in out else {**out, "nullable": True}
    if field.metadata.get("description"):
        out["description"] = field.metadata["description"]
    return out


def schema_component(schema: Schema, components: dict) -> str:
    name = type(schema).__name__.removesuffix("Schema") or "Schema"
    if name in components:
        return name
    components[name] = {}  # placeholder first: schemas may nest themselves
    props, required = {}, []
    for key, field in schema.fields.items():
        if field.load_only and field.dump_only:
            continue
        name_out = field.data_key or key
        props[name_out] = field_schema(field, components)
        if field.dump_only:
            props[name_out]["readOnly"] = True
        if field.load_only:
            props[name_out]["writeOnly"] = True
        if field.required:
            required.append(name_out)
    component = {"type": "object", "properties": props}
    if required:
        component["required"] = required
    components[name] = component
    return name


PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
    },
    "required": ["type", "title", "status"],
}


def _path_schema(converter) -> dict:
    """A path argument's schema, with the bounds its converter enforces."""
    name = type(converter).__name__
    if name == "IntegerConverter":
        out = {"type": "integer"}
        low = converter.min if converter.min is not None else (
            None if converter.signed else 0)
        if low is not None:
            out["minimum"] = low
        if converter.max is not None:
            out["maximum"] = converter.max
        return out
    if name == "UUIDConverter":
        return {"type": "string", "format": "uuid"}
    return {"type": "string"}


def build_document(app) -> dict:
    components: dict = {}
    paths: dict = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/"):
            continue
        view = app.view_functions[rule.endpoint]
        meta = _meta(view)
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        params = [{"name": arg, "in": "path", "required": True,
                   "schema": _path_schema(conv)}
                  for arg, conv in rule._converters.items()]
        roles = getattr(view, "required_roles", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            doc = (view.__doc__ or "").strip()
            operation: dict = {
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "summary": meta.get("summary") or (doc.splitlines()[0] if doc else rule.endpoint),
                "tags": meta.get("tags") or [rule.endpoint.split(".")[0]],
                "parameters": list(params),
                "responses": {},
            }
            if roles is not None:
                operation["security"] = [{"session": []}]
                operation["x-roles"] = sorted(r.value for r in roles)
            if meta.get("query") is not None:
                query = _schema_instance(meta["query"])
                for key, field in query.fields.items():
                    if field.dump_only:
                        continue
                    operation["parameters"].append({
                        "name": field.data_key or key, "in": "query",
                        "required": field.required,
                        "schema": field_schema(field, components)})
            if meta.get("body") is not None:
                name = schema_component(_schema_instance(meta["body"]), components)
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
            for status, schema in (meta.get("responses") or {200: None}).items():
                response = {"description": str(status)}
                if schema is not None:
                    name = schema_component(_schema_instance(schema), components)
                    response["content"] = {"application/json": {
                        "schema": {"$ref": f"#/components/schemas/{name}"}}}
                operation["responses"][str(status)] = response
            operation["responses"]["default"] = {
                "description": "An error (RFC 9457 problem details).",
                "content": {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}}
            paths.setdefault(path, {})[method.lower()] = operation
    components["Problem"] = PROBLEM_SCHEMA
    return {
        "openapi": "3.0.3",
        "info": {"title": "Qorgau API", "version": VERSION},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                            "name": "qorgau_session"}},
        },
    }


@functools.cache
def _cached_document(app_id: int) -> dict:
    return build_document(current_app)


@bp.get("/api/openapi.json")
@spec(summary="This document", tags=["meta"])
def openapi_json():
    """The OpenAPI 3 document for every endpoint."""
    return _cached_document(id(current_app._get_current_object()))
