"""PostgreSQL's own ceiling for a sync: psycopg alone, no framework.

One real sync of a batch through the app (in process) writes the template
rows; then each connection writes, in one transaction per batch, exactly the
rows such a sync writes, copied with new ids and case numbers, by the same
statements in the same order:

    sync_devices upsert; incidents without case numbers (multi-row INSERT
    ... ON CONFLICT (id) DO NOTHING RETURNING *); police_alerts; case_counters
    upsert (+batch, RETURNING), taken last as the app does; incidents UPDATE
    (their case numbers and the post they were routed to); incident_events
    "created" and "routed"; push_outbox (the post's officer and the reporter);
    pg_notify; ledger_receipts; COMMIT

All connections draw case numbers from ONE region's counter (a regional
storm), so with several connections they queue on its row as the app does.

    .venv/bin/python bench/pg_ceiling.py [--batch 20] [--seconds 10]
        [--connections 1 4] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Prints rows/s (incidents) and batches/s for each connection count; exits
non-zero if the database does not then hold exactly the incidents written.
`run()` is what bench/sync_ingest.py calls first.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

# The tables a sync writes, and the key that picks the template's rows.
TABLES = ("incidents", "incident_events", "police_alerts", "push_outbox", "ledger_receipts")


def _columns(conn, table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of the table's columns, without generated serial ids."""
    return [(name, sqltype) for name, sqltype, default in conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum", (table,))
        if not (default or "").startswith("nextval(")]


def make_templates(db_url: str, batch: int) -> dict:
    """Run one real sync of `batch` records; return its rows (as text) per table."""
    from api import create_app
    from tests.push_service import PushService, vapid_pem

    service = PushService()
    try:
        world = benchlib.setup_world(
            db_url, 2, 1, posts=True,
            officer_subscriptions=lambda _: service.subscribe().to_json(),
            crew_subscriptions=lambda _: service.subscribe().to_json())
        app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "bench",
                          "PUSH_VAPID_PRIVATE_KEY": vapid_pem()})
        client = app.test_client()
        crew = world.crews[0]
        client.set_cookie("qorgau_session", crew.token, domain="localhost")
        reply = client.post("/api/v1/incidents/sync", headers={"X-CSRF-Token": crew.csrf},
                            json=benchlib.sync_body("template", [benchlib.record()
                                                                 for _ in range(batch)]))
        assert reply.status_code == 200, reply.get_data(as_text=True)
        assert all(r["status"] == "created" for r in reply.get_json()["results"])
        with app.app_context():
            from api.extensions import db
            db.engine.dispose()
    finally:
        service.close()
    templates = {}
    with psycopg.connect(db_url) as conn:
        for table in TABLES:
            cols = _columns(conn, table)
            select = ", ".join(f'"{c}"::text' for c, _ in cols)
            rows = conn.execute(f"SELECT {select} FROM {table}").fetchall()
            templates[table] = (cols, [dict(zip([c for c, _ in cols], r, strict=True))
                                       for r in rows])
        templates["device"] = conn.execute(
            "SELECT person_id, station_id FROM sync_devices").fetchone()
        templates["region"] = conn.execute("SELECT region_code FROM case_counters").fetchone()[0]
    return templates


def _insert_sql(table: str, cols: list[tuple[str, str]], rows: int, tail: str = "") -> str:
    one = "(" + ", ".join(f"%s::{t}" for _, t in cols) + ")"
    names = ", ".join(f'"{c}"' for c, _ in cols)
    return f"INSERT INTO {table} ({names}) VALUES " + ", ".join([one] * rows) + tail


