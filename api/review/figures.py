"""The managers' figures: incidents by month (and Article 380-3 part), by station
and by the victim's job, and the delays from tap to sync and from sync to the
police acknowledgement. No Flask request objects."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy import BigInteger, DateTime, Float, case, cast, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY

from api.db import is_postgres
from api.extensions import db
from api.incidents.models import Incident
from api.law import service as law
from api.orgs.models import Person, Station
from api.review.service import (
    filter_clauses,
    local_midnight,
    planner_settings,
    today_local,
)

# Memory for the delay percentiles' sorts (PostgreSQL), per sort: a float per
# incident in scope; 16 MB holds about 600,000.
SORT_MEMORY = "16MB"


def default_range(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """Twelve months up to today (local) unless the caller chose."""
    end = date_to or today_local()
    if date_from is None:
        month = end.year * 12 + end.month - 1 - 11
        date_from = date(month // 12, month % 12 + 1, 1)
    return date_from, end


def months_between(start: date, end: date) -> list[date]:
    months, current = [], date(start.year, start.month, 1)
    while current <= end:
        months.append(current)
        current = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return months


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return None
    position = p * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _seconds(later, earlier):
    if is_postgres():
        # date_part answers double precision; extract() answers numeric, whose
        # sort (for the percentiles) is several times slower.
        return func.date_part("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _summary(n: int, cuts) -> dict:
    return {"count": n, "median_s": _round(cuts[0]) if cuts else None,
            "p90_s": _round(cuts[1]) if cuts else None}


def _delays(where: list) -> tuple[dict, dict]:
    """count, median and 90th percentile (seconds) of tap-to-sync and of
    sync-to-police-acknowledgement over the incidents matching `where`: on
    PostgreSQL one index-only scan of the station index, each fraction pair from
    one sort of its values."""
    # From the tap itself (logged_at), not the stated time of the incident.
    tap_to_sync = _seconds(Incident.received_at, Incident.logged_at)
    sync_to_ack = _seconds(Incident.acknowledged_at, Incident.received_at)
    acknowledged = Incident.acknowledged_at.is_not(None)
    if is_postgres():
        fractions = literal([0.5, 0.9], ARRAY(Float))
        # Each percentile sorts every delay in scope (223,000 for ten stations
        # over three years): with the default 4 MB of work_mem both sorts went
        # to temporary files.
        with planner_settings(work_mem=SORT_MEMORY):
            n_sync, cuts_sync, n_ack, cuts_ack = db.session.execute(select(
                func.count(), func.percentile_cont(fractions).within_group(tap_to_sync),
                func.count().filter(acknowledged),
                func.percentile_cont(fractions).within_group(sync_to_ack).filter(acknowledged))
                .where(*where)).one()
        return _summary(n_sync, cuts_sync), _summary(n_ack, cuts_ack)
    rows = db.session.execute(select(tap_to_sync, sync_to_ack).where(*where)).all()
    out = []
    for column in (0, 1):
        values = sorted(row[column] for row in rows if row[column] is not None)
        out.append(_summary(len(values), (percentile(values, 0.5), percentile(values, 0.9))
                            if values else None))
    return out[0], out[1]


def _round(value):
    return None if value is None else round(value, 3)


def _month_bucket(months: list[date]):
    """The index in `months` of each incident's local month, by comparison with the
    local month starts: the same answer on both databases, and no time-zone
    database inside SQL. PostgreSQL finds it by binary search (width_bucket)."""
    if len(months) == 1:
        return literal(0)
    starts = [local_midnight(m) for m in months[1:]]
    if is_postgres():
        return func.width_bucket(Incident.occurred_at,
                                 literal(starts, type_=ARRAY(DateTime(timezone=True))))
    return case(*((Incident.occurred_at < start, i) for i, start in enumerate(starts)),
                else_=len(starts))


def _counts_sqlite(where: list, months: list[date]):
    """(month index, part, station, job, count) rows: one pass over the rows in scope."""
    bucket = _month_bucket(months)
    return db.session.execute(
        select(bucket, Incident.legal_part, Incident.station_id, Incident.victim_role,
               func.count())
        .where(*where)
        .group_by(bucket, Incident.legal_part, Incident.station_id, Incident.victim_role))


def _counts_pg(where: list, months: list[date], start: date, end: date):
    """The same counts on PostgreSQL, as rows of one breakdown each: (month index,
    part, None, None, n), (None, None, station, None, n), (None, None, None, job, n).

    Month by month (a LATERAL join over the local month bounds), each month an
    index-only range scan of ix_incidents_station_occurred grouped by part, station
    and job. Grouped by a month bucket computed per row instead, the planner cannot
    tell how many groups there are, assumes one per incident and sizes (and plans
    to spill) its hash table for that: about a quarter slower over 223,000 incidents.
    Only the three breakdowns come back (not every month x part x station x job).
    """
    lows = [local_midnight(start)] + [local_midnight(m) for m in months[1:]]
    highs = [*lows[1:], local_midnight(end + timedelta(days=1))]
    bounds = func.unnest(literal(lows, ARRAY(DateTime(timezone=True))),
                         literal(highs, ARRAY(DateTime(timezone=True)))
                         ).table_valued("low", "high", with_ordinality="n").render_derived()
    per_month = (select(Incident.legal_part, Incident.station_id, Incident.victim_role,
                        func.count().label("n"))
                 .where(*where, Incident.occurred_at >= bounds.c.low,
                        Incident.occurred_at < bounds.c.high)
                 .group_by(Incident.legal_part, Incident.station_id, Incident.victim_role)
                 .lateral())
    index = bounds.c.n - 1
    return db.session.execute(
        select(index, per_month.c.legal_part, per_month.c.station_id, per_month.c.victim_role,
               cast(func.sum(per_month.c.n), BigInteger))
        .select_from(bounds.join(per_month, literal(True)))
        .group_by(func.grouping_sets(tuple_(index, per_month.c.legal_part),
                                     per_month.c.station_id, per_month.c.victim_role)))


def figures(person: Person, date_from: date | None, date_to: date | None,
            lang: str = "en") -> dict:
    """Counts per local month and part, per station and per job; and the two delays."""
    start, end = default_range(date_from, date_to)
    where = filter_clauses(person, {"date_from": start, "date_to": end})
    months = months_between(start, end)
    per_month = [{"month": m.strftime("%Y-%m"), "total": 0, "by_part": {}} for m in months]
    per_station: dict[int, int] = defaultdict(int)
    per_job: dict[str, int] = defaultdict(int)
    counts = (_counts_pg(where, months, start, end) if is_postgres()
              else _counts_sqlite(where, months))
    for index, part, station_id, role, n in counts:
        if index is not None:
            row = per_month[index]
            row["total"] += n
            key = str(part) if part is not None else "none"
            row["by_part"][key] = row["by_part"].get(key, 0) + n
        if station_id is not None:
            per_station[station_id] += n
        if role is not None:
            per_job[role] += n
    names = dict(db.session.execute(select(Station.id, Station.name)
                                    .where(Station.id.in_(sorted(per_station)))).all())
    stations = sorted(((sid, names.get(sid), n) for sid, n in per_station.items()),
                      key=lambda r: (-r[2], r[0]))
    roles = {r["id"]: r.get("label", {}) for r in law.rules()["victim_roles"]}
    jobs = sorted(per_job.items(), key=lambda r: (-r[1], r[0]))

    tap_to_sync, sync_to_ack = _delays(where)
    return {
        "date_from": start, "date_to": end,
        "total": sum(m["total"] for m in per_month),
        "by_month": per_month,
        "by_station": [{"key": str(sid), "label": name, "count": n} for sid, name, n in stations],
        "by_job": [{"key": role, "label": _label(roles.get(role), lang), "count": n}
                   for role, n in jobs],
        "tap_to_sync": tap_to_sync,
        "sync_to_ack": sync_to_ack,
    }


def _label(labels, lang: str):
    if isinstance(labels, dict):
        return labels.get(lang) or labels.get("en")
    return labels


