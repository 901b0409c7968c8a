"""The managers' reads from a streaming replica (REVIEW_REPLICA_DATABASE_URL).

A view decorated with `reads_from_replica` sends its plain SELECTs to the
replica (api/extensions.py `ReplicaAwareSession`); sign-in checks and every
write stay on the primary. Each such request first asks the replica how far
behind it is; a replica that cannot be reached is skipped (the primary answers,
as with no replica at all). The answer says where it was read
(`Qorgau-Read-From: replica|primary`) and, once the lag passes
REVIEW_REPLICA_LAG_WARN_SECONDS, `Qorgau-Replica-Lag: <seconds>`, which the
console shows to the manager.
"""

import functools
import logging
import math

from flask import after_this_request, current_app, g
from sqlalchemy import create_engine, text

from api.config import normalise_database_url

log = logging.getLogger(__name__)

READ_FROM_HEADER = "Qorgau-Read-From"
LAG_HEADER = "Qorgau-Replica-Lag"
# A replica that does not answer at once is skipped for this request.
REPLICA_CONNECT_TIMEOUT_SECONDS = 2

# Seconds behind the primary: 0 while it has replayed all it received from a
# live stream; otherwise the age of the last transaction it replayed.
LAG_SQL = text("""
SELECT CASE
  WHEN NOT pg_is_in_recovery() THEN 0
  WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
       AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0
  ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
END
""")


def replica_engine(app):
    """The replica's engine (made once per app), or None when none is configured."""
    url = app.config.get("REVIEW_REPLICA_DATABASE_URL")
    if not url:
        return None
    engines = app.extensions.setdefault("qorgau_replica", {})
    if url not in engines:
        connect_args = {"connect_timeout": REPLICA_CONNECT_TIMEOUT_SECONDS}
        if app.config.get("DATABASE_PGBOUNCER"):
            connect_args["prepare_threshold"] = None  # see api/db.py
        engines[url] = create_engine(normalise_database_url(url), pool_pre_ping=True,
                                     connect_args=connect_args)
    return engines[url]


def replica_lag(engine) -> float:
    with engine.connect() as conn:
        return float(conn.execute(LAG_SQL).scalar() or 0)


def reads_from_replica(view):
    """Let `view`'s SELECTs read from the replica when one is configured and answers."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        engine = replica_engine(current_app)
        source, lag = "primary", None
        if engine is not None:
            try:
                lag = replica_lag(engine)
            except Exception as err:  # down, restarting, unreachable: the primary answers
                log.warning("read replica unavailable, reading from the primary: %s",
                            type(err).__name__)
            else:
                g.qorgau_replica = engine
                source = "replica"
        warn = float(current_app.config["REVIEW_REPLICA_LAG_WARN_SECONDS"])

        @after_this_request
        def _headers(response):
            response.headers[READ_FROM_HEADER] = source
            if lag is not None and source == "replica" and lag > warn:
                response.headers[LAG_HEADER] = str(math.ceil(lag))
            return response

        try:
            return view(*args, **kwargs)
        finally:
            g.pop("qorgau_replica", None)
    return wrapper
