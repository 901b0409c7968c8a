"""Fixed-window rate limits kept in the database, so every worker shares them.

One upsert per hit (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING count`)
is atomic on PostgreSQL and SQLite alike, so concurrent requests cannot both
slip in under the limit.
"""

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from api.auth.models import RateLimitHit
from api.db import utcnow
from api.errors import Problem
from api.extensions import db


def _window_start(now: datetime, seconds: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def hit(key: str, limit: int, seconds: int) -> None:
    """Count one request against `key`; a 429 problem with Retry-After past `limit`."""
    now = utcnow()
    start = _window_start(now, seconds)
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    table = RateLimitHit.__table__
    stmt = dialect.insert(table).values(key=key[:200], window_start=start, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.key, table.c.window_start],
        set_={"count": table.c.count + 1}).returning(table.c.count)
    count = db.session.execute(stmt).scalar_one()
    if count == 1:
        # First hit of a window: a cheap moment to forget windows long past.
        db.session.execute(delete(RateLimitHit).where(
            RateLimitHit.window_start < now - timedelta(days=1)))
    db.session.commit()
    if count > limit:
        retry_after = max(1, math.ceil((start + timedelta(seconds=seconds) - now)
                                       .total_seconds()))
        raise Problem(429, "Too many attempts",
                      f"Too many attempts; try again in {retry_after} seconds.",
                      type_="rate-limited", headers={"Retry-After": str(retry_after)})
