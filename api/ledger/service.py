"""Hash chains over incident events, signed receipts, and their verification.

Chain scope: one chain per incident. Event n of an incident stores seq = n,
prev_hash = the hash of event n-1 (64 zeros for the first) and
hash = sha256(bytes(prev_hash) || canonical_json(event)). There is no global
chain head, so concurrent syncs of different incidents never wait on each
other; appends to one incident are serialised by the incident's row lock
(taken here before the head is read) and, whatever happens, by the unique
(incident_id, seq): two events can never share a prev.

Every event gets sealed in one place, a before_flush listener: whichever
code adds an IncidentEvent through the ORM (api.incidents.records'
_new_event, tests' factories), its chain columns are filled in as it is
flushed, in the order the events were added. Code that inserts events with
Core instead calls seal_rows() on its row dicts first; a row without them is
refused by the NOT NULL columns, never stored unchained.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db import dialect_insert, insert_rows, utcnow
from api.extensions import db
from api.incidents.models import Incident, IncidentEvent
from api.ledger import keys
from api.ledger.models import Receipt

GENESIS = "0" * 64
CANONICAL_VERSION = 1
EVENTS = IncidentEvent.__table__


# ---------------------------------------------------------------------------
# Canonical form and hashing


def canonical_utc(instant: datetime) -> str:
    """ISO 8601 in UTC with microseconds, e.g. 2026-06-01T05:05:00.000000Z: the form
    hashed and signed (unlike api.db.iso_utc, it always has the microseconds)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalise(value):
    # Floats (and decimals) as strings: a database or driver that hands back
    # 1.0 as 1 or as Decimal('1.0') must not change the hash.
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return repr(float(value))
    if isinstance(value, datetime):
        return canonical_utc(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return str(value)


def canonical(obj) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (not \\u-escaped)."""
    return json.dumps(_normalise(obj), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass")


def event_document(*, incident_id, seq: int, kind: str, actor_id: int | None,
                   revision: int | None, at: datetime, changes) -> dict:
    """What an event's hash covers (everything stored about it but its row id)."""
    return {"v": CANONICAL_VERSION, "incident_id": str(incident_id), "seq": seq, "kind": kind,
            "actor_id": actor_id, "revision": revision, "at": canonical_utc(at),
            "changes": changes}


def chain_hash(prev_hash: str, document: dict) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(document)).hexdigest()


def hash_of(row) -> str:
    """Recompute a stored event's hash from its columns (a row or an IncidentEvent)."""
    return chain_hash(row.prev_hash, event_document(
        incident_id=row.incident_id, seq=row.seq, kind=row.kind, actor_id=row.actor_id,
        revision=row.revision, at=row.at, changes=row.changes))


# ---------------------------------------------------------------------------
# Sealing new events


def _lock_and_read_heads(connection, incident_ids) -> dict:
    """Lock the incidents (PostgreSQL; in id order) and read each chain's head."""
    ids = sorted(set(incident_ids), key=str)
    if connection.dialect.name == "postgresql":
        incidents = Incident.__table__
        connection.execute(select(incidents.c.id).where(incidents.c.id.in_(ids))
                           .order_by(incidents.c.id).with_for_update())
    inner = EVENTS.alias("inner_events")
    last = (select(func.max(inner.c.seq)).where(inner.c.incident_id == EVENTS.c.incident_id)
            .scalar_subquery())
    rows = connection.execute(select(EVENTS.c.incident_id, EVENTS.c.seq, EVENTS.c.hash)
                              .where(EVENTS.c.incident_id.in_(ids), EVENTS.c.seq == last))
    return {row.incident_id: (row.seq, row.hash) for row in rows}


# Chain heads this transaction has written or locked: incident id -> (seq, hash).
# Each of those incidents is locked by this transaction (its row was inserted
# in it, or locked by _lock_and_read_heads), so no other transaction can append
# to its chain before this one ends; and they are forgotten on any rollback
# (a savepoint's too) and when the transaction ends. A sync seals twice (its
# own events, then the hooks') and then signs the heads: this spares it the
# lock and the head query each time after the first.
_KNOWN_HEADS = "qorgau_ledger_heads"


def _known_heads(session) -> dict:
    return session.info.setdefault(_KNOWN_HEADS, {})


def _forget_heads(session, *args) -> None:
    session.info.pop(_KNOWN_HEADS, None)


def _forget_heads_at_end(session, transaction):
    if transaction.parent is None:
        _forget_heads(session)


