"""The real nginx (Debian's binary) with the project's own config, in front of
gunicorn: what test_nginx.py and test_nginx_browser.py share (their module-scoped
fixtures certificate, gunicorn and start_nginx are in conftest.py).

Each nginx here is rendered by nginx/render.py for loopback ports under a tmp
prefix, with a self-signed certificate made by the test, and runs in the
foreground; gunicorn runs the real app on a migrated SQLite database. Both are
stopped in teardown.
"""


import datetime
import http.client
import importlib.util
import ipaddress
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import CSP, ROOT

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
GUNICORN = Path(sys.executable).parent / "gunicorn"

def _load_render():
    """nginx/render.py (a standalone script, not part of the api package)."""
    path = ROOT / "nginx" / "render.py"
    spec = importlib.util.spec_from_file_location("qorgau_nginx_render", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_render()

HOST = "localhost"
BODY_LIMIT = 256 * 1024  # api/config.py MAX_CONTENT_LENGTH
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"

if not Path(NGINX).exists():  # `./qorgau test` installs it; never silently skipped in CI
    pytest.fail(f"nginx is not installed ({NGINX}); run ./qorgau test", pytrace=False)


# --- processes -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_health(port: int) -> bool:
    """Whether the API on 127.0.0.1:`port` answers /api/health with 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/api/health")
        return conn.getresponse().status == 200
    finally:
        conn.close()


def wait_for(check, what: str, proc: subprocess.Popen, log: Path, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{what} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class Nginx:
    prefix: Path
    conf: Path
    https_port: int
    http_port: int
    cert: Path
    proc: subprocess.Popen | None = None

    @property
    def origin(self) -> str:
        return f"https://{HOST}:{self.https_port}"


def nginx_command(prefix: Path, conf: Path, *extra: str) -> list[str]:
    return [NGINX, "-p", f"{prefix}/", "-c", str(conf), *extra,
            "-g", f"daemon off; pid {prefix}/nginx.pid; error_log stderr;"]


def render_for_test(prefix: Path, cert: Path, key: Path, pwa_root: Path, upstream: str,
                    **overrides) -> Nginx:
    https_port, http_port = free_port(), free_port()
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "state").mkdir(exist_ok=True)
    options = dict(
        server_name=HOST, https_listen=f"127.0.0.1:{https_port}",
        http_listen=f"127.0.0.1:{http_port}", cert=str(cert), key=str(key),
        pwa_root=str(pwa_root), upstream=upstream, body_limit=str(BODY_LIMIT),
        # Tests run as root or not; the workers run as whoever runs the test.
        user=pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else "",
        log_dir=str(prefix / "logs"), state_dir=str(prefix / "state"),
        acme_root=str(prefix / "acme"),
    )
    options.update(overrides)
    conf = render.render(prefix / "conf", **options)
    return Nginx(prefix, conf, https_port, http_port, cert)


# --- HTTP helpers -----------------------------------------------------------------

def tls_context(server: Nginx | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.cert)) if server else \
        ssl.create_default_context()
    if server is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get_all(name) or []
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)


def fetch(server: Nginx, method: str, path: str, body: bytes | None = None,
          headers: dict | None = None, conn: http.client.HTTPSConnection | None = None) -> Reply:
    own = conn is None
    conn = conn or http.client.HTTPSConnection(HOST, server.https_port, timeout=10,
                                               context=tls_context(server))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        if own:
            conn.close()


def assert_security_headers(reply: Reply) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert reply.header(name) == value, (name, reply.status)
    policy = reply.header("Permissions-Policy")
    assert policy and "geolocation=(self)" in policy
    assert "nginx/" not in (reply.header("Server") or "")


def assert_problem(reply: Reply, status: int) -> dict:
    assert reply.status == status
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.header("Cache-Control") == "no-store"
    assert_security_headers(reply)
    problem = reply.json()
    assert problem["status"] == status
    assert problem["type"].endswith(f"/{status}") and problem["title"]
    return problem


# --- the shipped configuration ------------------------------------------------------
