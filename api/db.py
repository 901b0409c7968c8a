"""Database binding, SQLite pragmas and the helpers shared by every domain."""

import re
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import bindparam, event, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from api.extensions import db

# A PostgreSQL server that does not answer gives up after this many seconds
# (libpq waits for the operating system's TCP timeout otherwise: minutes).
CONNECT_TIMEOUT_SECONDS = 5

# SQLSTATEs of a server that is gone, going or not yet back: class 08
# (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect
# now) and 53300 (too many connections).
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
# What the drivers say when there is no server to talk to (psycopg's
# connection errors often carry no SQLSTATE at all).
_UNAVAILABLE_MESSAGES = (
    "server closed the connection", "could not connect", "connection refused",
    "connection failed", "connection is closed", "connection already closed",
    "terminating connection", "the database system is starting up",
    "the database system is shutting down", "the database system is in recovery mode",
    "no connection to the server", "consuming input failed", "ssl connection has been closed",
    "connection timeout expired", "timeout expired", "could not receive data from server",
    "could not send data to server", "connection not open", "server conn crashed",
    # SQLite: another writer held the file past busy_timeout, or it cannot be opened.
    "database is locked", "unable to open database file",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# psycopg parses a query's %(name)s placeholders on every execute, and caches
# the result only for queries under 4 KiB with at most 50 parameters. A sync's
# multi-row INSERTs (SQLAlchemy's insertmanyvalues: 20 incidents x 30 columns)
# are far longer, so each batch parsed them again: about 7 % of a sync worker's
# time in bench/sync_ingest.py under py-spy. They are the same few statements
# every time, so they are cached too (the cache keeps at most 128 queries).
PSYCOPG_CACHED_QUERY_LENGTH = 256 * 1024
PSYCOPG_CACHED_QUERY_PARAMS = 4096


def _cache_long_queries() -> None:
    try:
        from psycopg import _queries
    except ImportError:  # psycopg is not installed: SQLite only
        return
    if hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH"):
        _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH,
                                                   PSYCOPG_CACHED_QUERY_LENGTH)
    if hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS"):
        _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS,
                                                   PSYCOPG_CACHED_QUERY_PARAMS)


def insert_rows(stmt, rows: list[dict]) -> None:
    """Insert `rows` (dicts with the same keys) with one Core executemany.

    `stmt` is a Core insert() of a Table (an ORM class's __table__), possibly
    with on_conflict_do_nothing(). The same SQL as the ORM's bulk insert of
    the class (psycopg sends it in one pipeline), without the ORM's per-row
    bookkeeping: for a sync batch of 20, its police alerts, push outbox rows
    and receipts took about a quarter of the batch's Python time that way.
    """
    if rows:
        db.session.execute(stmt, rows)


def update_rows(table, rows: list[dict]) -> None:
    """UPDATE `table` by id from `rows` (each has "row_id" and the columns to set):
    one Core executemany per set of column names, as insert_rows does."""
    by_names: dict[tuple, list[dict]] = {}
    for row in rows:
        by_names.setdefault(tuple(sorted(row)), []).append(row)
    for names, group in by_names.items():
        values = {name: bindparam(name) for name in names if name != "row_id"}
        db.session.execute(update(table).where(table.c.id == bindparam("row_id"))
                           .values(values), group)


def iso_utc(value: datetime) -> str:
    """An aware instant as the API writes it: ISO 8601 with a Z (2026-06-01T05:05:00Z)."""
    return value.isoformat().replace("+00:00", "Z")


def str_enum(enum_cls, name):
    """An enum column stored as plain strings with a CHECK, so adding a value is a
    simple migration."""
    return db.Enum(enum_cls, name=name, native_enum=False, create_constraint=True,
                   values_callable=lambda e: [m.value for m in e], length=16)


def dialect_insert(model):
    """INSERT with the dialect's ON CONFLICT (PostgreSQL's or SQLite's)."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def init_db(app: Flask) -> None:
    _bound_connect_time(app)
    _cache_long_queries()
    db.init_app(app)


def _unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


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
        # SQLite's own lower() folds ASCII only, so a search for "Ножом" would
        # miss "ножом" (PostgreSQL folds all of Unicode): Python's lower instead.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def _bound_connect_time(app: Flask) -> None:
    """PostgreSQL connections give up after CONNECT_TIMEOUT_SECONDS unless configured."""
    if not str(app.config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("postgresql"):
        return
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    if app.config.get("DATABASE_PGBOUNCER"):
        # PgBouncer's transaction mode hands each transaction whichever server
        # connection is free: a statement psycopg prepared on one is unknown on
        # the next ("prepared statement _pg3_0 does not exist"). Never prepare.
        connect_args["prepare_threshold"] = None
    options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def database_unavailable(err: BaseException) -> bool:
    """True when `err` says the database cannot be reached right now (not a bug,
    not bad data): the server is down, restarting, refusing or overloaded, or
    the pool had no connection to give. Such a request may simply be retried."""
    if isinstance(err, sa_exc.TimeoutError):  # QueuePool: no connection within pool_timeout
        return True
    if isinstance(err, sa_exc.DBAPIError):
        if err.connection_invalidated:
            return True
        if not isinstance(err, sa_exc.OperationalError | sa_exc.InterfaceError):
            return False
        err = err.orig if err.orig is not None else err
    elif type(err).__module__.split(".")[0] not in ("psycopg", "sqlite3"):
        return False
    sqlstate = getattr(err, "sqlstate", None) or ""
    if sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES:
        return True
    message = str(err).lower()
    return any(marker in message for marker in _UNAVAILABLE_MESSAGES)


def database_unavailable_in(err: BaseException) -> BaseException | None:
    """The database-unavailable error behind `err`, if any: `err` itself, or one it
    was raised from or while handling (say, a PendingRollbackError after code
    carried on past a lost connection). None when the database is not to blame."""
    seen = set()
    while err is not None and id(err) not in seen and len(seen) < 10:
        if database_unavailable(err):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


_SECRET_IN_TEXT = re.compile(r"(password\s*=\s*)\S+|(://[^:/@\s]+:)[^@\s]+(@)", re.I)


def describe_unavailable(err: BaseException) -> str:
    """A one-line description for the log: the driver's error class, SQLSTATE and
    first line, never the statement, its parameters or a password."""
    orig = getattr(err, "orig", None) or err
    first = (str(orig).strip().splitlines() or [""])[0][:300]
    first = _SECRET_IN_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + "***"
                                + (m.group(3) or ""), first)
    sqlstate = getattr(orig, "sqlstate", None)
    return f"{type(orig).__name__}" + (f" [{sqlstate}]" if sqlstate else "") + f": {first}"


def libpq_params(url: str) -> dict:
    """Keyword arguments for psycopg.connect() from a DATABASE_URL in any spelling
    the app accepts (the multi-host form included), as SQLAlchemy would pass them."""
    from sqlalchemy.engine import make_url

    from api.config import normalise_database_url

    parsed = make_url(normalise_database_url(url))
    _, kwargs = parsed.get_dialect()().create_connect_args(parsed)
    return {**kwargs, "connect_timeout": kwargs.get("connect_timeout",
                                                    CONNECT_TIMEOUT_SECONDS)}


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