def chains_start(incident_ids) -> None:
    """Tell the ledger that this transaction has just inserted these incidents:
    their chains are empty and their rows are locked by it (no head query needed)."""
    known = _known_heads(db.session())
    for ident in incident_ids:
        known[ident] = (0, GENESIS)


def _seal(items: list, connection, get, put, known: dict | None = None) -> None:
    """Seal items in order; `known`: the session's known heads, used and kept up to date."""
    ids = {get(item, "incident_id") for item in items}
    known = {} if known is None else known
    unknown = [ident for ident in ids if ident not in known]
    heads = {ident: known[ident] for ident in ids if ident in known}
    if unknown:
        read = _lock_and_read_heads(connection, unknown)
        heads.update({ident: read.get(ident, (0, GENESIS)) for ident in unknown})
    for item in items:
        incident_id = get(item, "incident_id")
        if get(item, "at") is None:
            put(item, "at", utcnow())
        seq, prev = heads[incident_id]
        seq += 1
        digest = chain_hash(prev, event_document(
            incident_id=incident_id, seq=seq, kind=get(item, "kind"),
            actor_id=get(item, "actor_id"), revision=get(item, "revision"),
            at=get(item, "at"), changes=get(item, "changes")))
        put(item, "seq", seq)
        put(item, "prev_hash", prev)
        put(item, "hash", digest)
        heads[incident_id] = (seq, digest)
    known.update(heads)


def seal_rows(rows: list[dict], connection=None) -> list[dict]:
    """Fill in seq/prev_hash/hash of event row dicts (a Core bulk insert), in list order.

    Call it in the transaction that inserts them, right before the insert.
    """
    if rows:
        # The heads this transaction knows (chains_start, events_inserted) spare the
        # lock and the head query: a sync seals its "created" and its "routed" events
        # while it holds its region's case counter.
        known = _known_heads(db.session())
        _seal(rows, connection or db.session.connection(),
              lambda row, key: row.get(key), dict.__setitem__, known)
        # The insert is the caller's: until it is done, these heads are not known.
        for row in rows:
            known.pop(row["incident_id"], None)
    return rows


def events_inserted(rows: list[dict]) -> None:
    """The caller has just inserted these sealed rows (api.incidents.records
    insert_events), in this transaction, which holds their incidents' locks: their
    chain heads are known again (no head query for the next event)."""
    known = _known_heads(db.session())
    for row in rows:
        known[row["incident_id"]] = (row["seq"], row["hash"])


def _seal_new_events(session, flush_context, instances):
    new = [obj for obj in session.new if isinstance(obj, IncidentEvent) and obj.hash is None]
    if not new:
        return
    new.sort(key=lambda obj: db.inspect(obj).insert_order)
    # Inserted by this very flush (or, if it fails, forgotten with its rollback).
    _seal(new, session.connection(), getattr, setattr, _known_heads(session))


# Every session seals the incident events it flushes, and forgets the heads it
# knew when its transaction ends (after_soft_rollback fires for every rollback,
# a savepoint's included).
SESSION_EVENTS = (("before_flush", _seal_new_events),
                  ("after_soft_rollback", _forget_heads),
                  ("after_transaction_end", _forget_heads_at_end))


def install_session_events() -> None:
    """Listen to every SQLAlchemy session (idempotent); create_app calls it."""
    for name, handler in SESSION_EVENTS:
        if not sa_event.contains(Session, name, handler):
            sa_event.listen(Session, name, handler)


# ---------------------------------------------------------------------------
# Receipts


def receipt_view(receipt: Receipt) -> dict:
    """A receipt as the API serves it (ReceiptSchema): the signed bytes travel as they are."""
    return {"algorithm": keys.ALGORITHM, "key_id": receipt.key_id,
            "incident_id": str(receipt.incident_id), "revision": receipt.revision,
            "event_hash": receipt.event_hash, "received_at": canonical_utc(receipt.received_at),
            "payload": receipt.payload, "signature": receipt.signature}


def _heads(incident_ids) -> dict:
    known = _known_heads(db.session())
    heads = {ident: known[ident][1] for ident in incident_ids
             if ident in known and known[ident][0] > 0}
    missing = [ident for ident in incident_ids if ident not in heads]
    if not missing:
        return heads
    inner = EVENTS.alias("inner_events")
    last = (select(func.max(inner.c.seq)).where(inner.c.incident_id == EVENTS.c.incident_id)
            .scalar_subquery())
    rows = db.session.execute(select(EVENTS.c.incident_id, EVENTS.c.hash)
                              .where(EVENTS.c.incident_id.in_(sorted(missing, key=str)),
                                     EVENTS.c.seq == last))
    heads.update({row.incident_id: row.hash for row in rows})
    return heads


