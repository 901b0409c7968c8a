"""What the benchmarks share: a throw-away PostgreSQL database, the people and
places of a region, gunicorn, push workers, nginx, and figures.

Every benchmark creates its own database (dropped afterwards) on the server
at --admin-url, runs the real processes on free loopback ports, and prints
its figures next to its targets. Nothing here is imported by the app.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("QORGAU_BENCH_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
# Almaty, Astana, Shymkent, Karaganda, Aktobe, ...: crews are spread as in life.
REGIONS = ["75", "71", "79", "35", "15", "23", "55", "63"]
NOTE = "Пациенттің туысы соққы жасады / родственник ударил"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q: float) -> float:
    """The q-quantile (0..1) by nearest rank; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(q * len(ordered))  # nearest rank: the smallest value with >= q below
    return ordered[min(len(ordered) - 1, max(0, rank - 1))]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def machine_load() -> str:
    """The load average, so a figure from a busy machine says so."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


# --- the database ------------------------------------------------------------------

@contextlib.contextmanager
def scratch_database(admin_url: str = ADMIN_URL, prefix: str = "qorgau_bench"):
    """Create a database, yield its URL, drop it (even after an error)."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = psycopg.connect(admin_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}", name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@dataclass
class Crew:
    person_id: int
    token: str
    csrf: str
    station_id: int

    @property
    def headers(self) -> dict:
        return {"Cookie": f"qorgau_session={self.token}", "X-CSRF-Token": self.csrf}


@dataclass
class World:
    crews: list[Crew]
    officers: list[int] = field(default_factory=list)
    posts: list[int] = field(default_factory=list)


def migrate(db_url: str) -> None:
    from flask_migrate import upgrade

    from api import create_app
    from api.extensions import db

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "bench",
                      "PUSH_ALLOW_LOOPBACK_FOR_TESTS": True})
    with app.app_context():
        upgrade()
        db.engine.dispose()


def setup_world(db_url: str, devices: int, regions: int = 1, *, posts: bool = False,
                officer_subscriptions=None, crew_subscriptions=None) -> World:
    """Migrate; make `regions` stations (one per region), one crew member with a
    session per device, and with `posts` one police post per region (near the
    incidents' location) with one officer. `officer_subscriptions(officer_id)`
    / `crew_subscriptions(person_id)` return a PushSubscription.toJSON() dict
    to store for that person (or None)."""
    from api import create_app
    from api.auth.models import AuthSession
    from api.auth.sessions import lifetime, token_hash
    from api.db import utcnow
    from api.extensions import db
    from api.orgs.models import Language, Person, PolicePost, Position, Role, Station
    from api.push.models import PushSubscription

    migrate(db_url)
    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "bench",
                      "PUSH_ALLOW_LOOPBACK_FOR_TESTS": True})
    world = World(crews=[])
    with app.app_context():
        stations, post_rows = [], []
        for n in range(regions):
            region = REGIONS[n % len(REGIONS)]
            post = None
            if posts:
                post = PolicePost(code=f"BENCH-P{n}", hospital_name=f"Bench hospital {n}",
                                  region_code=region, lat=43.26, lon=76.94)
                db.session.add(post)
                post_rows.append(post)
            station = Station(code=f"BENCH-{n}", name=f"Bench {n}", region_code=region,
                              default_post=post)
            db.session.add(station)
            stations.append(station)
        db.session.flush()
        officers = []
        for post in post_rows:
            officer = Person(display_name=f"Officer {post.code}", role=Role.POLICE,
                             post_id=post.id, language=Language.RU)
            db.session.add(officer)
            officers.append(officer)
        people = [Person(display_name=f"Crew {n}", role=Role.CREW, position=Position.FELDSHER,
                         station=stations[n % len(stations)], language=Language.RU)
                  for n in range(devices)]
        db.session.add_all(people)
        db.session.flush()
        now = utcnow()
        tokens = []
        for person in people:
            token = secrets.token_urlsafe(32)
            session = AuthSession(token_hash=token_hash(token),
                                  csrf_token=secrets.token_urlsafe(32), person=person,
                                  created_at=now, last_seen_at=now,
                                  expires_at=now + lifetime(person), user_agent="bench")
            db.session.add(session)
            tokens.append((token, session))
        db.session.flush()
        subs = []
        for who, make in ((officers, officer_subscriptions), (people, crew_subscriptions)):
            for person in who if make else []:
                data = make(person.id)
                if data:
                    subs.append(PushSubscription(
                        person_id=person.id, endpoint=data["endpoint"],
                        p256dh=data["keys"]["p256dh"], auth=data["keys"]["auth"],
                        user_agent="bench", created_at=now, updated_at=now))
        db.session.add_all(subs)
        db.session.commit()
        world.crews = [Crew(p.id, token, s.csrf_token, p.station_id)
                       for p, (token, s) in zip(people, tokens, strict=True)]
        world.officers = [o.id for o in officers]
        world.posts = [p.id for p in post_rows]
        db.engine.dispose()
    return world


