"""Tamper evidence: per-incident hash chains, signed receipts, `flask ledger verify`.

The tampering tests act as an attacker with database access: raw SQL past
the ORM guard, with the append-only trigger set aside in the test's own
transaction (PostgreSQL: ALTER TABLE ... DISABLE TRIGGER; SQLite: the test's
own copy of the database loses its triggers).
"""

import json
import os
import stat
import uuid
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask_migrate import upgrade
from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from api import create_app
from api.extensions import db
from api.incidents import records as incidents
from api.incidents.models import Incident, IncidentEvent
from api.ledger import keys
from api.ledger import service as ledger
from api.ledger.models import Receipt
from tests.factories import make_person
from tests.incident_helpers import (
    batch,
    frozen_clock_fixture,  # noqa: F401 (fixtures)
    no_hooks_fixture,  # noqa: F401
    record,
    result,
)

pytestmark = pytest.mark.usefixtures("frozen_clock", "no_hooks")
EVENTS = IncidentEvent.__table__
RECEIPTS = Receipt.__table__


@pytest.fixture
def crew(login):
    person = make_person("crew", position="nurse", language="en")
    login(person)
    return person


def public_key(client) -> Ed25519PublicKey:
    body = client.get("/api/v1/ledger/public-key").get_json()
    return Ed25519PublicKey.from_public_bytes(keys.b64url_decode(body["public_key"]))


def events_of(incident_id) -> list[IncidentEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(IncidentEvent).where(
        IncidentEvent.incident_id == uuid.UUID(str(incident_id))).order_by(IncidentEvent.seq)))


def three_revisions(client) -> str:
    rec = record(note="first")
    result(client, rec)
    result(client, {**rec, "revision": 2, "note": "second"})
    result(client, {**rec, "revision": 3, "note": "third", "kind": "violence"})
    return rec["id"]


