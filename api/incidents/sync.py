"""Sync: a crew device's batch of records stored, numbered and classified (the
history, hooks and scope are api.incidents.records). No Flask request objects.

Sync is one transaction per batch. After the device's status is recorded:
  1. all records are inserted, without case numbers, with INSERT ... ON
     CONFLICT (id) DO NOTHING RETURNING (in id order); what it returns is new;
  2. an id the insert did not return exists already (stored earlier, or by
     another transaction meanwhile, whose commit the insert waited for):
     those are locked (SELECT ... FOR UPDATE, in id order) and handled as
     existing, so nothing is ever created twice;
  3. newer revisions are applied, older ones and replays skipped;
  4. the hooks prepare what needs no case number (routing: the post chosen,
     the alert rows; the incident's new post and status wait for step 5);
  5. last, the new incidents are numbered from their region/year counter (an
     upsert that increments by the count and returns, holding the counter row
     until commit; one UPDATE writes the numbers and what the hooks prepared):
     the lock every sync of a region queues on is taken after
     the slow part, and held only for the writes that carry the number (the
     "created" events sealed into their hash chains, the pushes that name
     the case, the receipts) and the commit.
A record whose id repeats in the batch is applied in a later pass (steps 2-3).
All commit together, so a number is drawn only for an incident stored in the
same transaction: the numbers stay gapless, and every stored incident has one.
"""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.attributes import set_committed_value

from api import listeners
from api.db import database_unavailable_in, dialect_insert, update_rows
from api.errors import PROBLEM_BASE, flatten_errors
from api.extensions import db
from api.incidents import records
from api.incidents.models import (
    CaseCounter,
    DeviceTimeFlag,
    Incident,
    IncidentEvent,
    IncidentStatus,
    SyncDevice,
)
from api.incidents.schemas import SyncRecordSchema
from api.law import service as law
from api.orgs.models import Person, PolicePost

log = logging.getLogger(__name__)

# A tap later than the receipt by more than this is from a clock running ahead.
FUTURE_TOLERANCE = timedelta(minutes=5)
# A phone offline for more than a year is not plausible; its clock is wrong.
PAST_LIMIT = timedelta(days=366)
# Deadlocks and SQLite's busy snapshots are retried; the batch is idempotent.
SYNC_ATTEMPTS = 4
CASE_PREFIX = "QG"

# Fields a newer revision may change (what the crew member reports).
MUTABLE = ("kind", "aggravating", "victim_role", "on_duty", "police_needed",
           "location", "destination_post_id", "note")
CLASSIFIED = ("kind", "aggravating", "victim_role", "on_duty")
# The stated time of the incident: a newer revision may change it too, within
# the bounds below (stated_time_problem, needs_confirmation).
STATED = "occurred_at"
# Fixed at creation: a record naming an existing incident must send these as
# stored, or it is refused for that field (never silently ignored). The id is
# the identity itself, and revision is the counter; every other field of the
# sync record is MUTABLE or STATED (tests/test_incidents_time.py walks them all).
FIXED = ("tapped_at", "sos")
FOREIGN_ID = "This id cannot be used; the app must make a new one."
CONFLICT = ("The server holds this revision with different content; send yours again "
            "as a new revision (both are kept in the history).")
TAPPED_AT_FIXED = ("The tap's time is recorded once and cannot be changed; "
                   "to say when the incident happened, send occurred_at.")
STATED_IN_FUTURE = "The time of the incident cannot be in the future."
SOS_FIXED = "An SOS stays an SOS: a revision cannot make it an ordinary incident."

# The ledger's part of a sync, in its transaction, before the commit:
# chains_start(incident_ids) (inserted just now: their hash chains are empty)
# and issue_receipts(outcome entries, received_at) -> {incident id: receipt}.
# api.ledger.service listens, registered in create_app.
sync_listeners: list = []


# ---------------------------------------------------------------------------
# Time and classification


