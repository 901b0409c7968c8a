"""Sync ingest benchmark: gunicorn + PostgreSQL on this machine, loopback only.

50 simulated crew devices each send batches of 20 new incidents, back to back,
for 30 s. Prints sustained incidents/s, p50/p95 batch latency, and checks that
the database then holds exactly the records that were acknowledged: none twice,
none missing, case numbers gapless. Creates its own database and drops it.

    .venv/bin/python bench/sync_ingest.py [--devices 50] [--batch 20] [--seconds 30]
        [--workers 4] [--threads 1] [--regions 5] [--rate INCIDENTS_PER_S] [--no-hooks]

Back to back, 50 devices always have 50 batches in flight, so by Little's law
the mean latency is 50 / (batches/s): at 2,000 incidents/s (100 batches/s)
it is 500 ms however fast each batch is served. --rate offers a fixed load
instead, and then the latency percentiles are the service's own.
"""

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Almaty, Astana, Shymkent, Karaganda, Aktobe: crews are spread as in life.
REGIONS = ["75", "71", "79", "35", "15", "23", "55", "63"]


def app_without_hooks():
    """gunicorn entry point for --no-hooks: the sync path alone, without the
    hooks other domains register (push routing and notifications)."""
    from api import create_app
    from api.incidents import records as service

    app = create_app()
    service.incident_hooks.clear()
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(db_url: str, devices: int, regions: int) -> list[tuple[str, str]]:
    """Migrate, and make one crew member with a session per device."""
    from flask_migrate import upgrade

    from api import create_app
    from api.auth.sessions import start_session
    from api.extensions import db
    from api.orgs.models import Language, Person, Position, Role, Station

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "bench"})
    creds = []
    with app.app_context():
        upgrade()
        stations = []
        for n in range(regions):
            station = Station(code=f"BENCH-{n}", name=f"Bench {n}",
                              region_code=REGIONS[n % len(REGIONS)])
            db.session.add(station)
            stations.append(station)
        db.session.commit()
        for n in range(devices):
            person = Person(display_name=f"Crew {n}", role=Role.CREW,
                            position=Position.FELDSHER, station=stations[n % len(stations)],
                            language=Language.RU)
            db.session.add(person)
            db.session.commit()
            token, session = start_session(person, user_agent="bench")
            creds.append((token, session.csrf_token))
        db.engine.dispose()
    return creds


def make_batch(device: int, size: int) -> tuple[dict, list[str]]:
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(size)]
    records = [{"id": i, "revision": 1,
                "tapped_at": (now - timedelta(minutes=5)).astimezone().isoformat(),
                "kind": "violence", "aggravating": ["group"], "police_needed": True,
                "location": {"lat": 43.25, "lon": 76.95, "accuracy_m": 15.0,
                             "fixed_at": now.isoformat(), "source": "gps"},
                "note": "Пациенттің туысы соққы жасады / родственник ударил"}
               for i in ids]
    return {"device_id": f"bench-{device}", "outbox_size": size, "app_version": "bench",
            "sent_at": now.isoformat(), "records": records}, ids


