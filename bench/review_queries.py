"""Manager review benchmark: 1,000,000 incidents in PostgreSQL, the real Flask app.

Seeds 20 regions x 10 stations (busy stations are busier: a quadratic skew),
150 police posts, 4,000 crew members and 1,000,000 incidents over 3 years with
their "created" events and police alerts, with INSERT ... SELECT over
generate_series. Then times the review endpoints through the app (routing,
session, scope rule, SQL, serialisation) for two managers: the busiest
station's manager and a manager of all ten stations of that region. Prints
p50 and p95 in milliseconds. Creates its own database on 127.0.0.1:5432 and
drops it afterwards.

    .venv/bin/python bench/review_queries.py [--incidents 1000000] [--runs 40] [--keep]
        [--reuse DATABASE]

--keep leaves the seeded database in place and prints its name; --reuse times
the queries again on such a database without seeding it again (the three runs
of a quiet-machine measurement cost one seeding, not three). Drop it
afterwards: psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE "NAME"'.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchlib import ADMIN_URL, machine_load  # noqa: E402

STATIONS_PER_REGION = 10
CREW_PER_STATION = 20
POSTS = 150

SEED_SQL = """
INSERT INTO police_posts (code, hospital_name, region_code, lat, lon)
SELECT 'BP-' || p, 'Hospital ' || p, r.code, 43 + p % 10 * 0.01, 76 + p % 7 * 0.01
FROM generate_series(0, {posts} - 1) p
JOIN (SELECT code, row_number() OVER (ORDER BY code) - 1 AS n FROM regions) r
  ON r.n = p % 20;

INSERT INTO stations (code, name, region_code, lat, lon, default_post_id)
SELECT 'BS-' || s, 'Substation ' || s, r.code, 43.2, 76.9,
       (SELECT min(id) FROM police_posts pp WHERE pp.region_code = r.code)
FROM generate_series(0, {stations} - 1) s
JOIN (SELECT code, row_number() OVER (ORDER BY code) - 1 AS n FROM regions) r
  ON r.n = s / {per_region};

INSERT INTO people (display_name, role, position, station_id, language, active, created_at,
                    webauthn_user_handle)
SELECT 'Crew ' || c, 'crew', (ARRAY['doctor','feldsher','nurse','driver'])[c % 4 + 1],
       (SELECT id FROM stations WHERE code = 'BS-' || (c / {crew})), 'ru', true, now(),
       decode(md5('crew' || c), 'hex')
FROM generate_series(0, {stations} * {crew} - 1) c;

CREATE TEMP TABLE station_ix AS
SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, region_code, default_post_id
FROM stations WHERE code LIKE 'BS-%';
CREATE TEMP TABLE crew_ix AS
SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, position FROM people WHERE role = 'crew';

SELECT setseed(0.380);
INSERT INTO incidents (id, case_number, reporter_id, station_id, reporter_position, tapped_at,
    tapped_offset_min, received_at, clock_skew_s, device_time_flag, logged_at, occurred_at,
    updated_at,
    device_id, revision, kind, aggravating, victim_role, on_duty, police_needed, lat, lon,
    accuracy_m, location_fixed_at, location_source, destination_post_id, note, status,
    post_id, erdr_number, classification, legal_status, legal_part)
SELECT md5('incident' || g.i)::uuid,
       'QG-' || st.region_code || '-' || g.i,
       cr.id, st.id, cr.position, g.at, 300, g.at + g.delay, 0, NULL, g.at, g.at,
       g.at + g.delay,
       'device-' || cr.id, 1,
       (ARRAY['threat','violence','violence_dangerous','unspecified','other'])[g.k + 1],
       CASE WHEN g.i % 7 = 0 THEN '["group"]' ELSE '[]' END::json,
       cr.position, true, g.i % 3 = 0,
       43.2 + g.r1 * 0.1, 76.8 + g.r2 * 0.1, 12, g.at, 'gps', NULL,
       CASE WHEN g.i % 5 = 0 THEN 'Пациент угрожал ножом, вызвана полиция'
            WHEN g.i % 5 = 1 THEN 'Родственники толкнули фельдшера'
            ELSE '' END,
       (ARRAY['logged','routed','acknowledged','investigating','closed'])[g.i % 5 + 1],
       CASE WHEN g.i % 10 < 7 THEN st.default_post_id END,
       CASE WHEN g.i % 10 = 0 THEN '26' || lpad(g.i::text, 13, '0') END,
       json_build_object('status', 'offence', 'part', g.k + 1),
       CASE WHEN g.k < 3 THEN 'offence' ELSE 'not_assessed' END,
       CASE WHEN g.k < 3 THEN g.k * 2 + 1 + (g.i % 7 = 0)::int END
