"""Several machines on one machine: what tests/test_replication.py shares.

- `Cluster`: a throwaway PostgreSQL cluster (fault_helpers.PrivatePostgres) with
  its own settings; a standby made with `pg_basebackup -R` from a primary,
  promoted, or stopped hard (`pg_ctl stop -m immediate`: the machine died);
- `replicated_pair()`: a primary and a synchronous standby (synchronous_commit =
  on, synchronous_standby_names = the standby), cleaned up however the test ends;
- `PgBouncer`: Debian's pgbouncer in transaction mode on a free loopback port;
- `FlaskProcess`: `flask push worker` as a process of its own (kill -9 at will);
- `TimedSyncClient`: fault_helpers.SyncClient that also notes when each
  attempt started and ended, for the failover's figures;
- `Crowd`: devices sending their outboxes at once, each in a thread;
- `failover_run()`: the whole failover, for the test and bench/failover.py.

Everything runs as processes on 127.0.0.1 and is stopped in the fixtures'
teardown. Server binaries (initdb, pg_ctl, pg_basebackup) come from
QORGAU_PG_BIN (default /usr/lib/postgresql/15/bin); as root they run as the
`postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.fault_helpers import (
    PG_BIN,
    ROOT,
    Answer,
    GaveUp,
    Gunicorn,
    PrivatePostgres,
    SyncClient,
    acknowledged,
    create_database,
    free_port,
    make_batch,
    make_records,
    migrate,
    private_postgres_unavailable,
    seed,
    wait_for,
)

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
STANDBY_NAME = "qorgau_standby"


def need_server_binaries() -> None:
    """Skip (outside CI) or fail (in CI) when clusters cannot be made here."""
    reason = private_postgres_unavailable()
    if reason is None and not (PG_BIN / "pg_basebackup").exists():
        reason = f"no pg_basebackup in {PG_BIN}"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the replication tests: {reason}")
        pytest.skip(f"the PostgreSQL server binaries are missing: {reason}")


class Cluster(PrivatePostgres):
    """A private cluster started with `settings` (-c name=value each; no spaces)."""

    def __init__(self, **settings):
        super().__init__()
        self.settings = {"fsync": "off", "max_connections": "80", "shared_buffers": "32MB",
                         **settings}

    def start(self) -> None:
        options = " ".join([f"-p {self.port}", f"-k {self.dir}",
                            "-c listen_addresses=127.0.0.1",
                            *(f"-c {k}={v}" for k, v in self.settings.items())])
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start", timeout=90)

    def base_backup_of(self, primary: Cluster) -> None:
        """This cluster's data directory: a copy of `primary`, set up to follow it (-R)."""
        self._run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                  "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream",
                  "-c", "fast", "--no-sync", timeout=120)

    def kill(self) -> None:
        """The machine died: no shutdown checkpoint, clients cut off mid-transaction."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                  "-t", "30", "stop", timeout=60)

    def promote(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote",
                  timeout=90)

    def database(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def query(self, sql: str, name: str = "postgres"):
        with psycopg.connect(self.database(name), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql).fetchall()


@contextlib.contextmanager
def replicated_pair(synchronous: bool = True):
    """(primary, standby) streaming on loopback; with `synchronous`, a commit on the
    primary returns only once the standby has the WAL on disk."""
    need_server_binaries()
    primary_settings = {"synchronous_commit": "on"}
    if synchronous:
        primary_settings["synchronous_standby_names"] = STANDBY_NAME
    primary = Cluster(**primary_settings)
    # The standby's walreceiver introduces itself by cluster_name (its application_name).
    standby = Cluster(cluster_name=STANDBY_NAME, hot_standby="on",
                      hot_standby_feedback="on")
    try:
        primary.init()
        primary.start()
        standby.base_backup_of(primary)
        standby.start()
        state = "sync" if synchronous else "async"

        def streaming():
            rows = primary.query("SELECT sync_state FROM pg_stat_replication "
                                 f"WHERE application_name = '{STANDBY_NAME}' "
                                 "AND state = 'streaming'")
            return rows and rows[0][0] == state

        assert wait_for(streaming, 60, 0.1), "the standby never streamed: " + \
            standby.log.read_text(errors="replace")[-2000:]
        yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()


def multi_host_url(name: str, *clusters: Cluster) -> str:
    """libpq's multi-host URL: the app connects to whichever cluster takes writes."""
    hosts = ",".join(f"127.0.0.1:{c.port}" for c in clusters)
    return f"postgresql://postgres@{hosts}/{name}?target_session_attrs=read-write"