async def device_loop(n, cred, base, size, deadline, latencies, sent_ids, errors, all_ids,
                      interval=None, start=None):
    """Back to back (closed loop), or with `interval` one batch per interval
    seconds on a fixed schedule (open loop): then latency counts from the
    scheduled time, so a server falling behind shows as latency, not as
    politely fewer requests (no coordinated omission)."""
    token, csrf = cred
    headers = {"Cookie": f"qorgau_session={token}", "X-CSRF-Token": csrf}
    scheduled = start
    async with aiohttp.ClientSession(headers=headers) as http:
        while time.monotonic() < deadline:
            if interval is not None:
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if scheduled >= deadline:
                    break
            body, ids = make_batch(n, size)
            all_ids.extend(ids)  # sent, whatever the answer
            started = time.perf_counter()
            if interval is not None:
                started -= time.monotonic() - scheduled
                scheduled += interval
            try:
                async with http.post(f"{base}/api/v1/incidents/sync", json=body,
                                     timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    data = await resp.json(content_type=None)
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as err:
                errors.append(repr(err))
                continue
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{status}: {str(data)[:200]}")
                continue
            for result in data["results"]:
                if result["status"] == "created":
                    sent_ids.append(result["id"])
                else:
                    errors.append(f"record {result['id']}: {result['status']}")


async def load(creds, base, size, seconds, rate=None):
    latencies, sent_ids, errors, all_ids = [], [], [], []
    started = time.monotonic()
    deadline = started + seconds
    # Open loop: each device sends every `interval` s, the devices evenly staggered.
    interval = len(creds) * size / rate if rate else None
    await asyncio.gather(*[device_loop(
        n, c, base, size, deadline, latencies, sent_ids, errors, all_ids, interval,
        started + (interval * n / len(creds) if interval else 0))
        for n, c in enumerate(creds)])
    return time.monotonic() - started, latencies, sent_ids, errors, all_ids


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    import urllib.request

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited early")
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not become ready")


def _ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def cpu_snapshot(gunicorn_pgid: int, db_name: str) -> dict[str, dict[int, int]]:
    """CPU ticks so far of gunicorn (its process group), the PostgreSQL backends
    serving the bench database, and this load generator."""
    snap: dict[str, dict[int, int]] = {"gunicorn": {}, "postgres": {}, "loadgen": {}}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getpgid(pid) == gunicorn_pgid:
                snap["gunicorn"][pid] = _ticks(pid)
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
    for name in ("gunicorn", "postgres", "loadgen"):
        used = sum(t - before[name].get(pid, 0) for pid, t in after[name].items()) / hz
        parts.append(f"{name} {used / seconds * 100:.0f}%")
    return ", ".join(parts) + f" of one core (machine: {os.cpu_count()} cores)"


def verify(db_url: str, sent_ids: list[str], all_ids: list[str]) -> dict:
    """sent_ids: acknowledged as created; all_ids: every id sent."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT id::text, case_number FROM incidents").fetchall()
        events = conn.execute("SELECT count(*) FROM incident_events WHERE kind = 'created'"
                              ).fetchone()[0]
        counters = conn.execute("SELECT region_code, year, last FROM case_counters").fetchall()
        numbers = conn.execute("SELECT split_part(case_number, '-', 2), "
                               "split_part(case_number, '-', 3), "
                               "split_part(case_number, '-', 4)::int FROM incidents").fetchall()
    stored = [r[0] for r in rows]
    by_key: dict = {}
    for region, year, seq in numbers:
        by_key.setdefault((region, int(year)), []).append(seq)
    gapless = all(sorted(v) == list(range(1, len(v) + 1)) and
                  (k[0], k[1], len(v)) in set(counters) for k, v in by_key.items())
    return {"sent": len(all_ids), "acknowledged": len(sent_ids),
            "acknowledged_distinct": len(set(sent_ids)),
            "stored": len(stored), "stored_distinct": len(set(stored)),
            "missing": len(set(sent_ids) - set(stored)),
            "unexpected": len(set(stored) - set(all_ids)),
            "created_events": events,
            "case_numbers_unique": len({r[1] for r in rows}) == len(rows)
            and all(r[1] for r in rows),
            "case_numbers_gapless": gapless}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--regions", type=int, default=5)
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: offer this many incidents/s on a fixed schedule "
                             "(default: each device sends back to back)")
    parser.add_argument("--no-hooks", action="store_true",
                        help="measure sync alone, without push's routing/notification hooks")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()

    name = f"qorgau_bench_{os.getpid()}"
    admin = psycopg.connect(args.admin_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    db_url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    proc = None
    try:
        creds = setup(db_url, args.devices, args.regions)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": db_url, "QORGAU_SECRET_KEY": "bench"}
        cmd = [str(ROOT / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.workers), "--threads", str(args.threads),
               "--log-level", "warning", "--pythonpath", str(ROOT / "bench"),
               "sync_ingest:app_without_hooks()" if args.no_hooks else "api:create_app()"]
        if args.threads > 1:
            cmd[1:1] = ["--worker-class", "gthread"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        wait_ready(base, proc)
        cpu_before = cpu_snapshot(proc.pid, name)
        elapsed, latencies, sent_ids, errors, all_ids = asyncio.run(
            load(creds, base, args.batch, args.seconds, args.rate))
        cpu = cpu_split(cpu_before, cpu_snapshot(proc.pid, name), elapsed)
        check = verify(db_url, sent_ids, all_ids)
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
        print(f"devices={args.devices} batch={args.batch} seconds={args.seconds} "
              f"gunicorn workers={args.workers} threads={args.threads} "
              f"regions={args.regions} cpus={os.cpu_count()} "
              f"{f'offered={args.rate:,.0f}/s ' if args.rate else 'closed-loop '}"
              f"hooks={'off' if args.no_hooks else 'on'}")
        print(f"batches: {len(latencies)}  errors: {len(errors)}"
              + (f"  first: {errors[0]}" if errors else ""))
        print(f"sustained: {len(sent_ids) / elapsed:,.0f} incidents/s "
              f"({len(latencies) / elapsed:,.1f} batches/s over {elapsed:.1f} s)")
        if latencies:
            print(f"batch latency: p50 {p(0.50):.1f} ms  p95 {p(0.95):.1f} ms  "
                  f"p99 {p(0.99):.1f} ms  mean {statistics.fmean(latencies) * 1000:.1f} ms")
        print("cpu:", cpu)
        print("database check:", check)
        ok = (check["missing"] == 0 and check["unexpected"] == 0 and not errors
              and check["sent"] == check["acknowledged"]
              and check["stored"] == check["stored_distinct"] == check["acknowledged_distinct"]
              == check["acknowledged"] == check["created_events"]
              and check["case_numbers_unique"] and check["case_numbers_gapless"])
        print("exactly the records sent, none twice, none missing:", "OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