def believed_time(tapped_at: datetime, received_at: datetime,
                  skew: timedelta) -> tuple[datetime, DeviceTimeFlag | None]:
    """The instant taken as the incident's time, and why the device's was not.

    A plausible tap time is trusted (the phone may have been offline for
    hours). One in the future, or more than a year old, comes from a wrong
    clock: it is flagged, and corrected by the skew measured at this sync
    when that gives a plausible time, else the receipt time is used.
    """
    if tapped_at > received_at + FUTURE_TOLERANCE:
        flag = DeviceTimeFlag.FUTURE
    elif tapped_at < received_at - PAST_LIMIT:
        flag = DeviceTimeFlag.PAST
    else:
        return tapped_at, None
    try:
        corrected = tapped_at + skew
    except OverflowError:
        return received_at, flag
    if received_at - PAST_LIMIT <= corrected:
        return min(corrected, received_at), flag
    return received_at, flag


# Classifications by (classifier, facts, legal date, language). The result depends
# on the instant only through its local (Asia/Almaty) date, and the rules are
# loaded once per process, so equal keys always classify alike. The classifier
# itself is part of the key, so replacing it (tests do) is never hidden. The
# cached dicts are shared: callers store and send them, never change them.
_CLASSIFIED_CACHE: dict[tuple, dict] = {}
_CLASSIFIED_CACHE_MAX = 4096


def _classify(facts: dict, occurred_at: datetime, lang: str) -> dict | None:
    try:
        aggravating = facts["aggravating"]
        key = (law.classify, facts["kind"],
               tuple(aggravating) if isinstance(aggravating, list | tuple) else aggravating,
               facts["victim_role"], facts["on_duty"], law.local_date(occurred_at), lang)
        result = _CLASSIFIED_CACHE.get(key)
        if result is None:
            result = law.classify({**{k: facts[k] for k in CLASSIFIED},
                                   "occurred_at": occurred_at}, lang)
            if len(_CLASSIFIED_CACHE) >= _CLASSIFIED_CACHE_MAX:
                _CLASSIFIED_CACHE.clear()
            _CLASSIFIED_CACHE[key] = result
        return result
    except law.LawConfigError as err:
        # A configuration error must never cost the crew their record.
        log.error("incident stored without classification: %s", err)
        return None


def _legal(classification: dict | None) -> dict:
    if classification is None:
        return {"classification": None, "legal_status": None, "legal_part": None}
    return {"classification": classification, "legal_status": classification["status"],
            "legal_part": classification["part"]}


def case_number(region_code: str, year: int, sequence: int) -> str:
    return f"{CASE_PREFIX}-{region_code}-{year}-{sequence:06d}"


def local_year(instant: datetime) -> int:
    return law.local_date(instant).year


# ---------------------------------------------------------------------------
# Sync


@dataclass
class SyncContext:
    person: Person
    device_id: str
    outbox_size: int
    app_version: str | None
    sent_at: datetime
    received_at: datetime
    set_aside: int = 0
    # False for records that did not come from the device's own sync (the SMS
    # fallback): its sync status (api/incidents SyncDevice) is left as it was.
    record_device: bool = True
    skew: timedelta = field(init=False)
    # Record index -> the fields held for a manager's confirmation (answered as such).
    held: dict[int, list] = field(default_factory=dict)

    def __post_init__(self):
        self.skew = self.received_at - self.sent_at


def _reject(record, errors: list[dict]) -> dict:
    ident = record.get("id") if isinstance(record, dict) else None
    return {"id": ident if isinstance(ident, str) else None, "status": "rejected",
            "errors": errors}


def validate_records(raw_records: list) -> tuple[list[dict | None], list[tuple[int, dict]]]:
    """Each record on its own: (results with rejections filled in, valid records)."""
    schema = SyncRecordSchema()
    results: list[dict | None] = [None] * len(raw_records)
    valid = []
    for i, raw in enumerate(raw_records):
        if not isinstance(raw, dict):
            results[i] = _reject(raw, [{"field": "_record", "message": "Must be an object."}])
            continue
        try:
            valid.append((i, schema.load(raw)))
        except ValidationError as err:
            results[i] = _reject(raw, flatten_errors(err.messages))
    posts = {r["destination_post_id"] for _, r in valid if r.get("destination_post_id")}
    if posts:
        known = set(db.session.scalars(select(PolicePost.id).where(PolicePost.id.in_(posts))))
        for i, record in list(valid):
            if record.get("destination_post_id") and record["destination_post_id"] not in known:
                results[i] = _reject(record | {"id": str(record["id"])}, [{
                    "field": "destination_post_id", "message": "Unknown police post."}])
        valid = [(i, r) for i, r in valid if results[i] is None]
    return results, valid