FROM (
    SELECT i,
           floor({stations} * power(random(), 2))::int AS s,
           floor(random() * {crew})::int AS c,
           now() - random() * interval '3 years' AS at,
           random() * random() * random() * interval '2 hours' AS delay,
           floor(random() * 5)::int AS k,
           random() AS r1, random() AS r2
    FROM generate_series(1, {incidents}) i
) g
JOIN station_ix st ON st.n = g.s
JOIN crew_ix cr ON cr.n = g.s * {crew} + g.c;

-- seq/prev_hash/hash are placeholders (bench data; `flask ledger verify` would flag them).
INSERT INTO incident_events (incident_id, at, actor_id, kind, revision, changes,
                             seq, prev_hash, hash)
SELECT id, received_at, reporter_id, 'created', 1, '{{"kind": [null, "x"]}}'::json,
       1, repeat('0', 64), encode(sha256(id::text::bytea), 'hex')
FROM incidents;

INSERT INTO police_alerts (incident_id, post_id, reason, distance_km, routed_at,
                           acknowledged_at, region_code)
SELECT i.id, i.post_id, 'station_default', 2.5, i.received_at,
       CASE WHEN i.status <> 'routed'
            THEN i.received_at + random() * random() * interval '30 minutes' END,
       s.region_code
FROM incidents i JOIN stations s ON s.id = i.station_id
WHERE i.post_id IS NOT NULL;

-- As api.police.service does on acknowledgement: the time is on the incident too.
UPDATE incidents i SET acknowledged_at = a.acknowledged_at
FROM police_alerts a WHERE a.incident_id = i.id AND a.acknowledged_at IS NOT NULL;

