"""Push latency: from a sync's commit to the police alert arriving at a push service.

gunicorn + PostgreSQL + `flask push worker` processes, and the loopback Web
Push service of the tests (tests/push_service.py: it checks the VAPID
signature and decrypts every message). Crew devices of --regions regions
sync batches of new incidents on a fixed schedule (sync_ingest's open loop)
for --seconds; each region's police post has one subscribed officer, and each
crew member is subscribed too (the "received" confirmation), as in life. Then
the run waits for every police alert to arrive.

Latency per alert: its arrival at the push service minus the moment the
phone had the sync's answer (the commit happened just before it; the answer's
transfer over loopback is well under a millisecond). Run once with one push
worker and once with two (fresh database each).

    .venv/bin/python bench/push_latency.py [--rate 40] [--seconds 20] [--devices 20]
        [--batch 20] [--regions 2] [--gunicorn-workers 4] [--push-workers 1 2]

Target: p95 < 500 ms. Exits non-zero if an alert is missing or came twice.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

TARGET_P95_MS = 500


async def _device(crew, base, batch, interval, first, deadline, answered, errors):
    scheduled = first
    async with aiohttp.ClientSession(headers=crew.headers) as http:
        while True:
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if scheduled >= deadline:
                return
            scheduled += interval
            body = benchlib.sync_body(f"push-bench-{crew.person_id}",
                                      [benchlib.record() for _ in range(batch)])
            try:
                async with http.post(f"{base}/api/v1/incidents/sync", json=body,
                                     timeout=aiohttp.ClientTimeout(total=60)) as resp:
                    data = await resp.json(content_type=None)
                    at = time.time()
                    if resp.status != 200:
                        errors.append(f"{resp.status}: {str(data)[:200]}")
                        continue
            except (aiohttp.ClientError, TimeoutError) as err:
                errors.append(repr(err))
                continue
            for result in data["results"]:
                if result["status"] == "created":
                    answered[result["id"]] = at
                else:
                    errors.append(f"{result['id']}: {result['status']}")


async def _load(crews, base, batch, rate, seconds):
    answered: dict[str, float] = {}
    errors: list[str] = []
    interval = len(crews) * batch / rate
    start = time.monotonic()
    await asyncio.gather(*[
        _device(c, base, batch, interval, start + interval * n / len(crews), start + seconds,
                answered, errors) for n, c in enumerate(crews)])
    return answered, errors, time.monotonic() - start


def one_run(args, push_workers: int) -> dict:
    service, vapid_pem = benchlib.push_service()
    procs = []
    try:
        with benchlib.scratch_database(args.admin_url, "qorgau_push") as (db_url, name):
            try:
                world = benchlib.setup_world(
                    db_url, args.devices, args.regions, posts=True,
                    officer_subscriptions=lambda _: service.subscribe().to_json(),
                    crew_subscriptions=lambda _: service.subscribe().to_json())
                env = benchlib.bench_env(db_url, QORGAU_PUSH_VAPID_PRIVATE_KEY=vapid_pem(),
                                         QORGAU_PUSH_POLL_SECONDS=2)
                port = benchlib.free_port()
                procs.append(benchlib.start_gunicorn(env, port, args.gunicorn_workers))
                procs += benchlib.start_push_workers(env, push_workers)
                time.sleep(2)  # the workers are listening
                groups = {"gunicorn": procs[0].pid}
                groups.update({f"push{n + 1}": p.pid for n, p in enumerate(procs[1:])})
                before = benchlib.cpu_snapshot(groups, name)
                answered, errors, elapsed = asyncio.run(_load(
                    world.crews, f"http://127.0.0.1:{port}", args.batch, args.rate,
                    args.seconds))
                cpu = benchlib.cpu_split(before, benchlib.cpu_snapshot(groups, name), elapsed)
                load_end = time.time()

                def alerts():
                    return [r for r in service.delivered()
                            if r.payload.get("type") == "police.alert"]

                end = time.monotonic() + args.drain
                while time.monotonic() < end and len(alerts()) < len(answered):
                    time.sleep(0.2)
                delivered = alerts()
                every = service.delivered()
            finally:
                benchlib.stop(procs)  # before the database is dropped
    finally:
        service.close()
    per_incident = Counter(r.payload["incident_id"] for r in delivered)
    latencies = [(r.at - answered[r.payload["incident_id"]]) * 1000 for r in delivered
                 if r.payload["incident_id"] in answered]
    span = (max(r.at for r in every) - min(r.at for r in every)) if len(every) > 1 else 0
    return {"push_workers": push_workers, "synced": len(answered), "elapsed": elapsed,
            "alerts": len(per_incident), "twice": sum(1 for n in per_incident.values() if n > 1),
            "missing": len(set(answered) - set(per_incident)),
            "pushes": len(every), "push_rate": len(every) / span if span else float("nan"),
            "after_load": sum(1 for r in every if r.at > load_end),
            "errors": errors, "cpu": cpu,
            "p50": benchlib.percentile(latencies, 0.5),
            "p95": benchlib.percentile(latencies, 0.95),
            "max": max(latencies, default=float("nan"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=40,
                        help="incidents/s offered (each makes two pushes: the police "
                             "alert and the crew's confirmation)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--regions", type=int, default=2)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--push-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--drain", type=float, default=60,
                        help="seconds to wait after the load for the last alerts")
    parser.add_argument("--admin-url", default=benchlib.ADMIN_URL)
    args = parser.parse_args(argv)
    print(f"rate={args.rate:,.0f} incidents/s seconds={args.seconds} devices={args.devices} "
          f"batch={args.batch} regions={args.regions} gunicorn workers={args.gunicorn_workers}")
    print("before:", benchlib.machine_load())
    ok = True
    for n in args.push_workers:
        r = one_run(args, n)
        print(f"{n} push worker(s): {r['synced']} incidents synced in {r['elapsed']:.1f} s, "
              f"{r['alerts']} police alerts delivered ({r['missing']} missing, {r['twice']} "
              f"twice); errors {len(r['errors'])}"
              + (f" first: {r['errors'][0]}" if r["errors"] else ""))
        print(f"  commit -> police push: p50 {r['p50']:.0f} ms  p95 {r['p95']:.0f} ms  "
              f"max {r['max']:.0f} ms  (target p95 < {TARGET_P95_MS} ms: "
              f"{benchlib.verdict(r['p95'] < TARGET_P95_MS)})")
        print(f"  pushes delivered: {r['pushes']} (alerts and crew confirmations) at "
              f"{r['push_rate']:,.0f}/s; {r['after_load']} of them after the load ended "
              f"(the workers' throughput is below the offered {2 * args.rate:,.0f}/s "
              "when that is large)")
        print(f"  cpu during the load: {r['cpu']}")
        ok = ok and not r["missing"] and not r["twice"] and not r["errors"] and r["synced"] > 0
    print("after:", benchlib.machine_load())
    print("every alert delivered once:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