def _sign(incident: Incident, head: str, received_at: datetime, key, key_id: str) -> dict:
    payload = canonical({"incident_id": str(incident.id), "case_number": incident.case_number,
                         "revision": incident.revision, "event_hash": head,
                         "received_at": canonical_utc(received_at), "key_id": key_id})
    signature = keys.b64url(key.sign(payload))
    return {"incident_id": incident.id, "revision": incident.revision, "event_hash": head,
            "received_at": received_at, "key_id": key_id, "payload": payload.decode(),
            "signature": signature}


def issue_receipts(entries: Iterable[tuple[str, Incident]], received_at: datetime) -> dict:
    """Receipts for the incidents a sync stored or found: incident id -> receipt view.

    created/updated/pending: a new receipt for the incident's (final) revision, over
    the chain head as it stands now (after the hooks' events too).
    unchanged: the receipt kept for the current revision (made now if the
    revision predates the ledger). Runs in the sync's transaction.
    """
    fresh: dict[uuid.UUID, Incident] = {}
    replayed: dict[uuid.UUID, Incident] = {}
    for status, incident in entries:
        if status in ("created", "updated", "pending"):
            fresh[incident.id] = incident
        elif status == "unchanged":
            replayed[incident.id] = incident
    for ident in fresh:
        replayed.pop(ident, None)
    out: dict[uuid.UUID, dict] = {}
    if replayed:
        stored = db.session.scalars(select(Receipt).where(
            Receipt.incident_id.in_(sorted(replayed, key=str))))
        for receipt in stored:
            incident = replayed.get(receipt.incident_id)
            if incident is not None and receipt.revision == incident.revision:
                out[receipt.incident_id] = receipt_view(receipt)
                del replayed[receipt.incident_id]
    todo = {**fresh, **replayed}
    if not todo:
        return out
    db.session.flush()
    heads = _heads(todo)
    # The key and its id once per batch, not once per receipt.
    app = current_app._get_current_object()
    key, key_id = keys.signing_key(app), keys.key_id(app)
    rows = [_sign(incident, heads[ident], received_at if ident in fresh else utcnow(),
                  key, key_id)
            for ident, incident in sorted(todo.items(), key=lambda kv: str(kv[0]))
            if ident in heads]
    insert_rows(dialect_insert(Receipt.__table__).on_conflict_do_nothing(
        index_elements=["incident_id", "revision"]), rows)
    for row in rows:
        out[row["incident_id"]] = receipt_view(Receipt(**row))
    return out


def receipts_of(incident_id: uuid.UUID) -> list[Receipt]:
    return list(db.session.scalars(select(Receipt).where(Receipt.incident_id == incident_id)
                                   .order_by(Receipt.revision)))


# ---------------------------------------------------------------------------
# Verification


@dataclass
class Break:
    incident_id: uuid.UUID
    seq: int
    problem: str
    expected: str
    found: str

    def __str__(self):
        return (f"incident {self.incident_id} seq {self.seq}: {self.problem} "
                f"(expected {self.expected}, found {self.found})")


@dataclass
class ChainResult:
    verified: bool
    events: int
    head: str | None
    broken: Break | None = None

    def view(self) -> dict:
        return {"verified": self.verified, "events": self.events, "head": self.head,
                "broken_at": self.broken.seq if self.broken else None}


def verify_chain(incident_id, events: Iterable) -> ChainResult:
    """Walk one incident's events in seq order; the first link that fails is named."""
    expected_seq, prev, count = 1, GENESIS, 0
    for row in sorted(events, key=lambda e: e.seq):
        count += 1
        if row.seq != expected_seq:
            problem = "event missing" if row.seq > expected_seq else "seq repeated"
            return ChainResult(False, count, None, Break(
                incident_id, expected_seq, problem, f"seq {expected_seq}", f"seq {row.seq}"))
        if row.prev_hash != prev:
            return ChainResult(False, count, None, Break(
                incident_id, row.seq, "prev_hash does not link", prev, row.prev_hash))
        digest = hash_of(row)
        if digest != row.hash:
            return ChainResult(False, count, None, Break(
                incident_id, row.seq, "content does not match its hash", digest, row.hash))
        prev, expected_seq = row.hash, expected_seq + 1
    if count == 0:
        return ChainResult(False, 0, None, Break(incident_id, 1, "event missing", "seq 1",
                                                 "no events"))
    return ChainResult(True, count, prev)


