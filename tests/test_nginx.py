"""The real nginx (Debian's binary) with the project's own config, in front of gunicorn.

Each nginx here is rendered by nginx/render.py for loopback ports under a tmp
prefix, with a self-signed certificate made by the test, and runs in the
foreground; gunicorn runs the real app on a migrated SQLite database. Both are
stopped in teardown. Helpers: tests/nginx_helpers.py; shared fixtures: conftest.py.
"""

import gzip
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.browser import PWA
from tests.nginx_helpers import (
    BODY_LIMIT,
    HOST,
    IMMUTABLE,
    Nginx,
    Reply,
    assert_problem,
    assert_security_headers,
    fetch,
    free_port,
    nginx_command,
    render,
    tls_context,
)


@pytest.fixture(scope="module")
def site_root(tmp_path_factory) -> Path:
    """A copy of pwa/ plus one file of each kind the config treats specially."""
    root = tmp_path_factory.mktemp("pwa") / "pwa"
    shutil.copytree(PWA, root)
    (root / "js" / "chunk.0123abcd4567.js").write_text("export const x = 1;\n" * 40)
    if not (root / "sw.js").exists():
        (root / "sw.js").write_text("// fixture service worker\n")
    if not (root / "manifest.webmanifest").exists():
        (root / "manifest.webmanifest").write_text(json.dumps({"name": "Qorgau"}))
    return root


@pytest.fixture(scope="module")
def site(start_nginx, gunicorn, site_root) -> Nginx:
    return start_nginx(gunicorn, site_root)


def test_shipped_config_passes_nginx_t(tmp_path, certificate):
    """The production defaults (only certificate, log and temp paths moved into tmp)."""
    conf = render.render(tmp_path / "conf", cert=str(certificate[0]), key=str(certificate[1]),
                         log_dir=str(tmp_path), state_dir=str(tmp_path))
    text = conf.read_text()
    assert "listen 443 ssl http2 default_server;" in text and "listen 80;" in text
    assert "server 127.0.0.1:8000;" in text and "client_max_body_size 262144;" in text
    assert not re.search(r"\$\{[A-Z]", text), "a placeholder was left unrendered"
    result = subprocess.run(nginx_command(tmp_path, conf, "-t"), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_body_limit_matches_the_api():
    from api.config import DEFAULTS

    assert int(render.DEFAULTS["body_limit"]) == DEFAULTS["MAX_CONTENT_LENGTH"] == BODY_LIMIT


def _blocks(text: str) -> list[tuple[str, str]]:
    """(header, body) of every `location ... { }` block, skipping quotes and comments."""
    text = re.sub(r"#[^\n]*", "", text)
    tokens = re.finditer(r"'[^']*'|\"[^\"]*\"|[{}]|[^{}'\"]+", text)
    stack: list[tuple[str, int]] = []
    header_start, out = 0, []
    for tok in tokens:
        if tok.group() == "{":
            header = text[header_start:tok.start()].strip().split(";")[-1].strip()
            stack.append((header, tok.end()))
            header_start = tok.end()
        elif tok.group() == "}":
            header, start = stack.pop()
            if header.startswith("location"):
                out.append((header, text[start:tok.start()]))
            header_start = tok.end()
        elif tok.group()[0] not in "'\"" and ";" in tok.group():
            header_start = tok.start() + tok.group().rindex(";") + 1
    assert not stack
    return out


def test_every_location_includes_the_security_headers(tmp_path):
    conf = render.render(tmp_path / "conf")
    blocks = _blocks(conf.read_text())
    assert len(blocks) >= 15
    for header, body in blocks:
        assert "include snippets/security-headers.conf;" in body, header


def test_render_refuses_unsafe_values(tmp_path):
    with pytest.raises(ValueError):
        render.render(tmp_path, server_name="evil.example; include /etc/passwd")
    with pytest.raises(ValueError):
        render.render(tmp_path, body_limit="lots")


# --- TLS, HTTP/2, redirects, unknown hosts ---------------------------------------------

@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_modern_protocols_and_http2(site):
    ctx = tls_context(site)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST) as tls:
        assert tls.version() == "TLSv1.3"
        assert tls.selected_alpn_protocol() == "h2"
    ctx12 = tls_context(site)
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=5) as raw, \
            ctx12.wrap_socket(raw, server_hostname=HOST) as tls:
        assert tls.version() == "TLSv1.2"
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=5) as raw, \
            pytest.raises(ssl.SSLError):
        old.wrap_socket(raw, server_hostname=HOST)


