"""Database binding, SQLite pragmas and the helpers shared by every domain."""

from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from api.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


def init_db(app: Flask) -> None:
    db.init_app(app)
    # Import every model so the metadata is complete for Alembic and create_all.
    import api.models  # noqa: F401


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite enforces foreign keys only when asked, on every connection."""
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


class UTCDateTime(db.TypeDecorator):
    """A timestamp that is always UTC-aware in Python, on PostgreSQL and SQLite alike."""

    impl = db.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