def verify_receipt(receipt, in_chain: bool | None, public_keys: dict) -> str | None:
    """None when the receipt holds; else what is wrong with it."""
    public = public_keys.get(receipt.key_id)
    if public is None:
        return f"signed by unknown key {receipt.key_id}"
    try:
        public.verify(keys.b64url_decode(receipt.signature), receipt.payload.encode())
    except (InvalidSignature, ValueError):
        return "signature does not verify"
    try:
        payload = json.loads(receipt.payload)
    except ValueError:
        return "payload is not JSON"
    for name, stored in (("incident_id", str(receipt.incident_id)),
                         ("revision", receipt.revision), ("event_hash", receipt.event_hash),
                         ("key_id", receipt.key_id)):
        if payload.get(name) != stored:
            return f"signed {name} {payload.get(name)!r} differs from stored {stored!r}"
    if in_chain is False:
        return f"signed event_hash {receipt.event_hash} is not in the incident's chain"
    return None


def public_keys(app=None) -> dict:
    app = app or current_app._get_current_object()
    return {keys.key_id(app): keys.public_key(app)}


def incident_chain(incident: Incident) -> ChainResult:
    """The chain of one loaded incident (its events relationship)."""
    return verify_chain(incident.id, incident.events)


@dataclass
class Report:
    incidents: int = 0
    events: int = 0
    receipts: int = 0
    broken_chains: list[Break] = field(default_factory=list)
    bad_receipts: list[tuple[Receipt, str]] = field(default_factory=list)
    files: int = 0
    bad_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken_chains and not self.bad_receipts and not self.bad_files


# What the chains vouch for outside the events (api.media: the stored files,
# whose hashes are events). Each entry defines verify_stored(incident_id) ->
# (files checked, [problem naming the file, ...]). Registered in create_app.
verify_listeners: list = []


def signed_head(incident: Incident) -> dict:
    """A receipt (as receipt_view) over the incident's chain head as it stands
    now, for an event added without a new revision (an attachment). Not kept in
    ledger_receipts (one per revision): the caller keeps it with what it covers."""
    db.session.flush()
    head = _heads([incident.id])[incident.id]
    app = current_app._get_current_object()
    row = _sign(incident, head, utcnow(), keys.signing_key(app), keys.key_id(app))
    return receipt_view(Receipt(**row))


def _chains(incident_id: uuid.UUID | None) -> Iterator[tuple[uuid.UUID, list]]:
    query = select(EVENTS).order_by(EVENTS.c.incident_id, EVENTS.c.seq)
    if incident_id is not None:
        query = query.where(EVENTS.c.incident_id == incident_id)
    current, rows = None, []
    for row in db.session.execute(query.execution_options(yield_per=2000)):
        if row.incident_id != current:
            if rows:
                yield current, rows
            current, rows = row.incident_id, []
        rows.append(row)
    if rows:
        yield current, rows


def verify_all(incident_id: uuid.UUID | None = None) -> Report:
    """Every incident's chain (or one's), and every stored receipt's signature and link."""
    report = Report()
    for ident, rows in _chains(incident_id):
        report.incidents += 1
        report.events += len(rows)
        result = verify_chain(ident, rows)
        if result.broken:
            report.broken_chains.append(result.broken)
    incidents = select(Incident.id).where(~select(EVENTS.c.id).where(
        EVENTS.c.incident_id == Incident.id).exists())
    if incident_id is not None:
        incidents = incidents.where(Incident.id == incident_id)
    for ident in db.session.scalars(incidents):
        report.incidents += 1
        report.broken_chains.append(verify_chain(ident, []).broken)
    report.broken_chains.sort(key=lambda b: (str(b.incident_id), b.seq))
    # Whether each receipt's event_hash is in its incident's chain: a join on
    # the (incident_id, seq) index, not a set of every hash in memory.
    linked = (select(EVENTS.c.id).where(EVENTS.c.incident_id == Receipt.incident_id,
                                        EVENTS.c.hash == Receipt.event_hash).exists())
    query = select(Receipt, linked).order_by(Receipt.incident_id, Receipt.revision)
    if incident_id is not None:
        query = query.where(Receipt.incident_id == incident_id)
    known = public_keys()
    for receipt, in_chain in db.session.execute(query.execution_options(yield_per=2000)):
        report.receipts += 1
        problem = verify_receipt(receipt, bool(in_chain), known)
        if problem:
            report.bad_receipts.append((receipt, problem))
    for listener in verify_listeners:
        checked, problems = listener.verify_stored(incident_id)
        report.files += checked
        report.bad_files.extend(problems)
    return report