def _location_columns(location: dict | None) -> dict:
    location = location or {}
    return {"lat": location.get("lat"), "lon": location.get("lon"),
            "accuracy_m": location.get("accuracy_m"),
            "location_fixed_at": location.get("fixed_at"),
            "location_source": location.get("source")}


def _creation_facts(record: dict, person: Person) -> dict:
    return {"kind": record.get("kind", "unspecified"),
            "aggravating": record.get("aggravating", []),
            "victim_role": record.get("victim_role") or person.position.value,
            "on_duty": record.get("on_duty", True),
            "police_needed": record.get("police_needed", False),
            "location": record.get("location"),
            "destination_post_id": record.get("destination_post_id"),
            "note": record.get("note", "")}


def max_before_tap() -> timedelta:
    """How long before the tap a stated time may be without a manager's confirmation."""
    return timedelta(days=current_app.config["STATED_TIME_MAX_DAYS_BEFORE_TAP"])


def stated_time_problem(stated: datetime, received_at: datetime) -> str | None:
    """Why a stated time is refused outright, or None: only the future is (beyond
    the clock skew a tap itself is allowed, FUTURE_TOLERANCE)."""
    if stated > received_at + FUTURE_TOLERANCE:
        return STATED_IN_FUTURE
    return None


def needs_confirmation(stated: datetime, logged_at: datetime) -> bool:
    """A time stated this long before the tap waits for a manager of the station."""
    return stated < logged_at - max_before_tap()