ANALYZE;
"""


def ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--reuse", metavar="DATABASE",
                        help="a database left by --keep: time it again, without seeding")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()

    server = args.admin_url.rsplit("/", 1)[0]
    if args.reuse:
        return run(f"{server}/{args.reuse}", args, seed=False)
    name = f"qorgau_bench_review_{os.getpid()}"
    url = f"{server}/{name}"
    if args.keep:
        print(f"database {name} is kept (--reuse {name} to time it again)")
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return run(url, args)
    finally:
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_database(app, url: str, args) -> None:
    from flask_migrate import upgrade

    from api.extensions import db

    with app.app_context():
        upgrade()
        db.engine.dispose()

    stations = STATIONS_PER_REGION * 20
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_SQL.format(posts=POSTS, stations=stations,
                                     per_region=STATIONS_PER_REGION, crew=CREW_PER_STATION,
                                     incidents=args.incidents))
        # A bulk load leaves the visibility map unset, so index-only scans (the
        # review's totals and figures) would still visit the heap. In production
        # rows arrive a batch at a time and autovacuum sets it as it goes (see
        # docs/operations.md); here one VACUUM stands in for that.
        for table in ("incidents", "police_alerts", "incident_events"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("incidents", "incident_events", "police_alerts", "people")}
    seeded = time.perf_counter() - started
    print(f"seeded in {seeded:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


def run(url: str, args, seed: bool = True) -> int:
    from sqlalchemy import func, select

    from api import create_app
    from api.auth.access import SESSION_COOKIE
    from api.auth.sessions import start_session
    from api.extensions import db
    from api.incidents.models import Incident
    from api.orgs.models import Language, Person, Role, Station
    from api.review.service import local_midnight, zone

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench",
                      "REVIEW_EXPORT_MAX_ROWS": 10**7})
    if seed:
        seed_database(app, url, args)
    print("before:", machine_load())
    with app.app_context():
        busiest = db.session.scalar(select(Station).where(Station.code == "BS-0"))
        region = list(db.session.scalars(select(Station).where(
            Station.region_code == busiest.region_code, Station.code.like("BS-%"))))
        one = Person(display_name="Manager one", role=Role.MANAGER, language=Language.RU,
                     managed_stations=[busiest])
        many = Person(display_name="Manager region", role=Role.MANAGER, language=Language.RU,
                      managed_stations=region)
        db.session.add_all([one, many])
        db.session.commit()
        managers = {}
        for label, person in (("1 station", one), (f"{len(region)} stations", many)):
            token, _ = start_session(person, user_agent="bench")
            scope = [s.id for s in person.managed_stations]
            size = db.session.scalar(select(func.count()).select_from(Incident)
                                     .where(Incident.station_id.in_(scope)))
            ids = [str(i) for i in db.session.scalars(
                select(Incident.id).where(Incident.station_id.in_(scope))
                .order_by(func.random()).limit(args.runs))]
            # A search people actually make: one case number (rare, unlike the
            # note word ножом, which a fifth of all incidents contain).
            case_no = db.session.scalar(select(Incident.case_number).where(
                Incident.id == ids[0])) if ids else "QG-00-0"
            managers[label] = (token, size, ids, scope, case_no)
        db.session.remove()

    client = app.test_client()
    results = []

    def timed(label, scope, url_for, runs=args.runs, check=None):
        samples = []
        for n in range(runs + 3):
            target = url_for(n)
            t = time.perf_counter()
            response = client.get(target)
            body = response.get_data()
            elapsed = time.perf_counter() - t
            assert response.status_code == 200, (target, response.status_code, body[:300])
            if check:
                check(response)
            if n >= 3:  # warm-up excluded
                samples.append(elapsed)
        p50, p95 = ms(samples)
        results.append((label, scope, p50, p95, len(samples)))
        print(f"  {label:<44} {scope:<12} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms", flush=True)

    base = "/api/v1/review"
    filters = "kind=violence&part=3&from=2025-01-01&to=2025-12-31"
    for scope, (token, size, ids, scope_ids, case_no) in managers.items():
        client.set_cookie(SESSION_COOKIE, token, domain="localhost")
        print(f"manager of {scope}: {size:,} incidents in scope")
        # Deep pages: the cursor of page 100 (50 a page), then that page, timed.
        cursors = {}
        for key, query in (("plain", ""), ("filtered", filters)):
            cursor, page = None, 0
            while page < 100:
                body = client.get(f"{base}/incidents?limit=50&{query}"
                                  + (f"&cursor={cursor}" if cursor else "")).get_json()
                cursor = body["next_cursor"]
                page += 1
                if cursor is None:
                    break
            cursors[key] = (cursor, page)
        timed("list, first page", scope, lambda n: f"{base}/incidents?limit=50")
        timed("list, first page, kind+part+year", scope,
              lambda n: f"{base}/incidents?limit=50&{filters}")
        timed("list, first page, police_needed+status", scope,
              lambda n: f"{base}/incidents?limit=50&police_needed=true&status=closed")
        timed("list, first page, q=ножом", scope,
              lambda n: f"{base}/incidents?limit=50&q=%D0%BD%D0%BE%D0%B6%D0%BE%D0%BC")
        timed("list, first page, q=<a case number>", scope,
              lambda n, c=case_no: f"{base}/incidents?limit=50&q={c}")
        timed("list, first page, sort=received_at", scope,
              lambda n: f"{base}/incidents?limit=50&sort=received_at")
        for key, (cursor, page) in cursors.items():
            if cursor:
                timed(f"list, page {page + 1} ({key})", scope,
                      lambda n, c=cursor, q=(filters if key == "filtered" else ""):
                      f"{base}/incidents?limit=50&{q}&cursor={c}")
        timed("detail", scope, lambda n, ids=ids: f"{base}/incidents/{ids[n % len(ids)]}")
        timed("figures, 12 months", scope, lambda n: f"{base}/figures")
        timed("figures, 3 years", scope,
              lambda n: f"{base}/figures?from=2023-01-01&to=2026-12-31")
        # An export of about 10,000 rows: the newest incidents back to the date
        # where the count reaches 10,000.
        with app.app_context():
            edge = db.session.scalar(
                select(Incident.occurred_at).where(Incident.station_id.in_(scope_ids))
                .order_by(Incident.occurred_at.desc()).offset(9_999).limit(1))
            day = edge.astimezone(zone()).date() if edge else date(2000, 1, 1)
            since = day.isoformat()
            rows = db.session.scalar(select(func.count()).select_from(Incident).where(
                Incident.station_id.in_(scope_ids),
                Incident.occurred_at >= local_midnight(day)))
            db.session.remove()
        timed(f"CSV export, from={since} (~{rows:,} rows)", scope,
              lambda n, s=since: f"{base}/export.csv?from={s}", runs=max(5, args.runs // 8))
    print()
    worst = {"list/detail": max(r[3] for r in results if r[0].startswith(("list", "detail"))),
             "figures": max(r[3] for r in results if r[0].startswith("figures"))}
    print(f"worst p95: list/detail {worst['list/detail']:.1f} ms (target < 100), "
          f"figures {worst['figures']:.1f} ms (target < 300)")
    print("after:", machine_load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
