"""deploy/backup.sh and deploy/restore.sh against a real PostgreSQL server.

A fresh database gets the schema and the demo data, backup.sh dumps it,
restore.sh restores the dump into another fresh database, and every table must
hold the same rows. Both databases are dropped. The server is the one the
PostgreSQL pass uses (QORGAU_TEST_DATABASE_URL), else QORGAU_TEST_PG_ADMIN_URL,
else 127.0.0.1:5432 as postgres; skipped only when it is unreachable and CI is
not set.
"""

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def admin_url() -> str:
    if os.environ.get("QORGAU_TEST_DATABASE_URL"):
        url = make_url(os.environ["QORGAU_TEST_DATABASE_URL"]).set(
            drivername="postgresql", database="postgres")
        return url.render_as_string(hide_password=False)
    return os.environ.get("QORGAU_TEST_PG_ADMIN_URL",
                          "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def admin():
    url = admin_url()
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and PostgreSQL is unreachable at {url}: {err}")
        pytest.skip(f"PostgreSQL unreachable at {url}")
    for tool in ("pg_dump", "pg_restore", "psql", "createdb"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing (Debian package postgresql-client)")
    names: list[str] = []

    def database_url(name: str, create: bool) -> str:
        names.append(name)
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return make_url(url).set(database=name).render_as_string(hide_password=False)

    try:
        yield database_url
    finally:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        conn.close()


def row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        return {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(t))).fetchone()[0] for t in tables}


def seed(url: str) -> None:
    """The schema from the migrations and the demo data, as a real install has."""
    from flask_migrate import upgrade

    from api import create_app
    from api.core.cli import seed_demo
    from api.extensions import db

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test"})
    with app.app_context():
        upgrade()
        seed_demo()
        db.session.commit()
        db.engine.dispose()


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result


def test_backup_then_restore_into_a_new_database(admin, tmp_path):
    tag = uuid.uuid4().hex[:8]
    source = admin(f"qorgau_backup_src_{tag}", create=True)
    seed(source)
    before = row_counts(source)
    assert before["alembic_version"] == 1
    assert sum(before.values()) > 10, before

    backups = tmp_path / "backups"
    dump = Path(run(str(DEPLOY / "backup.sh"),
                    env={"DATABASE_URL": source, "QORGAU_BACKUP_DIR": str(backups)})
                .stdout.strip())
    assert dump.parent == backups and dump.name.startswith("qorgau-")
    assert dump.suffix == ".dump" and dump.stat().st_mode & 0o077 == 0
    assert list(backups.iterdir()) == [dump]  # no partial file left

    # restore.sh creates the target database itself.
    target = admin(f"qorgau_backup_dst_{tag}", create=False)
    run(str(DEPLOY / "restore.sh"), str(dump), target)
    assert row_counts(target) == before

    # ... and refuses to restore over a database that has tables.
    again = subprocess.run([str(DEPLOY / "restore.sh"), str(dump), target],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "already has" in again.stderr
    assert row_counts(target) == before
