"""Machinery for the fault tests (tests/test_faults*.py), loopback only.

- databases of their own on the test PostgreSQL server, cloned from one
  migrated template, dropped afterwards;
- crews, devices (sessions), a police post and push subscriptions, committed;
- gunicorn running the real app (or `fault_app()`, the real app with a hook
  that holds a sync request at a chosen point so a test can kill -9 it there);
- a private PostgreSQL cluster that a test may stop and start at will;
- a sync client that behaves like the PWA's loop: it retries 503 and lost
  connections, honouring Retry-After, with bounded attempts and a deadline;
- the checks: every record stored exactly once with gapless case numbers, one
  "created" event each, one outbox row per notification and subscription, and
  each notification delivered exactly once.

Everything is bounded in time; nothing here asserts on wall-clock time.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

from tests.push_service import PushService, vapid_pem

ROOT = Path(__file__).resolve().parent.parent
SYNC_PATH = "/api/v1/incidents/sync"
PG_BIN = Path(os.environ.get("QORGAU_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, seconds: float, step: float = 0.05):
    """Poll until `condition()` is truthy (returns it) or the deadline (returns None)."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(step)


def psycopg_url(url: str) -> str:
    """A libpq URL (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    base, _, _ = psycopg_url(url).rpartition("/")
    return f"{base}/{name}"


# ---------------------------------------------------------------------------
# Databases


def migrate(db_url: str) -> None:
    from flask_migrate import upgrade

    from api import create_app
    from api.extensions import db

    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "faults"})
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(psycopg_url(admin_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"'
                     + (f' TEMPLATE "{template}"' if template else ""))
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(psycopg_url(admin_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------
# People, devices and subscriptions


@dataclass
class Device:
    person_id: int
    device_id: str
    token: str
    csrf: str


@dataclass
class Crew:
    person_id: int
    region: str
    devices: list[Device]


@dataclass
class Scene:
    crews: list[Crew]
    officer_id: int
    post_id: int
    # endpoint -> (person id, subscription id)
    subscriptions: dict[str, tuple[int, int]] = field(default_factory=dict)


def seed(db_url: str, push: PushService, *, crews: int, devices: int = 1,
         regions: tuple[str, ...] = ("75",), crew_subscriptions: int = 1) -> Scene:
    """`crews` crew members spread over `regions`, each with `devices` signed-in
    devices and `crew_subscriptions` push subscriptions; one police post in the
    first region (every station's default post) with one subscribed officer."""
    from api import create_app
    from api.auth.sessions import start_session
    from api.extensions import db
    from api.orgs.models import Language, Person, PolicePost, Position, Role, Station
    from api.push.models import PushSubscription

    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "faults"})
    with app.app_context():
        post = PolicePost(code="FAULT-POST", hospital_name="Fault Hospital",
                          region_code=regions[0], lat=43.25, lon=76.92)
        db.session.add(post)
        db.session.flush()
        stations = [Station(code=f"FAULT-ST-{n}", name=f"Fault station {n}", region_code=region,
                            default_post_id=post.id) for n, region in enumerate(regions)]
        db.session.add_all(stations)
        officer = Person(display_name="Officer", role=Role.POLICE, post_id=post.id,
                         language=Language.KK)
        db.session.add(officer)
        db.session.flush()
        scene = Scene([], officer.id, post.id)

        def subscribe(person):
            browser = push.subscribe()
            sub = PushSubscription(person_id=person.id, endpoint=browser.endpoint,
                                   p256dh=browser.p256dh,
                                   auth=browser.to_json()["keys"]["auth"])
            db.session.add(sub)
            db.session.flush()
            scene.subscriptions[browser.endpoint] = (person.id, sub.id)

        subscribe(officer)
        people = []
        for n in range(crews):
            station = stations[n % len(stations)]
            person = Person(display_name=f"Crew {n}", role=Role.CREW,
                            position=Position.FELDSHER, station=station, language=Language.RU)
            db.session.add(person)
            db.session.flush()
            for _ in range(crew_subscriptions):
                subscribe(person)
            people.append((person, station.region_code))
        db.session.commit()
        for person, region in people:
            crew = Crew(person.id, region, [])
            for d in range(devices):
                token, session = start_session(person, user_agent="faults")
                crew.devices.append(Device(person.id, f"fault-{person.id}-{d}", token,
                                           session.csrf_token))
            scene.crews.append(crew)
        db.session.remove()
        db.engine.dispose()
    return scene