class Writer:
    """One connection writing copies of the template batch."""

    def __init__(self, db_url: str, templates: dict, batch: int, device: str,
                 region: str | None = None):
        self.conn = psycopg.connect(db_url)
        self.region = region or templates["region"]
        self.t = templates
        self.batch = batch
        self.device = device
        self.written: list[str] = []
        inc_cols, _ = templates["incidents"]
        ev_cols, events = templates["incident_events"]
        self.created = [e for e in events if e["kind"] == "created"][:batch]
        self.routed = [e for e in events if e["kind"] == "routed"][:batch]
        self.alerts = templates["police_alerts"][1][:batch]
        outbox = templates["push_outbox"][1]
        self.per_incident = max(1, len(outbox) // batch)
        self.outbox = outbox[:batch * self.per_incident]
        self.receipts = templates["ledger_receipts"][1][:batch]
        self.incidents = templates["incidents"][1][:batch]
        self.sql = {
            "incidents": _insert_sql("incidents", inc_cols, batch,
                                     " ON CONFLICT (id) DO NOTHING RETURNING *"),
            "events": _insert_sql("incident_events", ev_cols, batch, " RETURNING id"),
            "alerts": _insert_sql("police_alerts", templates["police_alerts"][0], batch),
            "outbox": _insert_sql("push_outbox", templates["push_outbox"][0],
                                  batch * self.per_incident),
            "receipts": _insert_sql("ledger_receipts", templates["ledger_receipts"][0], batch,
                                    " ON CONFLICT (incident_id, revision) DO NOTHING"),
        }

    def _values(self, table: str, rows: list[dict], ids: list[str], repeat: int = 1) -> list:
        cols = [c for c, _ in self.t[table][0]]
        out = []
        for n, row in enumerate(rows):
            ident = ids[n // repeat]
            for c in cols:
                out.append(ident if c == "incident_id" else row[c])
        return out

    def one_batch(self) -> None:
        ids = [str(uuid.uuid4()) for _ in range(self.batch)]
        person, station = self.t["device"]
        cur = self.conn.cursor()
        with self.conn.transaction():
            cur.execute(
                "INSERT INTO sync_devices (person_id, device_id, station_id, app_version, "
                "outbox_size, last_sync_at, last_sent_at, clock_skew_s, last_batch_size) "
                "VALUES (%s, %s, %s, 'bench', %s, now(), now(), 0.01, %s) "
                "ON CONFLICT (person_id, device_id) DO UPDATE SET "
                "station_id = excluded.station_id, "
                "app_version = excluded.app_version, outbox_size = excluded.outbox_size, "
                "last_sync_at = excluded.last_sync_at, last_sent_at = excluded.last_sent_at, "
                "clock_skew_s = excluded.clock_skew_s, last_batch_size = excluded.last_batch_size",
                (person, self.device, station, self.batch, self.batch))
            incidents = [dict(row, id=ids[n], case_number=None)
                         for n, row in enumerate(self.incidents)]
            cur.execute(self.sql["incidents"], self._values("incidents", incidents, ids))
            cur.fetchall()
            cur.execute(self.sql["alerts"], self._values("police_alerts", self.alerts, ids))
            last = cur.execute(
                "INSERT INTO case_counters (region_code, year, last) VALUES (%s, 2026, %s) "
                "ON CONFLICT (region_code, year) DO UPDATE SET last = case_counters.last "
                "+ excluded.last RETURNING case_counters.last",
                (self.region, self.batch)).fetchone()[0]
            first = last - self.batch + 1
            post = self.alerts[0]["post_id"]
            cur.executemany("UPDATE incidents SET updated_at = now(), post_id = %s, "
                            "status = 'routed', case_number = %s WHERE id = %s",
                            [(post, f"QG-{self.region}-2026-{first + n:06d}", ident)
                             for n, ident in enumerate(ids)])
            cur.execute(self.sql["events"], self._values("incident_events", self.created, ids))
            cur.execute(self.sql["events"], self._values("incident_events", self.routed, ids))
            cur.execute(self.sql["outbox"], self._values("push_outbox", self.outbox, ids,
                                                         self.per_incident))
            cur.execute("SELECT pg_notify('qorgau_push_ceiling', '')")
            cur.execute(self.sql["receipts"], self._values("ledger_receipts", self.receipts, ids))
        self.written.extend(ids)


def measure(db_url: str, templates: dict, batch: int, seconds: float,
            connections: int, regions: int = 1) -> dict:
    """`regions`: connection n draws from the counter of region n % regions."""
    codes = [templates["region"]] + [r for r in benchlib.REGIONS if r != templates["region"]]
    writers = [Writer(db_url, templates, batch, f"ceiling-{connections}-{n}",
                      codes[n % regions])
               for n in range(connections)]
    for w in writers:  # warm: statements prepared, caches hot
        for _ in range(6):
            w.one_batch()
        w.written.clear()
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(w: Writer):
        mine = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            w.one_batch()
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    written = [i for w in writers for i in w.written]
    for w in writers:
        w.conn.close()
    return {"connections": connections, "regions": min(regions, connections),
            "rows_per_s": len(written) / elapsed,
            "batches_per_s": len(latencies) / elapsed, "elapsed": elapsed,
            "p50_ms": benchlib.percentile(latencies, 0.5) * 1000,
            "p95_ms": benchlib.percentile(latencies, 0.95) * 1000, "written": written}


def run(db_url: str, batch: int = 20, seconds: float = 10,
        connections: tuple[int, ...] = (1, 4), regions: int = 1) -> list[dict]:
    """Templates from one real sync, then the ceiling per connection count.
    `db_url` must be an empty database (it is migrated and filled here)."""
    templates = make_templates(db_url, batch)
    results = [measure(db_url, templates, batch, seconds, n, regions) for n in connections]
    with psycopg.connect(db_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT id::text FROM incidents")}
    for result in results:
        result["missing"] = len(set(result["written"]) - stored)
    return results


def report(results: list[dict]) -> None:
    for r in results:
        print(f"pg ceiling, {r['connections']} connection(s): {r['rows_per_s']:,.0f} incidents/s "
              f"({r['batches_per_s']:,.1f} batches/s over {r['elapsed']:.1f} s; "
              f"batch p50 {r['p50_ms']:.1f} ms p95 {r['p95_ms']:.1f} ms; "
              f"{r['regions']} region counter(s))"
              + (f"  MISSING {r['missing']}" if r["missing"] else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--regions", type=int, default=1,
                        help="case-number counters the connections share (1: one region's storm)")
    parser.add_argument("--admin-url", default=benchlib.ADMIN_URL)
    args = parser.parse_args()
    print(f"batch={args.batch} seconds={args.seconds} connections={args.connections}; "
          f"{benchlib.machine_load()}")
    with benchlib.scratch_database(args.admin_url, "qorgau_ceiling") as (db_url, _):
        results = run(db_url, args.batch, args.seconds, tuple(args.connections), args.regions)
    report(results)
    ok = all(r["missing"] == 0 and r["written"] for r in results)
    print("every incident written is stored:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