class PgBouncer:
    """pgbouncer in transaction mode in front of `server_url`'s server.

    `databases` maps the names clients use to (database on the server, pool size).
    Runs as `postgres` when the test runs as root (pgbouncer refuses root)."""

    def __init__(self, server_url: str, databases: dict[str, tuple[str, int]]):
        from sqlalchemy.engine import make_url

        if not Path(PGBOUNCER).exists():
            pytest.fail(f"pgbouncer is not installed ({PGBOUNCER}); run ./qorgau test",
                        pytrace=False)
        server = make_url(server_url)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="qorgau-pgbouncer-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        login = f"user={server.username or 'postgres'}"
        if server.password:
            login += f" password={server.password}"
        lines = ["[databases]"]
        for alias, (real, pool) in databases.items():
            lines.append(f"{alias} = host={server.host or '127.0.0.1'} "
                         f"port={server.port or 5432} dbname={real} {login} pool_size={pool}")
        lines += ["[pgbouncer]", "listen_addr = 127.0.0.1", f"listen_port = {self.port}",
                  "unix_socket_dir =", "auth_type = trust",
                  f"auth_file = {self.dir / 'users.txt'}", "pool_mode = transaction",
                  "max_client_conn = 200", "default_pool_size = 4",
                  "ignore_startup_parameters = extra_float_digits,options",
                  f"logfile = {self.dir / 'pgbouncer.log'}",
                  f"pidfile = {self.dir / 'pgbouncer.pid'}"]
        (self.dir / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        if as_user:
            for f in ("pgbouncer.ini", "users.txt"):
                shutil.chown(self.dir / f, "postgres", "postgres")
        self.proc = subprocess.Popen([*as_user, PGBOUNCER, str(self.dir / "pgbouncer.ini")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)

        def listening():
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.proc.stderr.read().decode()}"
                                   + self.log_tail())
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
            return False

        if not wait_for(listening, 30, 0.1):
            self.stop()
            raise RuntimeError("pgbouncer did not listen: " + self.log_tail())

    def url(self, alias: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{alias}"

    def log_tail(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


class FlaskProcess:
    """`flask <args>` for the real app in a process group of its own."""

    def __init__(self, args: list[str], db_url: str, env: dict, log_path: Path):
        full_env = {**os.environ, "FLASK_APP": "api", "DATABASE_URL": db_url,
                    "QORGAU_SECRET_KEY": "replication", **env}
        full_env.pop("QORGAU_PUSH_WORKER_THREAD", None)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([str(ROOT / ".venv/bin/flask"), *args], cwd=ROOT,
                                     env=full_env, start_new_session=True,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self, sig=signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=20)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self._log.close()


class TimedSyncClient(SyncClient):
    """SyncClient noting (started, ended, status) of every attempt (time.monotonic())."""

    def __init__(self, *args, verify: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.timeline: list[tuple[float, float, int | None]] = []
        if verify is not None:  # through nginx: https://localhost with the test's certificate
            self.http.verify = verify
            self.http.trust_env = False  # REQUESTS_CA_BUNDLE would win over `verify`
            self.http.cookies.clear()  # set for 127.0.0.1 by SyncClient
            self.http.headers["Cookie"] = f"qorgau_session={self.device.token}"

    def post(self, body: dict) -> Answer:
        started = time.monotonic()
        answer = super().post(body)
        self.timeline.append((started, time.monotonic(), answer.status))
        return answer


def first_success_after(clients, moment: float) -> float | None:
    """When the first attempt started after `moment` was answered 200 (monotonic)."""
    ends = [end for c in clients for start, end, status in c.timeline
            if start >= moment and status == 200]
    return min(ends) if ends else None


def stored_numbers(db_url: str) -> dict[str, str]:
    with psycopg.connect(db_url, connect_timeout=10) as conn:
        return dict(conn.execute("SELECT id::text, case_number FROM incidents").fetchall())




# ---------------------------------------------------------------------------
# A crowd of devices, and the failover run (the test and bench/failover.py)


class Crowd:
    """One thread per device, each sending its outbox's batches one after another
    (SyncClient retries 502/503/504 and lost connections). `acked` is id -> the
    case number the device was told; told twice, it must be told the same."""

    def __init__(self, clients, outboxes):
        self.clients, self.outboxes = clients, outboxes
        self.acked: dict[str, str] = {}
        self.errors: list[str] = []
        self.done: Counter = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._device, args=(n,))
                        for n in range(len(clients))]

    @property
    def ids(self) -> set[str]:
        return {r["id"] for box in self.outboxes for batch in box for r in batch}

    def batches_done(self) -> int:
        return sum(self.done.values())

    def start(self) -> Crowd:
        for t in self.threads:
            t.start()
        return self

    def join(self, seconds: float = 180) -> bool:
        for t in self.threads:
            t.join(seconds)
        return not any(t.is_alive() for t in self.threads)

    def _device(self, n):
        try:
            for batch in self.outboxes[n]:
                answered = acknowledged(self.clients[n].sync(batch))
                with self.lock:
                    for ident, number in answered.items():
                        if self.acked.setdefault(ident, number) != number:
                            raise AssertionError(f"{ident} renumbered: {number}")
                    self.done[n] += 1
        except (GaveUp, AssertionError) as err:
            self.errors.append(f"device {n}: {err}")

    def statuses(self) -> Counter:
        return Counter(s for c in self.clients for _, _, s in c.timeline)


@dataclass
class FailoverRun:
    """What a failover run saw; the clusters are still up while the caller checks."""

    primary: Cluster
    standby: Cluster
    scene: object
    crowd: Crowd
    ids: set[str]
    acked: dict[str, str]
    unanswered: Answer | None  # the sync sent while the standby was stopped
    figures: dict = field(default_factory=dict)

    @property
    def new_primary_url(self) -> str:
        return self.standby.database("qorgau")


@contextlib.contextmanager
def failover_run(push, log_dir: Path, *, devices: int = 8, batches: int = 6,
                 per_batch: int = 5, workers: int = 2, promote_after: float = 0.0,
                 show_the_wait: bool = True, push_worker: bool = False):
    """A primary and a synchronous standby; gunicorn on the multi-host URL; `devices`
    phones each sending `batches` batches; half-way the primary is killed
    (`pg_ctl stop -m immediate`) and, `promote_after` seconds later, the standby
    promoted. With `show_the_wait`, first a sync is sent while the standby is
    stopped (its answer kept in `unanswered`), then the standby started again and
    the sync retried. With `push_worker`, a `flask push worker` on the same URL runs
    throughout and the run waits until it has sent every queued push from the
    promoted standby. Yields a FailoverRun once every device is done."""
    with replicated_pair(synchronous=True) as (primary, standby):
        db_url = create_database(primary.url, "qorgau")
        # Migrated as `flask db upgrade` would on an app host: through the multi-host
        # URL, the read-only standby named first (libpq skips it).
        migrate(multi_host_url("qorgau", standby, primary))
        scene = seed(db_url, push, crews=devices + 2)
        server = Gunicorn(multi_host_url("qorgau", primary, standby), workers=workers,
                          log_path=log_dir / "gunicorn.log")
        clients = [TimedSyncClient(server.base, crew.devices[0], seed=n, deadline_s=150)
                   for n, crew in enumerate(scene.crews[:devices])]
        probe = TimedSyncClient(server.base, scene.crews[devices].devices[0], timeout=4)
        lone = TimedSyncClient(server.base, scene.crews[devices + 1].devices[0], timeout=3)
        crowd = Crowd(clients, [[make_records(per_batch) for _ in range(batches)]
                                for _ in range(devices)])
        ids, acked, unanswered, figures = crowd.ids, {}, None, {}
        worker = None
        try:
            server.wait_ready()
            if push_worker:
                from tests.push_service import vapid_pem

                worker = FlaskProcess(["push", "worker"], multi_host_url("qorgau", primary,
                                                                        standby),
                                      {"QORGAU_PUSH_VAPID_PRIVATE_KEY": vapid_pem()},
                                      log_dir / "push-worker.log")
            if show_the_wait:
                standby.stop()
                held = make_records(1)
                unanswered = lone.post(make_batch(lone.device, held))
                standby.start()
                acked.update(acknowledged(lone.sync(held)))
                ids |= {r["id"] for r in held}

            crowd.start()
            if not wait_for(lambda: crowd.batches_done() >= devices * batches // 2, 120):
                raise AssertionError(f"the crowd stalled: {crowd.errors[:3]}")
            figures["sync_state"] = primary.query(
                "SELECT sync_state FROM pg_stat_replication")
            figures["acknowledged_before_death"] = len(crowd.acked)
            died = time.monotonic()
            primary.kill()
            time.sleep(promote_after)
            started = time.monotonic()
            standby.promote()
            figures["promote_s"] = time.monotonic() - started

            # A probe that ignores Retry-After: how soon the servers take a sync again.
            probe_records = make_records(1)
            while time.monotonic() - died < 60 + promote_after:
                answer = probe.post(make_batch(probe.device, probe_records))
                if answer.status == 200:
                    figures["death_to_first_sync_server_s"] = time.monotonic() - died
                    acked.update(acknowledged(answer.body["results"]))
                    ids |= {r["id"] for r in probe_records}
                    break
                if answer.status not in {503, None}:
                    raise AssertionError(f"the probe was answered {answer}")
                time.sleep(0.1)
            if not crowd.join(180):
                raise AssertionError("devices still sending after 180 s")
            if worker is not None:
                new = standby.database("qorgau")

                def listening_and_sent():
                    with psycopg.connect(new, connect_timeout=5) as conn:
                        listens = conn.execute(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE query LIKE 'LISTEN%'").fetchone()[0]
                        pending = conn.execute("SELECT count(*) FROM push_outbox "
                                               "WHERE status = 'pending'").fetchone()[0]
                    return listens >= 1 and pending == 0

                if not wait_for(listening_and_sent, 90, 0.5):
                    raise AssertionError("the push worker did not listen on the promoted "
                                         "standby and send everything: " + worker.log_tail())
        finally:
            if worker is not None:
                worker.kill(signal.SIGTERM)
            server.stop()
            for c in [*clients, probe, lone]:
                c.close()
        acked.update(crowd.acked)
        first = first_success_after(clients, died)
        back = [b for b in (first_success_after([c], died) for c in clients) if b is not None]
        if first is not None:
            figures["death_to_first_device_sync_s"] = first - died
            figures["death_to_last_device_back_s"] = max(back) - died
        yield FailoverRun(primary, standby, scene, crowd, ids, acked, unanswered, figures)