def make_records(n: int, *, police_needed: bool = True) -> list[dict]:
    tapped = (datetime.now(UTC) - timedelta(minutes=5)).astimezone()
    return [{"id": str(uuid.uuid4()), "revision": 1, "tapped_at": tapped.isoformat(),
             "kind": "violence", "aggravating": ["group"], "police_needed": police_needed,
             "location": {"lat": 43.25, "lon": 76.95, "accuracy_m": 15.0,
                          "fixed_at": datetime.now(UTC).isoformat(), "source": "gps"},
             "note": "Пациенттің туысы соққы жасады / родственник ударил"}
            for _ in range(n)]


def make_batch(device: Device, records: list[dict], outbox_size: int | None = None) -> dict:
    return {"device_id": device.device_id,
            "outbox_size": len(records) if outbox_size is None else outbox_size,
            "app_version": "faults", "sent_at": datetime.now(UTC).isoformat(),
            "records": records}


# ---------------------------------------------------------------------------
# gunicorn


class Gunicorn:
    """gunicorn on 127.0.0.1:<free port>, its own process group, stopped for sure."""

    def __init__(self, db_url: str, *, app: str = "api:create_app()", workers: int = 2,
                 env: dict | None = None, log_path: Path | None = None,
                 port: int | None = None):
        # A given port lets a test stop the server and start it again where phones expect it.
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [str(ROOT / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{self.port}",
               "--workers", str(workers), "--worker-class", "sync", "--timeout", "60",
               "--graceful-timeout", "5", "--log-level", "warning", app]
        full_env = {**os.environ, "DATABASE_URL": db_url, "QORGAU_SECRET_KEY": "faults",
                    **(env or {})}
        full_env.pop("QORGAU_PUSH_WORKER_THREAD", None)
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, start_new_session=True,
                                     stdout=self._log, stderr=self._log)

    def wait_ready(self, seconds: float = 60) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited early ({self.proc.returncode}): "
                                   + self.log_tail())
            try:
                return requests.get(f"{self.base}/api/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        if not wait_for(ready, seconds, 0.2):
            raise RuntimeError("gunicorn did not become ready: " + self.log_tail())

    def worker_pids(self) -> list[int]:
        """The master's children (gunicorn's workers)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.proc.pid:
                pids.append(int(entry))
        return sorted(pids)

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Workers left behind (the master died first) are in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log is not subprocess.DEVNULL:
            self._log.close()


def fault_app():
    """gunicorn entry point: the real app, plus a test-only hold on one sync request.

    QORGAU_FAULT_DIR names a directory. A test arms a hold by creating
    `armed` there holding the point: "before-commit" (the sync's transaction
    is open: its incidents are inserted, numbered and notified, not committed)
    or "after-commit" (committed; the response not yet sent). The first sync
    request to reach that point claims the file (an atomic rename), writes its
    process id to `held`, and sleeps (at most 60 s) so the test can kill -9 it.
    """
    from flask import has_request_context, request
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from api import create_app

    app = create_app()
    _mutate(os.environ.get("QORGAU_FAULT_MUTANT", ""))
    folder = Path(os.environ.get("QORGAU_FAULT_DIR") or tempfile.mkdtemp())

    def hold(point: str) -> None:
        armed = folder / "armed"
        try:
            if armed.read_text().strip() != point:
                return
            claimed = folder / f"claimed-{os.getpid()}"
            os.rename(armed, claimed)  # only one request wins
        except OSError:
            return
        (folder / "held.tmp").write_text(str(os.getpid()))
        os.rename(folder / "held.tmp", folder / "held")
        time.sleep(60)  # the test kills this process; the bound ends a lost test

    def on_sync_request() -> bool:
        return has_request_context() and request.path == SYNC_PATH

    @event.listens_for(Engine, "after_cursor_execute")
    def _mark(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO INCIDENTS"):
            conn.info["fault_wrote_incidents"] = True

    @event.listens_for(Engine, "rollback")
    def _unmark(conn):
        conn.info.pop("fault_wrote_incidents", None)

    @event.listens_for(Engine, "commit")
    def _before_commit(conn):
        # Fires just before COMMIT is sent: the sync transaction is still open.
        if conn.info.pop("fault_wrote_incidents", False) and on_sync_request():
            hold("before-commit")

    @app.after_request
    def _after_commit(response):
        if on_sync_request() and response.status_code == 200:
            hold("after-commit")
        return response

    return app


def _mutate(mutant: str) -> None:
    """Break one promise on purpose (QORGAU_FAULT_MUTANT), to prove the fault
    tests notice: run them with the variable set and they must fail.

    - "no-idempotency": every record is stored as a new incident (a fresh id);
    - "keep-numbers": numbers drawn for records already stored are never given
      back, so replays leave gaps in the case numbers.
    """
    if not mutant:
        return
    from api.incidents import sync as service

    if mutant == "no-idempotency":
        validate = service.validate_records

        def fresh_ids(raw_records):
            results, valid = validate(raw_records)
            return results, [(i, {**r, "id": uuid.uuid4()}) for i, r in valid]

        service.validate_records = fresh_ids
    elif mutant == "keep-numbers":
        service._settle_case_numbers = lambda reserved, inserted: None
    else:
        raise ValueError(f"unknown QORGAU_FAULT_MUTANT {mutant!r}")


# ---------------------------------------------------------------------------
# A private PostgreSQL cluster


def private_postgres_unavailable() -> str | None:
    """Why a private cluster cannot be made here, or None when it can."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return f"no initdb/pg_ctl in {PG_BIN}"
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            return "running as root without runuser (initdb refuses root)"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run initdb as"
    return None


class PrivatePostgres:
    """A throwaway cluster in a temporary directory on a free loopback port."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="qorgau-faults-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.log = self.dir / "server.log"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run([*self.as_user, *args], check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                  "postgres", "-E", "UTF8", "--locale", "C", "--no-sync", timeout=120)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=60")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start", timeout=90)

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                  "-t", "60", "stop", timeout=90)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(Exception):
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "-t", "30", "stop", timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# The client: the PWA's sync loop, in Python


@dataclass
class Answer:
    status: int | None            # None: no answer (connection refused, reset, timeout)
    retry_after: str | None = None
    content_type: str | None = None
    body: dict | None = None
    error: str | None = None


class GaveUp(Exception):
    pass


class SyncClient:
    """One device. `sync(records)` sends one batch until the server has answered
    for every record, retrying 503 (after Retry-After) and lost connections
    (exponential backoff with full jitter), as pwa/js/app.js does; any other
    answer is final. Attempts and the deadline are bounded."""

    RETRY_STATUSES = frozenset({502, 503, 504})

    def __init__(self, base: str, device: Device, *, max_attempts: int = 40,
                 deadline_s: float = 120, base_delay: float = 0.1, max_delay: float = 2.0,
                 timeout: float = 60, seed: int | None = None):
        self.base = base
        self.device = device
        self.max_attempts = max_attempts
        self.deadline_s = deadline_s
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.random = random.Random(seed)
        self.http = requests.Session()
        self.http.cookies.set("qorgau_session", device.token, domain="127.0.0.1")
        self.http.headers["X-CSRF-Token"] = device.csrf
        self.answers: list[Answer] = []   # every answer, in order
        self.slept: list[float] = []      # every wait between attempts

    def close(self) -> None:
        self.http.close()

    def post(self, body: dict) -> Answer:
        try:
            response = self.http.post(self.base + SYNC_PATH, json=body, timeout=self.timeout)
        except requests.RequestException as err:
            answer = Answer(None, error=f"{type(err).__name__}: {err}"[:300])
        else:
            data = None
            with contextlib.suppress(ValueError):
                data = response.json()
            answer = Answer(response.status_code, response.headers.get("Retry-After"),
                            response.headers.get("Content-Type"), data)
        self.answers.append(answer)
        return answer

    def sync(self, records: list[dict], on_attempt=None) -> list[dict]:
        """The server's results for `records` (every one acknowledged or rejected)."""
        deadline = time.monotonic() + self.deadline_s
        for attempt in range(1, self.max_attempts + 1):
            if on_attempt is not None:
                on_attempt(attempt)
            answer = self.post(make_batch(self.device, records))
            if answer.status == 200:
                return answer.body["results"]
            if answer.status is not None and answer.status not in self.RETRY_STATUSES:
                raise GaveUp(f"final answer {answer.status}: {answer.body}")
            bound = min(self.max_delay, self.base_delay * 2 ** attempt)
            delay = self.random.uniform(self.base_delay, bound)
            if answer.retry_after is not None and answer.retry_after.isdigit():
                delay = max(delay, float(answer.retry_after))
            if time.monotonic() + delay > deadline:
                break
            self.slept.append(delay)
            time.sleep(delay)
        raise GaveUp(f"no answer after {len(self.answers)} attempts; last: {self.answers[-1]}")


def acknowledged(results: list[dict]) -> dict[str, str]:
    """id -> case number for records the server stored (created/unchanged/updated)."""
    out = {}
    for r in results:
        assert r["status"] in {"created", "unchanged", "updated"}, r
        out[r["id"]] = r["incident"]["case_number"]
    return out


# ---------------------------------------------------------------------------
# The checks


def check_store(db_url: str, expected_ids: set[str]) -> dict:
    """What the database holds, against the ids the devices sent; asserts every promise."""
    with psycopg.connect(psycopg_url(db_url), connect_timeout=10) as conn:
        rows = conn.execute("SELECT id::text, case_number FROM incidents").fetchall()
        created = conn.execute("SELECT incident_id::text, count(*) FROM incident_events "
                               "WHERE kind = 'created' GROUP BY incident_id").fetchall()
        counters = {(r, int(y)): last for r, y, last in conn.execute(
            "SELECT region_code, year, last FROM case_counters")}
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "an incident is stored twice"
    assert set(ids) == expected_ids, (
        f"missing {len(expected_ids - set(ids))}, unexpected {len(set(ids) - expected_ids)}")
    assert dict(created) == dict.fromkeys(expected_ids, 1), \
        "every incident has exactly one 'created' event"
    numbers: dict[tuple[str, int], list[int]] = {}
    for _, number in rows:
        _prefix, region, year, seq = number.split("-")
        numbers.setdefault((region, int(year)), []).append(int(seq))
    for key, seqs in numbers.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"case numbers of {key} have gaps"
        assert counters.get(key) == len(seqs), f"counter of {key} is {counters.get(key)}"
    assert set(counters) == set(numbers), "a counter was raised for no stored incident"
    return {"incidents": len(ids), "numbers": {k: len(v) for k, v in numbers.items()}}


def check_outbox(db_url: str, scene: Scene, incident_ids: set[str]) -> int:
    """One row per notification and subscription: the crew's 'incident.received'
    to each of the reporter's subscriptions, the officer's 'police.alert'."""
    with psycopg.connect(psycopg_url(db_url), connect_timeout=10) as conn:
        rows = conn.execute("SELECT incident_id::text, kind, subscription_id, person_id "
                            "FROM push_outbox").fetchall()
        reporters = dict(conn.execute("SELECT id::text, reporter_id FROM incidents"))
    per_key = Counter((i, k, s) for i, k, s, _ in rows)
    twice = [key for key, n in per_key.items() if n != 1]
    assert not twice, f"notifications queued more than once: {twice[:5]}"
    subs_of: dict[int, set[int]] = {}
    for person, sub in scene.subscriptions.values():
        subs_of.setdefault(person, set()).add(sub)
    expected = set()
    for incident in incident_ids:
        expected |= {(incident, "incident.received", s) for s in subs_of[reporters[incident]]}
        expected |= {(incident, "police.alert", s) for s in subs_of[scene.officer_id]}
    assert set(per_key) == expected, (
        f"missing {len(expected - set(per_key))}, unexpected {len(set(per_key) - expected)}")
    return len(rows)


def push_app(db_url: str, **config):
    from api import create_app
    from api.push.vapid import public_key

    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "faults",
                      "PUSH_VAPID_PRIVATE_KEY": vapid_pem(), "PUSH_SEND_TIMEOUT": 5,
                      **config})
    app.vapid_public_key = public_key(app)
    return app


