"""Every /api/ endpoint, walked from the URL map, and the few anyone may call
signed out: shared by the role matrix (test_role_matrix.py) and the security tests."""

import uuid

# Endpoints anyone may call without signing in. Keep this list short and explicit.
PUBLIC = {
    "/api/health",
    "/api/openapi.json",
    "/api/v1/regions",
    "/api/v1/law/rules",
    "/api/v1/law/classify",
    "/api/v1/ledger/public-key",
    "/api/v1/auth/login/options",
    "/api/v1/auth/login/verify",
    "/api/v1/auth/register/options",
    "/api/v1/auth/register/verify",
    "/api/v1/auth/demo",
    "/api/v1/auth/demo/people",
    # The SMS gateway's webhook: no session, a signature with the shared secret (api/sms).
    "/api/v1/sms/inbound",
}


SAMPLE_ARGS = {"IntegerConverter": 1, "UUIDConverter": uuid.UUID(int=1)}


def api_endpoints(app):
    """(method, url, rule, view) for every /api/ route, path arguments filled in."""
    out = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        values = {name: SAMPLE_ARGS.get(type(conv).__name__, "x")
                  for name, conv in rule._converters.items()}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            url = adapter.build(rule.endpoint, values, method=method)
            out.append((method, url, rule.rule, app.view_functions[rule.endpoint]))
    return out