# --- what a phone sends ------------------------------------------------------------

def record(ident: str | None = None, *, minutes_ago: float = 5, revision: int = 1) -> dict:
    now = datetime.now(UTC)
    return {"id": ident or str(uuid.uuid4()), "revision": revision,
            "tapped_at": (now - timedelta(minutes=minutes_ago)).astimezone().isoformat(),
            "kind": "violence", "aggravating": ["group"], "police_needed": True,
            "location": {"lat": 43.25, "lon": 76.95, "accuracy_m": 15.0,
                         "fixed_at": now.isoformat(), "source": "gps"},
            "note": NOTE}


def sync_body(device: str, records: list[dict], outbox_size: int | None = None) -> dict:
    return {"device_id": device, "outbox_size": len(records) if outbox_size is None
            else outbox_size, "app_version": "bench",
            "sent_at": datetime.now(UTC).isoformat(), "records": records}


# --- processes ---------------------------------------------------------------------

def bench_env(db_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QORGAU_", "DATABASE_"))}
    env.update(DATABASE_URL=db_url, QORGAU_SECRET_KEY="bench-secret-" + "x" * 32,
               PYTHONPATH=str(ROOT),
               # The benchmarks' push service listens on loopback, which production
               # refuses (api/push/endpoints.py): allowed here as in the tests.
               QORGAU_PUSH_ALLOW_LOOPBACK_FOR_TESTS="true")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60,
              context=None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited early ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def start_gunicorn(env: dict, port: int, workers: int, threads: int = 1, *,
                   config: bool = False, app: str = "api:create_app()",
                   extra_args: tuple = ()) -> subprocess.Popen:
    """gunicorn in its own process group. `config`: with deploy/gunicorn.conf.py
    (gthread workers, the shipped timeouts), as in production."""
    cmd = [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    if config:  # its workers and threads, unless extra_args say otherwise
        cmd[1:1] = ["-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    else:
        cmd += ["--workers", str(workers), "--threads", str(threads)]
        if threads > 1:
            cmd[1:1] = ["--worker-class", "gthread"]
    cmd += [*extra_args, app]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/api/health", proc)
    return proc


def start_push_workers(env: dict, count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([str(VENV_BIN / "flask"), "--app", "api", "push", "worker"],
                             cwd=ROOT, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL)
            for _ in range(count)]


def stop(procs) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        if proc is None:
            continue
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def load_nginx_render():
    spec = importlib.util.spec_from_file_location("qorgau_nginx_render",
                                                  ROOT / "nginx" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def start_nginx(prefix: Path, upstream: str, pwa_root: Path | None = None,
                **overrides) -> tuple[subprocess.Popen, int, Path]:
    """The project's nginx config (nginx/render.py) on a free port; (proc, https port, cert)."""
    import pwd
    import shutil

    render = load_nginx_render()
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "logs").mkdir(exist_ok=True)
    (prefix / "state").mkdir(exist_ok=True)
    cert, key = make_certificate(prefix)
    https_port, http_port = free_port(), free_port()
    options = dict(server_name="localhost", https_listen=f"127.0.0.1:{https_port}",
                   http_listen=f"127.0.0.1:{http_port}", cert=str(cert), key=str(key),
                   pwa_root=str(pwa_root or ROOT / "pwa"), upstream=upstream,
                   user=pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else "",
                   log_dir=str(prefix / "logs"), state_dir=str(prefix / "state"),
                   acme_root=str(prefix / "acme"))
    options.update(overrides)
    conf = render.render(prefix / "conf", **options)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-p", f"{prefix}/", "-c", str(conf), "-g",
                             f"daemon off; pid {prefix}/nginx.pid; error_log stderr warn;"],
                            start_new_session=True, stderr=open(prefix / "nginx.log", "wb"))  # noqa: SIM115
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"nginx exited: {(prefix / 'nginx.log').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
            return proc, https_port, cert
        except OSError:
            time.sleep(0.1)
    raise SystemExit("nginx did not start")


# --- what the processes use ----------------------------------------------------------

def _ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
    return pids


def cpu_snapshot(groups: dict[str, int], db_name: str) -> dict[str, dict[int, int]]:
    """CPU ticks so far of each named process group, the PostgreSQL backends
    serving `db_name`, and this load generator."""
    snap: dict[str, dict[int, int]] = {name: {} for name in groups}
    snap["postgres"], snap["loadgen"] = {}, {}
    by_pgid = {pgid: name for name, pgid in groups.items()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            name = by_pgid.get(os.getpgid(pid))
            if name:
                snap[name][pid] = _ticks(pid)
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if cmdline.startswith(b"postgres:") and f" {db_name} ".encode() in cmdline:
            snap["postgres"][pid] = _ticks(pid)
    snap["loadgen"][os.getpid()] = _ticks(os.getpid())
    return snap


def cpu_split(before: dict, after: dict, seconds: float) -> str:
    hz = os.sysconf("SC_CLK_TCK")
    parts = []
    for name in after:
        used = sum(t - before[name].get(pid, 0) for pid, t in after[name].items()) / hz
        parts.append(f"{name} {used / seconds * 100:.0f}%")
    return ", ".join(parts) + f" of one core (machine: {os.cpu_count()} cores)"


# --- checking what was stored ---------------------------------------------------------

def verify(db_url: str, acknowledged: list[str], sent: set[str] | list[str]) -> dict:
    """acknowledged: ids the server answered created/unchanged/updated for (once
    per phone's acknowledgement); sent: every id any phone sent."""
    sent = set(sent)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT id::text, case_number FROM incidents").fetchall()
        events = conn.execute("SELECT count(*) FROM incident_events WHERE kind = 'created'"
                              ).fetchone()[0]
        counters = {(r, y): last for r, y, last in conn.execute(
            "SELECT region_code, year, last FROM case_counters")}
    stored = [r[0] for r in rows]
    by_key: dict = {}
    for _, number in rows:
        _, region, year, seq = number.split("-")
        by_key.setdefault((region, int(year)), []).append(int(seq))
    gapless = all(sorted(v) == list(range(1, len(v) + 1)) and counters.get(k) == len(v)
                  for k, v in by_key.items())
    return {"sent": len(sent), "acknowledged": len(set(acknowledged)),
            "stored": len(stored), "stored_distinct": len(set(stored)),
            "not_stored": len(sent - set(stored)),
            "acknowledged_but_missing": len(set(acknowledged) - set(stored)),
            "unexpected": len(set(stored) - sent),
            "created_events": events,
            "duplicated": len(stored) - len(set(stored)) + max(0, events - len(set(stored))),
            "case_numbers_unique": len({r[1] for r in rows}) == len(rows)
            and all(r[1] for r in rows),
            "case_numbers_gapless": gapless}


def push_service():
    """tests/push_service.py's loopback Web Push service (decrypts and checks VAPID)."""
    from tests.push_service import PushService, vapid_pem

    return PushService(), vapid_pem