def drain(app, workers: int = 2, seconds: float = 120) -> None:
    """Run `workers` push workers (threads, SKIP LOCKED) until the outbox has
    nothing due; bounded by `seconds`."""
    from api.extensions import db
    from api.push.worker import PushWorker

    deadline = time.monotonic() + seconds
    errors = []

    def run(n):
        try:
            with app.app_context():
                worker = PushWorker(app, name=f"fault-{n}")
                while time.monotonic() < deadline and worker.drain(limit=200):
                    pass
                db.session.remove()
        except Exception as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 10)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "push workers did not finish"


def check_delivered(db_url: str, push: PushService, scene: Scene) -> int:
    """Every outbox row SENT after one attempt, and each notification reached its
    subscription exactly once, decrypted and correctly signed."""
    with psycopg.connect(psycopg_url(db_url), connect_timeout=10) as conn:
        rows = conn.execute("SELECT o.incident_id::text, o.kind, s.endpoint, o.status::text "
                            "FROM push_outbox o JOIN push_subscriptions s "
                            "ON s.id = o.subscription_id").fetchall()
        total = conn.execute("SELECT count(*) FROM push_outbox").fetchone()[0]
    assert len(rows) == total, "an outbox row lost its subscription"
    assert {status for *_, status in rows} <= {"sent"}, Counter(r[3] for r in rows)
    expected = Counter((incident, kind, endpoint) for incident, kind, endpoint, _ in rows)
    bad = [r for r in push.posts() if r.errors]
    assert not bad, bad[0].errors
    got = Counter((r.payload["incident_id"], r.payload["type"], r.endpoint)
                  for r in push.delivered())
    assert got == expected, (f"missing {len(expected - got)}, "
                             f"more than once {sum((got - expected).values())}")
    return total


class RestartablePushService(PushService):
    """The test push service, which can go down (connection refused) and come
    back on the same port with the same subscriptions."""

    def down(self) -> None:
        self.stop_listening()

    def up(self) -> None:
        self._listen(self.server.RequestHandlerClass, int(self.origin.rsplit(":", 1)[1]))