def _new_row(record: dict, ctx: SyncContext) -> dict:
    person = ctx.person
    facts = _creation_facts(record, person)
    logged_at, flag = believed_time(record["tapped_at"], ctx.received_at, ctx.skew)
    occurred_at, pending = logged_at, None
    stated = record.get(STATED)
    if stated is not None and stated != logged_at:
        if needs_confirmation(stated, logged_at):
            pending = stated
        else:
            occurred_at = stated
    classification = _classify(facts, occurred_at, person.language.value)
    row = {
        "id": record["id"], "case_number": None, "reporter_id": person.id,
        "station_id": person.station_id, "reporter_position": person.position,
        "tapped_at": record["tapped_at"],
        "tapped_offset_min": int(record["tapped_at"].utcoffset().total_seconds() // 60),
        "received_at": ctx.received_at, "clock_skew_s": ctx.skew.total_seconds(),
        "device_time_flag": flag, "logged_at": logged_at, "occurred_at": occurred_at,
        "occurred_at_pending": pending, "updated_at": ctx.received_at,
        "device_id": ctx.device_id, "revision": record["revision"],
        "status": IncidentStatus.LOGGED, "post_id": None, "erdr_number": None,
        **{k: v for k, v in facts.items() if k != "location"},
        # An SOS is fixed at creation and always asks for the police now (api.sos).
        "sos": bool(record.get("sos")),
        **({"police_needed": True} if record.get("sos") else {}),
        **_location_columns(facts["location"]), **_legal(classification),
    }
    return row


def _current(incident: Incident, name: str):
    if name == "location":
        return incident.location
    return getattr(incident, name)


def fixed_field_errors(incident: Incident, record: dict) -> list[dict]:
    """A record for a stored incident that would change what was fixed at creation."""
    errors = []
    tapped = record["tapped_at"]
    if tapped != incident.tapped_at or tapped.utcoffset() != incident.tapped_at_local.utcoffset():
        errors.append({"field": "tapped_at", "message": TAPPED_AT_FIXED})
    if incident.sos and "sos" in record and not record["sos"]:
        # (The other way is allowed once: an SOS whose SMS came first, see _apply_pass.)
        errors.append({"field": "sos", "message": SOS_FIXED})
    return errors


def _legal_time(instant: datetime) -> dict:
    day = law.local_date(instant)
    return {"in_force": day >= law.in_force_date(), "mci_year": day.year}


def restate_time(incident: Incident, stated: datetime, lang: str) -> dict:
    """Make `stated` the incident's time (any pending correction is settled by it)
    and classify it again; returns field -> (before, after) of what changed,
    including whether the article is in force and the MCI year when those move."""
    changes = {}
    if incident.occurred_at_pending is not None:
        changes["occurred_at_pending"] = (incident.occurred_at_pending, None)
        incident.occurred_at_pending = None
    if stated == incident.occurred_at:
        return changes
    before = _legal_time(incident.occurred_at)
    changes[STATED] = (incident.occurred_at, stated)
    incident.occurred_at = stated
    after = _legal_time(stated)
    for name in ("in_force", "mci_year"):
        if before[name] != after[name]:
            changes[name] = (before[name], after[name])
    changes.update(reclassify(incident, lang))
    return changes


def reclassify(incident: Incident, lang: str) -> dict:
    """Classify the incident's facts at its time again; the change of status/part, if any."""
    facts = {name: getattr(incident, name) for name in CLASSIFIED}
    legal = _legal(_classify(facts, incident.occurred_at, lang))
    before = {"status": incident.legal_status, "part": incident.legal_part}
    for column, value in legal.items():
        setattr(incident, column, value)
    after = {"status": incident.legal_status, "part": incident.legal_part}
    return {"classification": (before, after)} if before != after else {}


def _restate_from_record(incident: Incident, record: dict, lang: str) -> tuple[dict, list]:
    """The revision's stated time: applied, held for a manager, or nothing to do."""
    if STATED not in record:
        return {}, []
    stated = record[STATED]
    if stated == incident.occurred_at or not needs_confirmation(stated, incident.logged_at):
        return restate_time(incident, stated, lang), []
    # Too long before the tap: kept as pending, the incident keeps its time.
    if incident.occurred_at_pending == stated:
        return {}, [STATED]
    changes = {"occurred_at_pending": (incident.occurred_at_pending, stated)}
    incident.occurred_at_pending = stated
    return changes, [STATED]


def _revise(incident: Incident, record: dict, ctx: SyncContext) -> tuple[dict, list]:
    """Apply a newer revision; returns (field -> (before, after) of what changed,
    the fields held for a manager's confirmation)."""
    changes = {"revision": (incident.revision, record["revision"])}
    for name in MUTABLE:
        if name not in record:
            continue  # a field the revision does not mention is kept
        after = record[name]
        if name == "victim_role" and after is None:
            after = incident.reporter_position.value
        before = _current(incident, name)
        if records.jsonable(before) == records.jsonable(after):
            continue
        changes[name] = (before, after)
        if name == "location":
            for column, value in _location_columns(after).items():
                setattr(incident, column, value)
        else:
            setattr(incident, name, after)
    incident.revision = record["revision"]
    incident.updated_at = ctx.received_at
    incident.device_id = ctx.device_id
    lang = ctx.person.language.value
    timed, held = _restate_from_record(incident, record, lang)
    changes.update(timed)
    if any(name in changes for name in CLASSIFIED) and "classification" not in changes:
        changes.update(reclassify(incident, lang))
    return changes, held


def _comparable(name: str, value, incident: Incident):
    if name == "victim_role" and value is None:
        return incident.reporter_position.value
    if name == "location" and value is not None:
        fixed = value.get("fixed_at")
        value = {**value, "fixed_at": fixed.timestamp() if fixed else None,
                 "accuracy_m": value.get("accuracy_m")}
    return records.jsonable(value)


def conflicting_fields(incident: Incident, record: dict) -> list[str]:
    """Where a record sent again with the stored revision's number disagrees with
    what is stored (fields it leaves out are not compared: they are kept)."""
    differ = [] if record["tapped_at"] == incident.tapped_at else ["tapped_at"]
    differ += [name for name in MUTABLE if name in record
               and _comparable(name, record[name], incident)
               != _comparable(name, _current(incident, name), incident)]
    if STATED in record and record[STATED] not in (incident.occurred_at,
                                                   incident.occurred_at_pending):
        differ.append(STATED)
    return differ


def _lock_existing(ids) -> dict[uuid.UUID, Incident]:
    rows = db.session.scalars(
        select(Incident).where(Incident.id.in_(sorted(ids))).order_by(Incident.id)
        .with_for_update().execution_options(populate_existing=True))
    return {incident.id: incident for incident in rows}


def _number_new(rows: list[dict], inserted: dict[uuid.UUID, Incident],
               ctx: SyncContext, columns: dict[uuid.UUID, dict]) -> None:
    """Number the incidents this transaction inserted; called last, see above.

    Each region/year counter is raised by its rows' count (counters in a fixed
    order, so two batches never wait on each other in a cycle), and the rows get
    the numbers in order of (occurred_at, id) as they were inserted. The same
    UPDATE writes the columns the hooks prepared (routing: the post and status),
    so each new incident is written once after its INSERT, not once per purpose.
    """
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    region = ctx.person.station.region_code
    for row in rows:
        groups[(region, local_year(row["occurred_at"]))].append(row)
    numbers = []
    for (region, year), members in sorted(groups.items()):
        stmt = dialect_insert(CaseCounter).values(region_code=region, year=year, last=len(members))
        stmt = stmt.on_conflict_do_update(
            index_elements=["region_code", "year"],
            set_={"last": CaseCounter.last + stmt.excluded.last},
        ).returning(CaseCounter.last)
        last = db.session.execute(stmt).scalar_one()
        first = last - len(members) + 1
        members.sort(key=lambda row: (row["occurred_at"], str(row["id"])))
        for offset, row in enumerate(members):
            numbers.append({**columns.get(row["id"], {}), "row_id": row["id"],
                            "case_number": case_number(region, year, first + offset)})
    update_rows(Incident.__table__, numbers)
    for row in numbers:
        set_committed_value(inserted[row["row_id"]], "case_number", row["case_number"])


def _apply_pass(entries: list[tuple[int, dict]], ctx: SyncContext, outcome: dict,
                created: list[Incident], events: list, first_pass: bool) -> list[dict]:
    """Apply one record per id; events gets (incident, kind, changes, revision).
    Returns the rows it inserted (still to be numbered)."""
    ids = sorted({record["id"] for _, record in entries})
    inserted: dict[uuid.UUID, Incident] = {}
    new_rows: list[dict] = []
    if first_pass:
        # Insert first: in the usual batch every record is new, and then this
        # one statement is all; the ids it does not return exist already
        # (stored before, or by a concurrent request that committed meanwhile)
        # and are locked below and handled as replays or revisions. (A later
        # pass only repeats ids of the first, which all exist by then.)
        rows = [_new_row(r, ctx) for r in sorted((r for _, r in entries),
                                                 key=lambda r: r["id"])]
        # executemany form: one cached statement, sent as multi-row INSERTs.
        stmt = (dialect_insert(Incident).on_conflict_do_nothing(index_elements=["id"])
                .returning(Incident))
        inserted = {i.id: i for i in db.session.scalars(
            stmt, rows, execution_options={"populate_existing": True})}
        new_rows = [row for row in rows if row["id"] in inserted]
        # Inserted just now, so their chains are empty: no head query when sealing.
        listeners.call(sync_listeners, "chains_start", inserted)
    rest = [ident for ident in ids if ident not in inserted]
    existing = _lock_existing(rest) if rest else {}
    for i, record in entries:
        incident = inserted.get(record["id"])
        if incident is not None:
            created.append(incident)
            # Snapshot now: a later entry of this batch may revise it before commit.
            events.append((incident, "created", _creation_changes(incident), incident.revision))
            outcome[i] = ("created", incident)
            if incident.occurred_at_pending is not None:
                ctx.held[i] = [STATED]
            continue
        incident = existing[record["id"]]
        if incident.reporter_id != ctx.person.id:
            # Same answer whatever the stored incident is: nothing about it leaks.
            outcome[i] = ("rejected", [{"field": "id", "message": FOREIGN_ID}])
        elif errors := fixed_field_errors(incident, record):
            outcome[i] = ("rejected", errors)
        else:
            if record.get("sos") and not incident.sos:
                # An SOS whose SMS reached the server first (api.sms: the message does
                # not say SOS) becomes one now, once (api.sos opens its alarm); the
                # record is then handled as any other.
                incident.sos = True
                events.append((incident, "sos_raised", {"sos": (False, True)},
                               incident.revision))
            if record["revision"] == incident.revision and (
                    differ := conflicting_fields(incident, record)):
                # Never overwritten, and never answered "unchanged" either: the phone
                # would drop a version the server does not hold.
                outcome[i] = ("conflict", (incident, differ))
            elif record["revision"] <= incident.revision:
                outcome[i] = ("unchanged", incident)
            else:
                changes, held = _revise(incident, record, ctx)
                events.append((incident, "revised", changes, incident.revision))
                # A field waiting for a manager is not "updated": the answer says so.
                outcome[i] = ("pending" if held else "updated", incident)
                if held:
                    ctx.held[i] = held
    return new_rows


def _record_device(ctx: SyncContext, batch_size: int) -> None:
    values = {"person_id": ctx.person.id, "device_id": ctx.device_id,
              "station_id": ctx.person.station_id, "app_version": ctx.app_version,
              "outbox_size": ctx.outbox_size, "last_sync_at": ctx.received_at,
              "last_sent_at": ctx.sent_at, "clock_skew_s": ctx.skew.total_seconds(),
              "last_batch_size": batch_size, "set_aside": ctx.set_aside}
    stmt = dialect_insert(SyncDevice).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["person_id", "device_id"],
        set_={k: v for k, v in values.items() if k not in ("person_id", "device_id")})
    db.session.execute(stmt)


