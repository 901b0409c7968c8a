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
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib
import pg_ceiling

ROOT = benchlib.ROOT
REGIONS = benchlib.REGIONS


def app_without_hooks():
    """gunicorn entry point for --no-hooks: the sync path alone, without the
    hooks other domains register (push routing and notifications)."""
    from api import create_app
    from api.incidents import records as service

    app = create_app()
    service.incident_hooks.clear()
    return app


def setup(db_url: str, devices: int, regions: int) -> list[tuple[str, str]]:
    """Migrate; one crew member with a session per device, one police post per
    region with a subscribed officer, the crew subscribed too: a sync writes the
    same rows as in bench/pg_ceiling.py (the outbox rows stay pending: no push
    worker runs here)."""
    def subscription(person_id):
        return {"endpoint": f"http://127.0.0.1:9/push/{person_id}-{uuid.uuid4().hex}",
                "keys": {"p256dh": "B" + "x" * 86, "auth": "y" * 22}}

    world = benchlib.setup_world(db_url, devices, regions, posts=True,
                                 officer_subscriptions=subscription,
                                 crew_subscriptions=subscription)
    return [(c.token, c.csrf) for c in world.crews]


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


def verify(db_url: str, sent_ids: list[str], all_ids: list[str]) -> dict:
    """sent_ids: acknowledged as created; all_ids: every id sent."""
    check = benchlib.verify(db_url, sent_ids, all_ids)
    check["acknowledged_distinct"] = check["acknowledged"]
    check["acknowledged"] = len(sent_ids)
    check["missing"] = check["acknowledged_but_missing"]
    return check


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--ceiling-seconds", type=float, default=10,
                        help="how long bench/pg_ceiling.py runs first (0: skip it)")
    parser.add_argument("--admin-url", default=benchlib.ADMIN_URL)
    args = parser.parse_args(argv)

    print(f"devices={args.devices} batch={args.batch} seconds={args.seconds} "
          f"gunicorn workers={args.workers} threads={args.threads} "
          f"regions={args.regions} cpus={os.cpu_count()} "
          f"{f'offered={args.rate:,.0f}/s ' if args.rate else 'closed-loop '}"
          f"hooks={'off' if args.no_hooks else 'on'}")
    print("before:", benchlib.machine_load())
    ceiling = []
    if args.ceiling_seconds > 0:
        with benchlib.scratch_database(args.admin_url, "qorgau_ceiling") as (url, _):
            ceiling = pg_ceiling.run(url, args.batch, args.ceiling_seconds,
                                     (1, min(4, args.workers)), min(args.regions, 4))
        pg_ceiling.report(ceiling)
    proc = None
    with benchlib.scratch_database(args.admin_url) as (db_url, name):
        try:
            creds = setup(db_url, args.devices, args.regions)
            port = benchlib.free_port()
            base = f"http://127.0.0.1:{port}"
            env = benchlib.bench_env(db_url)
            env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'bench'}"
            proc = benchlib.start_gunicorn(
                env, port, args.workers, args.threads,
                app="sync_ingest:app_without_hooks()" if args.no_hooks else "api:create_app()")
            cpu_before = benchlib.cpu_snapshot({"gunicorn": proc.pid}, name)
            elapsed, latencies, sent_ids, errors, all_ids = asyncio.run(
                load(creds, base, args.batch, args.seconds, args.rate))
            cpu_after = benchlib.cpu_snapshot({"gunicorn": proc.pid}, name)
            cpu = benchlib.cpu_split(cpu_before, cpu_after, elapsed)
            hz = os.sysconf("SC_CLK_TCK")
            gunicorn_cpu = sum(t - cpu_before["gunicorn"].get(pid, 0)
                               for pid, t in cpu_after["gunicorn"].items()) / hz
        finally:
            benchlib.stop([proc])
        check = verify(db_url, sent_ids, all_ids)
    p = lambda q: benchlib.percentile(latencies, q) * 1000  # noqa: E731
    print(f"batches: {len(latencies)}  errors: {len(errors)}"
          + (f"  first: {errors[0]}" if errors else ""))
    sustained = len(sent_ids) / elapsed
    print(f"sustained: {sustained:,.0f} incidents/s "
          f"({len(latencies) / elapsed:,.1f} batches/s over {elapsed:.1f} s)")
    if latencies:
        print(f"batch latency: p50 {p(0.50):.1f} ms  p95 {p(0.95):.1f} ms  "
              f"p99 {p(0.99):.1f} ms  mean {statistics.fmean(latencies) * 1000:.1f} ms"
              + ("  (target p95 < 250 ms at an offered 1,500/s)" if args.rate else ""))
    if ceiling:
        best = max(c["rows_per_s"] for c in ceiling)
        print(f"ratio to ceiling: {sustained / best:.2f} (of the best pg_ceiling figure, "
              f"{best:,.0f} incidents/s; target at least 0.50)")
    print("cpu:", cpu)
    if latencies:
        # CPU time per batch: less sensitive to a busy machine than throughput.
        print(f"gunicorn cpu per batch of {args.batch}: "
              f"{gunicorn_cpu / len(latencies) * 1000:.1f} ms")
    print("after:", benchlib.machine_load())
    print("database check:", check)
    ok = (check["missing"] == 0 and check["unexpected"] == 0 and not errors
          and check["sent"] == check["acknowledged"]
          and check["stored"] == check["stored_distinct"] == check["acknowledged_distinct"]
          == check["acknowledged"] == check["created_events"]
          and check["case_numbers_unique"] and check["case_numbers_gapless"])
    print("exactly the records sent, none twice, none missing:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