@contextmanager
def as_attacker():
    """Raw writes to the history, as someone with the database's password could."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    if postgres:
        db.session.execute(text(
            "ALTER TABLE incident_events DISABLE TRIGGER incident_events_append_only"))
    else:
        for operation in ("update", "delete"):
            db.session.execute(text(f"DROP TRIGGER incident_events_no_{operation}"))
    yield
    if postgres:
        db.session.execute(text(
            "ALTER TABLE incident_events ENABLE TRIGGER incident_events_append_only"))
    db.session.commit()
    db.session.expire_all()


def verify(runner, *args):
    return runner.invoke(args=["ledger", "verify", *args])


# ---------------------------------------------------------------- chains


def test_events_form_a_chain_per_incident(client, crew):
    first, other = three_revisions(client), three_revisions(client)
    for ident in (first, other):
        events = events_of(ident)
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[0].prev_hash == ledger.GENESIS
        assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
        assert all(ledger.hash_of(e) == e.hash for e in events)
        assert ledger.verify_chain(ident, events).verified


def test_the_hash_is_sha256_over_prev_and_canonical_json(client, crew):
    import hashlib
    event = events_of(three_revisions(client))[1]
    doc = ledger.event_document(incident_id=event.incident_id, seq=2, kind=event.kind,
                                actor_id=event.actor_id, revision=event.revision,
                                at=event.at, changes=event.changes)
    data = ledger.canonical(doc)
    assert b" " not in data.replace(b"second", b"").replace(b"first", b"")
    assert json.loads(data)["at"].endswith("Z") and "." in json.loads(data)["at"]
    assert hashlib.sha256(bytes.fromhex(event.prev_hash) + data).hexdigest() == event.hash
    # Floats are strings, so 1.0 and Decimal("1.0") hash alike on every database.
    from decimal import Decimal
    assert ledger.canonical({"x": 1.0}) == ledger.canonical({"x": Decimal("1.0")})


def test_append_event_outside_sync_extends_the_chain(client, crew):
    ident = three_revisions(client)
    incident = db.session.get(Incident, uuid.UUID(ident))
    incidents.append_event(incident, None, "routed", {"post_id": (None, None)})
    incidents.append_event(incident, None, "status", {"status": ("logged", "routed")})
    db.session.commit()
    events = events_of(ident)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert ledger.verify_chain(ident, events).verified


def test_two_events_can_never_share_a_seq(client, crew):
    ident = three_revisions(client)
    head = events_of(ident)[-1]
    with pytest.raises(IntegrityError):
        db.session.execute(EVENTS.insert().values(
            incident_id=uuid.UUID(ident), at=head.at, actor_id=None, kind="forged",
            revision=3, changes={}, seq=3, prev_hash=head.prev_hash, hash="f" * 64))
        db.session.flush()
    db.session.rollback()


def test_core_rows_are_sealed_with_seal_rows(client, crew):
    ident = three_revisions(client)
    head = events_of(ident)[-1]
    rows = ledger.seal_rows([
        {"incident_id": uuid.UUID(ident), "at": head.at, "actor_id": None, "kind": "routed",
         "revision": 3, "changes": {"post_id": [None, 1]}},
        {"incident_id": uuid.UUID(ident), "at": head.at, "actor_id": None, "kind": "status",
         "revision": 3, "changes": {"status": ["logged", "routed"]}}])
    db.session.execute(EVENTS.insert(), rows)
    db.session.commit()
    events = events_of(ident)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert ledger.verify_chain(ident, events).verified


# ---------------------------------------------------------------- receipts


def test_each_synced_revision_gets_a_signed_receipt(client, crew):
    rec = record()
    created = result(client, rec)
    receipt = created["receipt"]
    key = public_key(client)
    key.verify(keys.b64url_decode(receipt["signature"]), receipt["payload"].encode())
    payload = json.loads(receipt["payload"])
    assert payload == {"incident_id": rec["id"], "case_number": created["incident"]["case_number"],
                       "revision": 1, "event_hash": events_of(rec["id"])[-1].hash,
                       "received_at": receipt["received_at"], "key_id": receipt["key_id"]}
    assert receipt["payload"] == json.dumps(payload, sort_keys=True, separators=(",", ":"))
    updated = result(client, {**rec, "revision": 2, "note": "more"})
    assert updated["receipt"]["revision"] == 2
    assert updated["receipt"]["event_hash"] == events_of(rec["id"])[-1].hash
    # A replay (a lost answer) gets the receipt that was kept, not a new one.
    replay = result(client, {**rec, "revision": 2, "note": "more"})
    assert replay["status"] == "unchanged" and replay["receipt"] == updated["receipt"]
    assert len(db.session.scalars(select(Receipt)).all()) == 2


def test_the_receipt_covers_hook_events_of_the_same_sync(client, crew, monkeypatch):
    class Router:
        def on_incident_event(self, incident, event):
            if event.kind == "created":
                incidents.append_event(incident, None, "routed", {"post_id": (None, None)})

    monkeypatch.setattr(incidents, "incident_hooks", [Router()])
    rec = record()
    receipt = result(client, rec)["receipt"]
    events = events_of(rec["id"])
    assert [e.kind for e in events] == ["created", "routed"]
    assert receipt["event_hash"] == events[-1].hash


def test_a_hook_event_rolled_back_with_its_savepoint_leaves_no_trace(client, crew, monkeypatch):
    # The heads a transaction knows (api.ledger.service._KNOWN_HEADS) must be
    # forgotten when the hook's savepoint rolls back its event.
    class HalfRouter:
        def on_incidents_synced(self, batch):
            for incident in batch:
                incidents.append_event(incident, None, "routed", {"post_id": (None, None)})
            db.session.flush()
            raise RuntimeError("push is down")

    monkeypatch.setattr(incidents, "incident_hooks", [HalfRouter()])
    first, second = record(), record()
    body = client.post("/api/v1/incidents/sync", json=batch(first, second)).get_json()
    results = {r["id"]: r for r in body["results"]}
    for rec in (first, second):
        events = events_of(rec["id"])
        assert [e.kind for e in events] == ["created"]
        assert results[rec["id"]]["receipt"]["event_hash"] == events[-1].hash
    monkeypatch.setattr(incidents, "incident_hooks", [])
    revised = result(client, {**first, "revision": 2, "note": "more"})
    events = events_of(first["id"])
    assert [e.seq for e in events] == [1, 2]
    assert ledger.verify_chain(first["id"], events).verified
    assert revised["receipt"]["event_hash"] == events[-1].hash


def test_a_sync_of_new_records_never_reads_their_empty_chains(client, crew):
    """Its incidents were inserted by the same transaction, which knows their chains
    (empty, then the events it wrote): sealing the "created" and the hooks' events
    asks the database for no chain head. It does so while it holds its region's
    case counter, which every other crew of the region waits for."""
    heads = []

    def watch(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "incident_events" in statement:
            heads.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", watch)
    try:
        body = client.post("/api/v1/incidents/sync", json=batch(record(), record())).get_json()
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", watch)
    assert [r["status"] for r in body["results"]] == ["created", "created"]
    assert heads == []
    for r in body["results"]:
        events = events_of(r["id"])
        assert ledger.verify_chain(r["id"], events).verified
        assert r["receipt"]["event_hash"] == events[-1].hash


def test_the_public_key_is_public_and_kept_in_the_instance_folder(app, client):
    body = client.get("/api/v1/ledger/public-key").get_json()
    assert body["algorithm"] == "Ed25519" and len(keys.b64url_decode(body["public_key"])) == 32
    assert body["key_id"] == keys.key_id(app)
    path = keys.key_file(app)
    assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_key_may_come_from_the_environment(database_url, tmp_path):
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": "sqlite://",
                      "LEDGER_PRIVATE_KEY": pem, "LEDGER_KEY_FILE": str(tmp_path / "no.pem")})
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    body = app.test_client().get("/api/v1/ledger/public-key").get_json()
    assert keys.b64url_decode(body["public_key"]) == raw
    assert not (tmp_path / "no.pem").exists()


# ---------------------------------------------------------------- verify and tampering


def test_verify_passes_on_an_untouched_ledger(client, crew, runner):
    three_revisions(client)
    three_revisions(client)
    out = verify(runner)
    assert out.exit_code == 0, out.output
    assert "incidents: 2  events: 6  receipts: 6" in out.output and "OK" in out.output


def test_a_changed_value_is_named(client, crew, runner):
    ident = three_revisions(client)
    second = events_of(ident)[1]
    with as_attacker():
        db.session.execute(EVENTS.update().where(EVENTS.c.id == second.id).values(
            changes={**second.changes, "note": ["first", "something else"]}))
    out = verify(runner)
    assert out.exit_code == 1
    assert (f"FIRST BROKEN LINK: incident {ident} seq 2: content does not match its hash "
            f"(expected ") in out.output
    assert f"found {second.hash})" in out.output


def test_a_deleted_middle_event_is_named(client, crew, runner):
    ident = three_revisions(client)
    with as_attacker():
        db.session.execute(EVENTS.delete().where(EVENTS.c.incident_id == uuid.UUID(ident),
                                                 EVENTS.c.seq == 2))
    out = verify(runner)
    assert out.exit_code == 1
    assert (f"FIRST BROKEN LINK: incident {ident} seq 2: event missing "
            f"(expected seq 2, found seq 3)") in out.output


def test_reordered_events_are_named(client, crew, runner):
    ident = three_revisions(client)
    second, third = events_of(ident)[1:]
    with as_attacker():
        for event, seq in ((second, -1), (third, 2), (second, 3)):
            db.session.execute(EVENTS.update().where(EVENTS.c.id == event.id).values(seq=seq))
    out = verify(runner)
    assert out.exit_code == 1
    assert (f"FIRST BROKEN LINK: incident {ident} seq 2: prev_hash does not link "
            f"(expected {events_of(ident)[0].hash}, found {second.hash})") in out.output


def test_a_forged_receipt_is_named(client, crew, runner):
    ident = three_revisions(client)
    receipt = db.session.scalar(select(Receipt).where(Receipt.revision == 2))
    payload = json.loads(receipt.payload) | {"revision": 1}
    forged = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    db.session.execute(RECEIPTS.update().where(RECEIPTS.c.id == receipt.id).values(
        payload=forged))
    db.session.commit()
    out = verify(runner)
    assert out.exit_code == 1
    assert "broken chains: 0  bad receipts: 1" in out.output
    assert (f"FIRST BAD RECEIPT: incident {ident} revision 2: signature does not verify"
            in out.output)
    # Signed by some other key: unknown.
    other = Ed25519PrivateKey.generate()
    db.session.execute(RECEIPTS.update().where(RECEIPTS.c.id == receipt.id).values(
        payload=forged, key_id="0123456789abcdef",
        signature=keys.b64url(other.sign(forged.encode()))))
    db.session.commit()
    assert "signed by unknown key 0123456789abcdef" in verify(runner).output


def test_a_rewritten_chain_is_caught_by_the_receipts(client, crew, runner):
    """An attacker who recomputes every hash after the change: only the signatures tell."""
    ident = three_revisions(client)
    events = events_of(ident)
    original = [e.hash for e in events]
    with as_attacker():
        prev = ledger.GENESIS
        for event in events:
            changes = event.changes
            if event.seq == 2:
                changes = {**changes, "note": ["first", "rewritten"]}
            doc = ledger.event_document(incident_id=event.incident_id, seq=event.seq,
                                        kind=event.kind, actor_id=event.actor_id,
                                        revision=event.revision, at=event.at, changes=changes)
            digest = ledger.chain_hash(prev, doc)
            db.session.execute(EVENTS.update().where(EVENTS.c.id == event.id).values(
                changes=changes, prev_hash=prev, hash=digest))
            prev = digest
    out = verify(runner)
    assert out.exit_code == 1 and "broken chains: 0  bad receipts: 2" in out.output
    assert (f"FIRST BAD RECEIPT: incident {ident} revision 2: signed event_hash "
            f"{original[1]} is not in the incident's chain") in out.output


def test_verify_one_incident(client, crew, runner):
    good, bad = three_revisions(client), three_revisions(client)
    with as_attacker():
        db.session.execute(EVENTS.delete().where(EVENTS.c.incident_id == uuid.UUID(bad),
                                                 EVENTS.c.seq == 3))
        db.session.execute(EVENTS.delete().where(EVENTS.c.incident_id == uuid.UUID(bad),
                                                 EVENTS.c.seq == 2))
    assert verify(runner, "--incident", good).exit_code == 0
    out = verify(runner, "--incident", bad)
    # The truncated tail leaves a valid chain; the receipts name what is gone.
    assert out.exit_code == 1 and "bad receipts: 2" in out.output


# ---------------------------------------------------------------- the report


def test_the_review_detail_says_whether_the_chain_verifies(client, crew, login):
    ident = three_revisions(client)
    login(make_person("manager", station=crew.station))
    url = f"/api/v1/review/incidents/{ident}"
    body = client.get(url).get_json()
    events = events_of(ident)
    assert body["chain"] == {"verified": True, "events": 3, "head": events[-1].hash,
                             "broken_at": None}
    assert [r["revision"] for r in body["receipts"]] == [1, 2, 3]
    # The manager's note is an event too, and joins the chain.
    client.put(f"{url}/note", json={"note": "seen"})
    body = client.get(url).get_json()
    assert body["chain"]["verified"] and body["chain"]["events"] == 4
    with as_attacker():
        db.session.execute(EVENTS.update().where(EVENTS.c.id == events[1].id).values(
            kind="edited"))
    body = client.get(url).get_json()
    assert body["chain"]["verified"] is False and body["chain"]["broken_at"] == 2


def test_the_openapi_document_describes_receipts_and_the_key(client):
    doc = client.get("/api/openapi.json").get_json()
    assert "/api/v1/ledger/public-key" in doc["paths"]
    assert "receipt" in json.dumps(doc)


# ---------------------------------------------------------------- migration


def test_migration_chains_existing_events(empty_database_url):
    from datetime import UTC, datetime

    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": empty_database_url})
    with app.app_context():
        upgrade(revision="0005")
        person = make_person("crew", position="nurse")
        person_id, station_id = person.id, person.station_id
        db.session.remove()
        at = datetime(2026, 6, 1, 5, 5, 0, 123456, tzinfo=UTC)
        ids = [uuid.uuid4(), uuid.uuid4()]
        # Written as the 0005 schema knew them: no chain columns.
        with db.engine.begin() as conn:
            sqlite = conn.dialect.name == "sqlite"

            def bind(ident):
                return ident.hex if sqlite else ident

            when = at.replace(tzinfo=None).isoformat(sep=" ") if sqlite else at
            for ident in ids:
                conn.execute(text(
                    "INSERT INTO incidents (id, reporter_id, station_id, reporter_position, "
                    "tapped_at, tapped_offset_min, received_at, clock_skew_s, occurred_at, "
                    "updated_at, device_id, revision, kind, aggravating, victim_role, on_duty, "
                    "police_needed, note, status) VALUES (:id, :p, :s, 'nurse', :t, 300, :t, "
                    "0.0, :t, :t, 'phone', 2, 'violence', '[]', 'nurse', true, false, '', "
                    "'logged')"), {"id": bind(ident), "p": person_id, "s": station_id, "t": when})
                for kind, changes in (("created", {"note": [None, "x"], "lat": [None, 43.25]}),
                                      ("revised", {"note": ["x", "Ұрды"], "revision": [1, 2]})):
                    conn.execute(text(
                        "INSERT INTO incident_events (incident_id, at, actor_id, kind, "
                        "revision, changes) VALUES (:i, :at, :a, :k, 1, :c)"),
                        {"i": bind(ident), "at": when, "a": person_id, "k": kind,
                         "c": json.dumps(changes, ensure_ascii=False)})
        upgrade()
        report = ledger.verify_all()
        assert report.ok and report.incidents == 2 and report.events == 4
        assert [e.seq for e in events_of(ids[0])] == [1, 2]
        # The triggers are back: the history is append-only again.
        with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
            conn.execute(text("UPDATE incident_events SET kind = 'x'"))
        db.session.remove()
        db.engine.dispose()