def _creation_changes(incident: Incident) -> dict:
    changes = {name: (None, _current(incident, name)) for name in MUTABLE}
    changes.update({"case_number": (None, None),  # filled in when it is settled
                    "tapped_at": (None, incident.tapped_at_local),
                    "status": (None, incident.status)})
    if incident.sos:
        changes["sos"] = (None, True)
    if incident.device_time_flag is not None:
        changes["device_time_flag"] = (None, incident.device_time_flag)
    if incident.device_time_flag is not None or incident.occurred_at != incident.logged_at:
        changes["logged_at"] = (None, incident.logged_at)
        changes["occurred_at"] = (None, incident.occurred_at)
    if incident.occurred_at_pending is not None:
        changes["occurred_at_pending"] = (None, incident.occurred_at_pending)
    return changes


def _hooks_savepoint(created: list[Incident], events: list, run) -> bool:
    """Run the hooks' `run` in a savepoint: a failing hook loses its own writes
    (logged), never the records. True if it succeeded."""
    try:
        with db.session.begin_nested():
            run()
        return True
    except Exception as err:
        if database_unavailable_in(err):
            raise  # nothing can be kept: the sync rolls back and the API answers 503
        log.exception("an incident hook failed; the synced records are kept")
        # A hook may have written in SQL what its objects were only told
        # (set_committed_value): read the incidents again as they now stand.
        for incident in {id(i): i for i in created + [i for i, _ in events]}.values():
            db.session.refresh(incident)
        return False