def test_http_redirects_to_https(site):
    conn = http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=5)
    conn.request("GET", "/api/health?x=1", headers={"Host": HOST})
    response = conn.getresponse()
    assert response.status == 301
    assert response.headers["Location"] == f"https://{HOST}:{site.https_port}/api/health?x=1"
    conn.close()


def test_unknown_hosts_are_dropped(site):
    conn = http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=5)
    conn.request("GET", "/", headers={"Host": "evil.example"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=5) as raw, \
            pytest.raises(ssl.SSLError):
        tls_context().wrap_socket(raw, server_hostname="evil.example")
    # No SNI at all (a scanner on the bare address): no certificate either.
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=5) as raw, \
            pytest.raises(ssl.SSLError):
        tls_context().wrap_socket(raw)
    # The right SNI with a forged Host header: closed without an answer.
    conn = http.client.HTTPSConnection(HOST, site.https_port, timeout=5,
                                       context=tls_context(site))
    conn.request("GET", "/", headers={"Host": "evil.example"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()


# --- static files: headers and caching ---------------------------------------------------

@pytest.mark.parametrize(("path", "content_type", "cache"), [
    ("/", "text/html", "no-cache"),
    ("/index.html", "text/html", "no-cache"),
    ("/sw.js", "application/javascript", "no-cache"),
    ("/manifest.webmanifest", "application/manifest+json", "no-cache"),
    ("/js/app.js", "application/javascript", "no-cache"),
    ("/css/app.css", "text/css", "no-cache"),
    ("/js/chunk.0123abcd4567.js", "application/javascript", IMMUTABLE),
])
def test_static_files(site, path, content_type, cache):
    reply = fetch(site, "GET", path)
    assert reply.status == 200
    assert reply.header("Content-Type").split(";")[0] == content_type
    assert reply.header("Cache-Control") == cache
    assert reply.header("ETag")
    assert_security_headers(reply)


def test_revalidation_answers_304_with_headers(site):
    first = fetch(site, "GET", "/js/app.js")
    reply = fetch(site, "GET", "/js/app.js", headers={"If-None-Match": first.header("ETag")})
    assert reply.status == 304
    assert reply.header("Cache-Control") == "no-cache"
    assert_security_headers(reply)


@pytest.mark.parametrize("path", ["/nope.js", "/js/missing.0123abcd4567.js", "/js/"])
def test_missing_static_file_is_404_not_cached(site, path):
    reply = fetch(site, "GET", path)
    assert reply.status == 404
    assert reply.header("Cache-Control") == "no-store"
    assert reply.header("Content-Type").startswith("text/plain")
    assert_security_headers(reply)


def test_other_methods_on_static_files(site):
    reply = fetch(site, "POST", "/index.html", body=b"x")
    assert reply.status == 405
    assert_security_headers(reply)
    assert reply.header("Cache-Control") is None


def test_gzip_for_text(site):
    for path in ("/js/i18n.js", "/api/openapi.json"):
        reply = fetch(site, "GET", path, headers={"Accept-Encoding": "gzip"})
        assert reply.status == 200
        assert reply.header("Content-Encoding") == "gzip", path
        assert "Accept-Encoding" in (reply.header("Vary") or "")
        assert gzip.decompress(reply.body)
        assert_security_headers(reply)


# --- the API through nginx -----------------------------------------------------------------

def test_api_health_through_nginx(site):
    reply = fetch(site, "GET", "/api/health")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    assert reply.json()["database"] == "ok"
    assert reply.header("Cache-Control") == "no-store"
    assert_security_headers(reply)


def test_api_keeps_its_own_cache_control(site):
    reply = fetch(site, "GET", "/api/v1/law/rules")
    assert reply.status == 200
    assert reply.header("Cache-Control") == "no-cache"  # set by the API, with an ETag
    assert_security_headers(reply)


def test_api_errors_pass_through(site):
    reply = fetch(site, "GET", "/api/v1/no-such-thing")
    problem = assert_problem(reply, 404)
    assert problem["instance"] == "/api/v1/no-such-thing"  # the API's own document


def test_oversize_body_is_413_problem(site):
    reply = fetch(site, "POST", "/api/v1/rules.json", body=b"x" * (BODY_LIMIT + 1),
                  headers={"Content-Type": "application/json"})
    problem = assert_problem(reply, 413)
    assert str(BODY_LIMIT) in problem["detail"]
    assert "instance" not in problem  # nginx answered, the API never saw it


def test_sync_batches_have_the_apis_larger_limit(site):
    """A full outbox flush (100 records with long notes) is larger than 256 KiB."""
    big = b"x" * (BODY_LIMIT * 2)
    reply = fetch(site, "POST", "/api/v1/incidents/sync", body=big,
                  headers={"Content-Type": "application/json"})
    # It reached the API, which asks for sign-in first.
    assert reply.status == 401
    assert reply.json()["instance"] == "/api/v1/incidents/sync"
    too_big = fetch(site, "POST", "/api/v1/incidents/sync", body=b"x" * (2 * 1024 * 1024 + 1),
                    headers={"Content-Type": "application/json"})
    assert "instance" not in assert_problem(too_big, 413)


def test_media_chunks_have_the_apis_chunk_limit(site):
    """An evidence chunk (api/media, MEDIA_MAX_CHUNK_BYTES: 1 MiB) passes nginx; more is 413."""
    path = "/api/v1/media/6f1c2a4e-1b2c-4d5e-8f90-123456789abc/chunks/0"
    reply = fetch(site, "PUT", path, body=b"x" * (1024 * 1024),
                  headers={"Content-Type": "application/octet-stream"})
    assert reply.status == 401  # it reached the API, which asks for sign-in first
    assert reply.json()["instance"] == path
    too_big = fetch(site, "PUT", path, body=b"x" * (1024 * 1024 + 1),
                    headers={"Content-Type": "application/octet-stream"})
    assert "instance" not in assert_problem(too_big, 413)


def test_body_at_the_limit_reaches_the_api(site):
    reply = fetch(site, "POST", "/api/health", body=b"x" * BODY_LIMIT,
                  headers={"Content-Type": "application/json"})
    problem = assert_problem(reply, 405)
    assert problem["instance"] == "/api/health"


def test_upstream_down_is_502_problem(start_nginx):
    server = start_nginx(f"127.0.0.1:{free_port()}")
    reply = fetch(server, "GET", "/api/health")
    assert_problem(reply, 502)
    assert reply.header("Retry-After") == "5"


def _hammer(server: Nginx, path: str, limit: int) -> list[Reply]:
    """Send up to `limit` requests from 8 keep-alive connections; stop at the first 429."""
    seen: list[Reply] = []

    def worker(n: int):
        conn = http.client.HTTPSConnection(HOST, server.https_port, timeout=10,
                                           context=tls_context(server))
        try:
            for _ in range(n):
                if any(r.status == 429 for r in seen):
                    return
                seen.append(fetch(server, "GET", path, conn=conn))
        finally:
            conn.close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, [limit // 8] * 8))
    return seen


def test_rate_limit_answers_429(start_nginx, gunicorn):
    server = start_nginx(gunicorn)
    replies = _hammer(server, "/api/v1/no-such-thing", 2000)
    limited = [r for r in replies if r.status == 429]
    assert limited, f"no 429 in {len(replies)} requests"
    # A carrier NAT's burst of outbox flushes fits before the limit bites.
    assert sum(r.status == 404 for r in replies) >= 300
    problem = assert_problem(limited[0], 429)
    assert "Try again" in problem["detail"]
    assert limited[0].header("Retry-After") == "1"


def test_sign_in_has_the_stricter_limit(start_nginx, gunicorn):
    server = start_nginx(gunicorn)
    replies = _hammer(server, "/api/v1/auth/no-such-ceremony", 400)
    limited = [r for r in replies if r.status == 429]
    assert limited, f"no 429 in {len(replies)} requests"
    assert 50 <= sum(r.status != 429 for r in replies) < 300
    assert_problem(limited[0], 429)
    assert limited[0].header("Retry-After") == "5"
    # Who-am-I at app start is in the ordinary zone, so it still answers.
    assert fetch(server, "GET", "/api/v1/auth/me").status != 429


def test_the_hazard_lookup_has_a_tight_limit_per_session(start_nginx, gunicorn):
    server = start_nginx(gunicorn)
    path = "/api/v1/hazards/lookup?address=%D0%90%D0%B1%D0%B0%D1%8F%2010"
    mine = {"Cookie": "qorgau_session=phone-one"}
    replies = [fetch(server, "GET", path, headers=mine) for _ in range(14)]
    # Ten at once (and the first of the rate), then refused: the session has no
    # sign-in here, so what passes is the API's own 401.
    assert [r.status for r in replies[:10]] == [401] * 10
    limited = [r for r in replies if r.status == 429]
    assert len(limited) >= 3
    problem = assert_problem(limited[0], 429)
    assert "address look-ups" in problem["detail"]
    assert limited[0].header("Retry-After") == "10"
    # Another session from the same address has its own allowance; other API
    # paths are not touched by this zone.
    assert fetch(server, "GET", path, headers={"Cookie": "qorgau_session=phone-two"}) \
        .status == 401
    assert fetch(server, "GET", "/api/v1/hazards/region", headers=mine).status == 401
# --- every error under /api/ is problem+json, nginx's own included ----------------------

NGINX_ERRORS = {400: "= /.qorgau/errors/400", 404: "@api_404", 413: "@api_413",
                414: "= /.qorgau/errors/414", 494: "=431 = /.qorgau/errors/431",
                500: "@api_500", 502: "@api_502", 503: "@api_503", 504: "@api_504"}


def test_every_error_nginx_makes_under_api_has_a_problem_location(tmp_path, certificate):
    """Each /api/ location maps every status nginx itself may produce there to a named
    location that answers problem+json with that status (the 503 of the syncs-in-flight
    limit is provoked in tests/test_nginx_shedding.py; the others here and below)."""
    conf = render.render(tmp_path / "conf", cert=str(certificate[0]),
                         key=str(certificate[1]), log_dir=str(tmp_path),
                         state_dir=str(tmp_path))
    errors = (conf.parent / "snippets" / "api-errors.conf").read_text()
    mapped = dict(re.findall(r"^error_page (\d+) (.+);", errors, re.M))
    assert {int(k): v for k, v in mapped.items()} == \
        {k: v.replace("= /", "/") for k, v in NGINX_ERRORS.items()}
    text = conf.read_text()
    api_locations = re.findall(r"location [^{]*/api/[^{]*\{(.*?)\n        \}", text, re.S)
    # the API, sync, media chunks, sign-in, who-am-I, hazard look-up
    assert len(api_locations) == 6
    assert all("include snippets/api-errors.conf;" in body and "error_page 429" in body
               for body in api_locations)
    for status, name in [*NGINX_ERRORS.items(), (429, "@api_429"), (429, "@auth_429"),
                         (429, "@hazard_429")]:
        name = name.removeprefix("=431 ")
        body = re.search(rf"location {re.escape(name)} \{{(.*?)\n        \}}", text,
                         re.S).group(1)
        assert "default_type application/problem+json;" in body
        assert name.startswith("@") or "internal;" in body
        answered = 431 if status == 494 else status
        code, document = re.search(r"return (\d+) '(.*)';", body).groups()
        assert int(code) == answered and json.loads(document)["status"] == answered


@pytest.mark.parametrize("size", [6 * 1024, 10 * 1024])
def test_a_long_url_is_414_problem(site, size):
    path = "/api/v1/incidents?cursor=" + "a" * size
    problem = assert_problem(fetch(site, "GET", path), 414)
    assert "4 KB" in problem["detail"]


def test_a_long_url_outside_the_api_is_refused_the_same_way(site):
    # nginx refuses it before choosing a location: it cannot tell the paths apart.
    assert_problem(fetch(site, "GET", "/js/" + "a" * 6000), 414)


def test_a_url_just_under_the_limit_reaches_the_api(site):
    reply = fetch(site, "GET", "/api/v1/incidents?cursor=" + "a" * 3900)
    assert reply.status == 401 and reply.header("Content-Type") == "application/problem+json"
    assert reply.json()["instance"] == "/api/v1/incidents"  # the API's own answer


def test_a_huge_header_is_431_problem(site):
    reply = fetch(site, "GET", "/api/health", headers={"Cookie": "a=" + "b" * 6000})
    assert_problem(reply, 431)


def test_malformed_request_is_400_problem(site):
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=10) as raw, \
            tls_context(site).wrap_socket(raw, server_hostname=HOST) as conn:
        conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nHost: twice\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == 400


def test_upstream_too_slow_is_504_problem(start_nginx):
    """gunicorn stuck: a listener that takes the connection and never answers."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        server = start_nginx(f"127.0.0.1:{silent.getsockname()[1]}", api_timeout="1s")
        reply = fetch(server, "GET", "/api/health")
        assert_problem(reply, 504)
        assert reply.header("Retry-After") == "5"
    finally:
        silent.close()
