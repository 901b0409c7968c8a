"""The benchmark scripts keep working: each runs once with tiny parameters.

Only that they run, check what was stored and print their figures is asserted
here, never a time. The PostgreSQL ones run in the PostgreSQL pass (each makes
and drops its own database on that server); pwa_timings drives Chromium
against gunicorn on SQLite, in the browser pass.
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.bench
needs_pg = [pytest.mark.postgres,
            pytest.mark.skipif(not PG_URL, reason="needs QORGAU_TEST_DATABASE_URL")]


def admin_url() -> str:
    url = make_url(PG_URL).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


def run(script: str, *args: str, pg: bool = True) -> str:
    cmd = [sys.executable, str(ROOT / "bench" / script), *args]
    if pg:
        cmd += ["--admin-url", admin_url()]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**{k: v for k, v in os.environ.items()
                                    if not k.startswith(("QORGAU_", "DATABASE_"))},
                                 "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def with_pg(func):
    for mark in needs_pg:
        func = mark(func)
    return func


@with_pg
def test_pg_ceiling_runs():
    out = run("pg_ceiling.py", "--seconds", "1", "--batch", "5", "--connections", "1", "2")
    assert "pg ceiling, 1 connection(s):" in out and "pg ceiling, 2 connection(s):" in out
    assert "every incident written is stored: OK" in out


@with_pg
def test_sync_ingest_runs_and_prints_the_ratio_to_the_ceiling():
    out = run("sync_ingest.py", "--devices", "3", "--batch", "5", "--seconds", "2",
              "--workers", "1", "--regions", "2", "--ceiling-seconds", "1")
    assert "ratio to ceiling:" in out
    assert "exactly the records sent, none twice, none missing: OK" in out


@with_pg
def test_push_latency_runs_with_one_and_two_workers():
    out = run("push_latency.py", "--rate", "10", "--seconds", "2", "--devices", "2",
              "--batch", "5", "--gunicorn-workers", "1", "--push-workers", "1", "2")
    assert "1 push worker(s):" in out and "2 push worker(s):" in out
    assert "commit -> police push: p50" in out
    assert "every alert delivered once: OK" in out


@with_pg
def test_sync_storm_runs_through_nginx():
    out = run("sync_storm.py", "--phones", "20", "--within", "1", "--max-seconds", "120",
              "--gunicorn-workers", "2", "--me-first", "--list-after-sync")
    assert "time until every record was acknowledged:" in out
    assert "GET me 200: 20" in out and "GET incidents 200: 20" in out
    assert "lost: 0  duplicated: 0" in out
    assert "every record acknowledged, none lost, none twice: OK" in out


@pytest.mark.browser
def test_pwa_timings_runs_in_chromium():
    out = run("pwa_timings.py", "--taps", "3", "--cold-starts", "1", "--pending", "2",
              "--rounds", "1", pg=False)
    assert "tap to saved (3 taps, offline): p50" in out
    assert "offline cold start until 'Log incident' is enabled (1 launches)" in out
    assert "'online' until 2 pending records are acknowledged" in out
    assert "precache:" in out
    assert "every tap saved, every record acknowledged: OK" in out


@with_pg
def test_review_queries_runs_and_times_a_kept_database_again():
    out = run("review_queries.py", "--incidents", "3000", "--runs", "2", "--keep")
    assert "worst p95: list/detail" in out
    kept = out.split("database ", 1)[1].split(" is kept", 1)[0]
    try:
        again = run("review_queries.py", "--runs", "2", "--reuse", kept)
        assert "seeded in" not in again and "worst p95: list/detail" in again
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{kept}" WITH (FORCE)')


@with_pg
def test_failover_runs_on_its_own_primary_and_standby():
    from tests.replication_helpers import need_server_binaries

    need_server_binaries()  # its clusters are its own, not the test server
    out = run("failover.py", "--runs", "1", "--devices", "3", "--batches", "4",
              "--per-batch", "2", pg=False)
    assert "promote: min" in out and "first sync (server): min" in out
    assert "every acknowledged incident on the promoted standby, once, same number: OK" in out


@pytest.mark.browser
def test_media_upload_runs_in_chromium():
    out = run("media_upload.py", "--megabytes", "0.6", "--link", "good-3g", pg=False)
    assert "time to uploaded:" in out and "3 chunks" in out
    assert "overhead" in out
    assert "stored byte for byte: met" in out