def _write_back(before: dict[uuid.UUID, dict], incidents: dict[uuid.UUID, Incident]) -> None:
    """Put back the columns a failed hook had prepared (written with the numbers)."""
    update_rows(Incident.__table__, [{"row_id": ident, **values}
                                     for ident, values in before.items()])
    for ident, values in before.items():
        for name, value in values.items():
            set_committed_value(incidents[ident], name, value)


def _prepare_hooks(created: list[Incident], columns: dict[uuid.UUID, dict]) -> dict:
    """Before the numbers: each hook's prepare_incidents_synced(batch, columns), the
    part of its work that needs no case number and adds no event (routing: choosing
    the posts, storing the alerts); what it puts in columns[incident id] is written
    with the number. Returns what each prepared, by hook."""
    prepared: dict[int, object] = {}
    hooks = [hook for hook in records.incident_hooks
             if getattr(hook, "prepare_incidents_synced", None) is not None]
    if not created or not hooks:
        return prepared

    def run():
        for hook in hooks:
            prepared[id(hook)] = hook.prepare_incidents_synced(list(created), columns)

    if not _hooks_savepoint(created, [], run):
        columns.clear()
        prepared.clear()
        prepared.update({id(hook): FAILED for hook in hooks})
    return prepared


FAILED = object()  # a hook whose preparation failed (and was rolled back) does no more


def _run_hooks(created: list[Incident], events: list[tuple[Incident, IncidentEvent]],
               prepared: dict) -> bool:
    """The hooks' work once numbered; False if a hook failed (its writes are undone)."""
    if not records.incident_hooks:
        return True

    def run():
        if created:
            for hook in list(records.incident_hooks):
                if id(hook) in prepared:
                    if prepared[id(hook)] is not FAILED:
                        hook.finish_incidents_synced(list(created), prepared[id(hook)])
                    continue
                # The batch form lets a hook do a few queries per batch, not per incident.
                batch = getattr(hook, "on_incidents_synced", None)
                if batch is not None:
                    batch(list(created))
                    continue
                single = getattr(hook, "on_incident_synced", None)
                if single is not None:
                    for incident in created:
                        single(incident)
        for incident, event in events:
            records.dispatch("on_incident_event", incident, event)

    return _hooks_savepoint(created, events, run)


def _sync_once(valid: list[tuple[int, dict]], ctx: SyncContext, batch_size: int) -> dict:
    # A record whose id repeats in the batch is applied after the earlier one,
    # in a later pass, exactly as if it had come in the next request.
    passes: list[list[tuple[int, dict]]] = []
    seen: dict[uuid.UUID, int] = defaultdict(int)
    for i, record in valid:
        n = seen[record["id"]]
        seen[record["id"]] += 1
        if n == len(passes):
            passes.append([])
        passes[n].append((i, record))
    outcome: dict[int, tuple] = {}
    ctx.held.clear()  # a retried attempt starts again
    created: list[Incident] = []
    pending: list[tuple[Incident, str, dict, int]] = []
    # First a write: on SQLite it takes the database's write lock, so what we
    # read next cannot change under us (pysqlite opens no transaction for a
    # SELECT); on PostgreSQL it queues a device's own concurrent batches.
    if ctx.record_device:
        _record_device(ctx, batch_size)
    new_rows: list[dict] = []
    for n, entries in enumerate(passes):
        new_rows += _apply_pass(entries, ctx, outcome, created, pending, first_pass=n == 0)
    columns: dict[uuid.UUID, dict] = defaultdict(dict)
    prepared = _prepare_hooks(created, columns)
    # What the prepared columns were before: a hook that fails later loses them too.
    by_id = {incident.id: incident for incident in created}
    before = {ident: {name: getattr(by_id[ident], name) for name in values}
              for ident, values in columns.items() if values}
    if new_rows:
        _number_new(new_rows, by_id, ctx, columns)
    for incident, kind, changes, _revision in pending:
        if kind == "created":
            changes["case_number"] = (None, incident.case_number)
    events = records.insert_events([(incident, ctx.person, kind, changes, revision)
                                    for incident, kind, changes, revision in pending],
                                   at=ctx.received_at)
    db.session.flush()
    if not _run_hooks(created, events, prepared) and before:
        _write_back(before, by_id)
    # Signed receipts (api.ledger) for what was stored, in the same transaction.
    receipts = _receipts(list(outcome.values()), ctx.received_at)
    # The answers are taken before the commit, which expires every loaded row:
    # read afterwards, each incident would cost one more SELECT.
    answers = {}
    for i, (status, detail) in outcome.items():
        if status == "rejected":
            answers[i] = (status, detail, None)
        elif status == "conflict":
            incident, differ = detail
            answers[i] = (status, (summary(incident), differ), None)
        else:
            answers[i] = (status, summary(detail), receipts.get(detail.id))
    db.session.commit()
    return answers


def _receipts(entries: list, received_at: datetime) -> dict:
    receipts: dict = {}
    for listener in list(sync_listeners):
        issue = getattr(listener, "issue_receipts", None)
        if issue is not None:
            receipts.update(issue(entries, received_at))
    return receipts


def conflict_problem(record: dict, incident: dict) -> dict:
    """The RFC 9457 problem for one conflicting record (the batch itself is a 200)."""
    return {"type": PROBLEM_BASE + "sync-conflict", "title": "Conflicting revision",
            "status": 409, "detail": CONFLICT, "revision": record["revision"],
            "next_revision": incident["revision"] + 1}


def summary(incident: Incident) -> dict:
    """What the phone needs back about a stored incident (IncidentSummarySchema)."""
    return {"id": str(incident.id), "case_number": incident.case_number,
            "revision": incident.revision,
            "status": getattr(incident.status, "value", incident.status),
            "classification": incident.classification, "post_id": incident.post_id,
            "received_at": incident.received_at.isoformat(),
            # In UTC whatever the instant was written with (as stored).
            **{name: (None if getattr(incident, name) is None
                      else getattr(incident, name).astimezone(UTC).isoformat())
               for name in ("logged_at", "occurred_at", "occurred_at_pending")}}


def _retryable(err: DBAPIError) -> bool:
    if isinstance(err, OperationalError) and "locked" in str(err.orig).lower():
        return True  # SQLite: another writer holds the database
    sqlstate = getattr(err.orig, "sqlstate", None)
    return sqlstate in {"40P01", "40001"}  # deadlock, serialization failure


def sync(person: Person, *, device_id: str, outbox_size: int, app_version: str | None,
         sent_at: datetime, received_at: datetime, records: list,
         set_aside: int = 0) -> list[dict]:
    """Store a batch from one crew device; one result per record, in order."""
    results, valid = validate_records(records)
    for i, record in valid:
        stated = record.get(STATED)
        problem = stated_time_problem(stated, received_at) if stated is not None else None
        if problem:
            results[i] = _reject({"id": str(record["id"])}, [{"field": STATED,
                                                              "message": problem}])
    valid = [(i, r) for i, r in valid if results[i] is None]
    ctx = SyncContext(person, device_id, outbox_size, app_version, sent_at, received_at,
                      set_aside)
    return _store(ctx, valid, results, len(records))


def store_from_outside(person: Person, record: dict, *, device_id: str,
                       received_at: datetime) -> dict:
    """Store one record the server decoded itself (the SMS fallback) as a sync of
    its revision 1 would: same id (so the phone's own record, when it syncs, is the
    same incident with the same case number), same numbering, hooks (the police
    alert) and receipt; the device's sync status is not touched. The phone's
    revision 1, fuller than the SMS, is then a conflict, which the phone sends
    again as revision 2 (outbox.js), and a later revision simply applies.
    Returns the sync's result for the record."""
    results, valid = validate_records([{**record, "revision": 1}])
    ctx = SyncContext(person, device_id, 0, None, received_at, received_at,
                      record_device=False)
    return _store(ctx, valid, results, 1)[0]


def _store(ctx: SyncContext, valid: list[tuple[int, dict]], results: list,
           batch_size: int) -> list[dict]:
    person = ctx.person
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        try:
            outcome = _sync_once(valid, ctx, batch_size)
            break
        except DBAPIError as err:
            db.session.rollback()
            if attempt == SYNC_ATTEMPTS or not _retryable(err):
                raise
            log.warning("sync retried after %s (attempt %d)", type(err.orig).__name__, attempt)
            ctx.person = db.session.get(Person, person.id)
    for i, record in valid:
        status, detail, receipt = outcome[i]
        if status == "rejected":
            results[i] = {"id": str(record["id"]), "status": "rejected", "errors": detail}
        elif status == "conflict":
            incident, differ = detail
            results[i] = {"id": str(record["id"]), "status": "conflict", "incident": incident,
                          "errors": [{"field": name, "message": CONFLICT} for name in differ],
                          "problem": conflict_problem(record, incident)}
        else:
            results[i] = {"id": str(record["id"]), "status": status, "incident": detail,
                          "receipt": receipt}
            if i in ctx.held:
                results[i]["pending"] = ctx.held[i]
    return results
