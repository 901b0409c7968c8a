"""The SMS fallback on the server: the gateway's webhook (signed, replays refused),
an SMS and the later sync being one incident with one case number and one police
alert, the reply through the gateway's send API (retried, never twice), and every
kind of bad message kept with its reason for the administrator, creating nothing.

The gateway is a real loopback HTTP server (tests/sms_helpers.py); the messages
are made by the PWA's own encoder (pwa/js/sms_codec.js, run by node)."""

import base64
import logging
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.auth.sessions import revoke_session
from api.db import utcnow
from api.extensions import db
from api.incidents.models import Incident
from api.police.models import PoliceAlert
from api.sms import outbox
from api.sms.models import ReplyStatus, SmsInbound, SmsReply
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record, sync
from tests.sms_helpers import SECRET, gateway, js_encoder, post_sms  # noqa: F401  (fixtures)

NUMBER = "+77010000075"
SENDER = "+77015550101"


@pytest.fixture
def sms_app(app, gateway):  # noqa: F811
    app.config.update(SMS_WEBHOOK_SECRET=SECRET, SMS_NUMBERS={"75": NUMBER},
                      SMS_GATEWAY_URL=gateway.url, SMS_GATEWAY_USER="qorgau",
                      SMS_GATEWAY_PASSWORD="gateway-password")
    return app


@pytest.fixture
def crew(sms_app, login):
    person = make_person("crew", station=make_station(default_post=make_post()), language="ru")
    session = login(person)
    return person, session


def credentials(client) -> dict:
    sms = client.get("/api/v1/auth/me").get_json()["sms"]
    return {**sms, "key_bytes": base64.urlsafe_b64decode(sms["key"] + "==")}


def urgent(**fields):
    rec = record(police_needed=True, kind="violence", aggravating=["group"],
                 tapped_at="2026-06-01T09:30:00.123+05:00",
                 location={"lat": 43.2381234, "lon": 76.9456123, "accuracy_m": 8.5,
                           "source": "gps"}, **fields)
    return rec


def encode(js_encoder, rec, creds) -> str:  # noqa: F811
    return js_encoder.encode(rec, creds["key_id"], creds["key_bytes"])


def incidents() -> int:
    return db.session.scalar(select(func.count()).select_from(Incident))


def rows(reason=None) -> list[SmsInbound]:
    query = select(SmsInbound).order_by(SmsInbound.id)
    if reason:
        query = query.where(SmsInbound.reason == reason)
    return list(db.session.scalars(query))


# --- the key ---------------------------------------------------------------------

def test_a_crew_session_carries_its_sms_key_and_the_regions_number(client, crew):
    _, session = crew
    creds = credentials(client)
    assert creds["key_id"] == session.id
    assert len(creds["key_bytes"]) == 32
    assert creds["number"] == NUMBER


def test_other_roles_have_no_sms_key(sms_app, client, login):
    login(make_person("police"))
    assert client.get("/api/v1/auth/me").get_json()["sms"] is None


# --- one incident --------------------------------------------------------------

def test_an_sms_then_the_real_sync_is_one_incident_with_one_case_number(
        client, crew, js_encoder, gateway):  # noqa: F811
    person, _ = crew
    rec = urgent(note="Drunk man with a knife at the door")
    answer = post_sms(client, encode(js_encoder, rec, credentials(client)), sender=SENDER)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["outcome"] == "created" and body["duplicate"] is False
    case = body["case_number"]
    assert case.startswith("QG-75-")
    incident = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert incident.police_needed and incident.kind == "violence"
    assert incident.aggravating == ["group"] and incident.revision == 1
    assert (incident.lat, incident.lon) == (43.23812, 76.94561)
    # The police alert, as for any sync.
    alerts = db.session.scalars(select(PoliceAlert).where(
        PoliceAlert.incident_id == incident.id)).all()
    assert len(alerts) == 1

    # The reply with the case number, through the gateway's send API.
    assert outbox.drain() == 1
    assert len(gateway.sent) == 1
    assert gateway.sent[0]["phoneNumbers"] == [SENDER]
    assert case in gateway.sent[0]["textMessage"]["text"]
    assert "тревога принята" in gateway.sent[0]["textMessage"]["text"]
    assert gateway.auth[0] == "Basic " + base64.b64encode(b"qorgau:gateway-password").decode()

    # Later the phone gets data: its own record is the same incident. Its revision 1
    # holds more than the SMS did: a conflict, sent again as revision 2 (outbox.js).
    result = sync(client, rec)["results"][0]
    assert result["status"] == "conflict"
    assert result["incident"]["case_number"] == case
    result = sync(client, {**rec, "revision": 2})["results"][0]
    assert result["status"] == "updated"
    assert result["incident"]["case_number"] == case
    assert incidents() == 1
    db.session.expire_all()
    incident = db.session.get(Incident, uuid.UUID(rec["id"]))
    assert incident.note == "Drunk man with a knife at the door"
    assert incident.revision == 2 and incident.lat == pytest.approx(43.2381234)
    assert db.session.scalar(select(func.count()).select_from(PoliceAlert)) == 1
    assert outbox.drain() == 0 and len(gateway.sent) == 1
    assert person.id == incident.reporter_id


def test_a_record_synced_first_then_its_sms_is_the_same_incident(
        client, crew, js_encoder, gateway):  # noqa: F811
    rec = urgent()
    synced = sync(client, rec)["results"][0]
    assert synced["status"] == "created"
    body = post_sms(client, encode(js_encoder, rec, credentials(client))).get_json()
    assert body["outcome"] == "merged"
    assert body["case_number"] == synced["incident"]["case_number"]
    assert incidents() == 1
    outbox.drain()
    assert synced["incident"]["case_number"] in gateway.sent[0]["textMessage"]["text"]


def test_an_sms_whose_id_is_someone_elses_is_refused(client, crew, js_encoder, login):  # noqa: F811
    rec = urgent()
    sync(client, rec)  # the first crew member's incident
    other = make_person("crew")
    login(other)
    text = encode(js_encoder, rec, credentials(client))
    body = post_sms(client, text).get_json()
    assert (body["outcome"], body["reason"]) == ("rejected", "sync_refused")
    assert incidents() == 1
    assert db.session.get(Incident, uuid.UUID(rec["id"])).reporter_id != other.id


# --- bad messages ------------------------------------------------------------------

BAD = {
    "wrong_mac": lambda enc, creds: enc({**creds, "key_bytes": bytes(32)}),
    "unknown_device": lambda enc, creds: enc({**creds, "key_id": creds["key_id"] + 1000}),
    "truncated": lambda enc, creds: enc(creds)[:-12],
    "concatenated": lambda enc, creds: enc(creds) + "\n" + enc(creds),
    "non_gsm": lambda enc, creds: enc(creds).replace("QORGAU SOS", "QORGAU SOS Помогите"),
    "not_qorgau": lambda enc, creds: "Здравствуйте, это Айгуль",
}


@pytest.mark.parametrize("reason", sorted(BAD))
def test_a_bad_message_is_kept_with_its_reason_and_creates_nothing(
        client, crew, js_encoder, login, caplog, reason):  # noqa: F811
    rec = urgent()
    creds = credentials(client)

    def enc(c):
        return js_encoder.encode(rec, c["key_id"], c["key_bytes"])

    with caplog.at_level(logging.WARNING, logger="api.sms.service"):
        answer = post_sms(client, BAD[reason](enc, creds))
    assert answer.status_code == 200
    assert answer.get_json()["outcome"] == "rejected"
    assert answer.get_json()["reason"] == reason
    assert incidents() == 0
    assert db.session.scalar(select(func.count()).select_from(SmsReply)) == 0
    assert any(reason in r.getMessage() for r in caplog.records)
    # The administrator sees it.
    login(make_person("admin"))
    listed = client.get("/api/v1/sms/messages?outcome=rejected").get_json()["items"]
    assert [item["reason"] for item in listed] == [reason]


def test_a_revoked_sessions_key_is_refused(client, crew, js_encoder):  # noqa: F811
    rec = urgent()
    text = encode(js_encoder, rec, credentials(client))
    revoke_session(crew[1])
    body = post_sms(client, text).get_json()
    assert (body["outcome"], body["reason"]) == ("rejected", "revoked_key")
    assert incidents() == 0


def test_lowercase_and_respaced_text_is_accepted_and_noted(client, crew, js_encoder):  # noqa: F811
    rec = urgent()
    text = encode(js_encoder, rec, credentials(client))
    rewritten = "  " + text.lower().replace(" ", "\n", 3).replace(" ", "")
    body = post_sms(client, rewritten).get_json()
    assert body["outcome"] == "created"
    assert "rewritten" in rows()[0].detail
    assert incidents() == 1


def test_a_replayed_message_creates_nothing_and_is_not_answered_again(
        client, crew, js_encoder, gateway, caplog):  # noqa: F811
    text = encode(js_encoder, urgent(), credentials(client))
    first = post_sms(client, text).get_json()
    with caplog.at_level(logging.WARNING, logger="api.sms.service"):
        second = post_sms(client, text, sender="+77770000000").get_json()  # another phone
    assert first["outcome"] == "created"
    assert (second["outcome"], second["reason"]) == ("rejected", "replayed")
    assert any("replayed" in r.getMessage() for r in caplog.records)
    assert incidents() == 1
    outbox.drain()
    assert [m["phoneNumbers"] for m in gateway.sent] == [[SENDER]]


def test_the_same_webhook_event_twice_is_handled_once(client, crew, js_encoder, gateway):  # noqa: F811
    text = encode(js_encoder, urgent(), credentials(client))
    first = post_sms(client, text, event_id="evt-1").get_json()
    again = post_sms(client, text, event_id="evt-1").get_json()
    assert first["outcome"] == again["outcome"] == "created"
    assert again["duplicate"] is True and again["case_number"] == first["case_number"]
    assert len(rows()) == 1
    assert outbox.drain() == 1 and outbox.drain() == 0
    assert len(gateway.sent) == 1


# --- the webhook's own defences ------------------------------------------------------

def test_a_wrong_signature_is_401_and_kept(client, crew, js_encoder):  # noqa: F811
    text = encode(js_encoder, urgent(), credentials(client))
    answer = post_sms(client, text, secret="not-the-secret")
    assert answer.status_code == 401
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json()["type"].endswith("sms-signature")
    assert incidents() == 0
    assert [r.reason for r in rows()] == ["bad_signature"]


def test_a_stale_timestamp_is_401(client, crew, js_encoder):  # noqa: F811
    text = encode(js_encoder, urgent(), credentials(client))
    answer = post_sms(client, text, stamp=int(time.time()) - 3600)
    assert answer.status_code == 401
    assert answer.get_json()["type"].endswith("sms-stale")
    assert [r.reason for r in rows()] == ["stale_timestamp"]
    assert incidents() == 0


def test_a_payload_without_a_message_is_422_naming_it(sms_app, client):
    import json

    from tests.sms_helpers import WEBHOOK, signed

    body = json.dumps({"event": "sms:received", "id": "e1", "payload": {"phoneNumber": "1"}})
    answer = client.post(WEBHOOK, data=body, headers=signed(body.encode()))
    assert answer.status_code == 422
    fields = [e["field"] for e in answer.get_json()["errors"]]
    assert fields == ["payload.message"]


def test_other_gateway_events_are_acknowledged(sms_app, client):
    import json

    from tests.sms_helpers import WEBHOOK, signed

    body = json.dumps({"event": "system:ping", "id": "ping-1", "payload": {}}).encode()
    answer = client.post(WEBHOOK, data=body, headers=signed(body))
    assert answer.status_code == 200 and answer.get_json()["outcome"] == "ignored"


def test_without_a_secret_the_webhook_accepts_nothing(app, client):
    answer = post_sms(client, "QORGAU SOS NOLOC")
    assert answer.status_code == 404
    assert answer.get_json()["type"].endswith("sms-not-configured")


# --- the reply: retried, never twice --------------------------------------------------

def _one_reply(client, js_encoder):  # noqa: F811
    body = post_sms(client, encode(js_encoder, urgent(), credentials(client))).get_json()
    return body["case_number"]


def test_a_failing_gateway_is_retried(client, crew, js_encoder, gateway):  # noqa: F811
    case = _one_reply(client, js_encoder)
    gateway.answers = [503]
    outbox.drain()
    reply = db.session.scalars(select(SmsReply)).one()
    assert reply.status == ReplyStatus.PENDING and reply.attempts == 1 and gateway.sent == []
    assert outbox.drain() == 0  # not due yet
    outbox.drain(utcnow() + timedelta(seconds=30))
    db.session.refresh(reply)
    assert reply.status == ReplyStatus.SENT and reply.attempts == 2
    assert len(gateway.sent) == 1 and case in gateway.sent[0]["textMessage"]["text"]


def test_a_lost_answer_is_retried_and_the_sms_goes_once(client, crew, js_encoder, gateway):  # noqa: F811
    _one_reply(client, js_encoder)
    gateway.answers = ["drop"]  # the gateway takes it, its answer never arrives
    outbox.drain()
    reply = db.session.scalars(select(SmsReply)).one()
    assert reply.status == ReplyStatus.PENDING and reply.last_status is None
    outbox.drain(utcnow() + timedelta(seconds=30))
    db.session.refresh(reply)
    assert reply.status == ReplyStatus.SENT
    assert len(gateway.requests) == 2 and gateway.requests[0]["id"] == gateway.requests[1]["id"]
    assert len(gateway.sent) == 1


def test_a_refused_reply_is_not_retried(client, crew, js_encoder, gateway):  # noqa: F811
    _one_reply(client, js_encoder)
    gateway.answers = [400]
    outbox.drain()
    outbox.drain(utcnow() + timedelta(hours=1))
    reply = db.session.scalars(select(SmsReply)).one()
    assert reply.status == ReplyStatus.FAILED and len(gateway.requests) == 1


# --- over HTTP both ways -------------------------------------------------------------

def test_the_gateway_posts_over_http_and_the_reply_goes_back(live_server, gateway, js_encoder):  # noqa: F811
    app = live_server.app
    app.config.update(SMS_WEBHOOK_SECRET=SECRET, SMS_GATEWAY_URL=gateway.url)
    with app.app_context():
        from api.auth.sessions import start_session

        person = make_person("crew", station=make_station(default_post=make_post()))
        _, session = start_session(person)
        key_id, key = session.id, session.sms_key
    rec = urgent()
    status, body = gateway.deliver(live_server.url, js_encoder.encode(rec, key_id, key))
    assert status == 200 and body["outcome"] == "created"
    with app.app_context():
        from api.push.worker import PushWorker

        PushWorker(app, send=lambda row, data: None).tick()  # the worker's tick sends replies
    assert len(gateway.sent) == 1 and body["case_number"] in gateway.sent[0]["textMessage"]["text"]


def test_the_administrator_reads_the_messages_with_flask_sms(client, crew, js_encoder, runner):  # noqa: F811
    post_sms(client, encode(js_encoder, urgent(), credentials(client)))
    post_sms(client, "QORGAU SOS NOLOC 123")
    out = runner.invoke(args=["sms", "inbound"]).output
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert "rejected" in lines[0] and "truncated" in lines[0]
    assert "created" in lines[1] and "QG-75-" in lines[1]
    rejected = runner.invoke(args=["sms", "inbound", "--outcome", "rejected"]).output
    assert "created" not in rejected and "truncated" in rejected


def test_the_same_sms_posted_many_times_at_once_is_one_incident_and_one_reply(
        live_server, gateway, js_encoder):  # noqa: F811
    """The gateway retrying and a resent SMS, all at the same moment, over HTTP to a
    threaded server: one incident, one accepted row, one reply."""
    from concurrent.futures import ThreadPoolExecutor

    app = live_server.app
    app.config.update(SMS_WEBHOOK_SECRET=SECRET, SMS_GATEWAY_URL=gateway.url)
    with app.app_context():
        from api.auth.sessions import start_session

        person = make_person("crew", station=make_station(default_post=make_post()))
        _, session = start_session(person)
        key_id, key = session.id, session.sms_key
    text = js_encoder.encode(urgent(), key_id, key)
    event_ids = [f"evt-{i}" for i in range(6)] + ["evt-same"] * 6
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda e: gateway.deliver(live_server.url, text, event_id=e),
                                event_ids))
    assert {status for status, _ in answers} == {200}
    # One is accepted ("created", or "merged" when another thread's store of the
    # same record won the race to the incident); the others are replays.
    outcomes = sorted(body["outcome"] for _, body in answers if not body["duplicate"])
    assert len([o for o in outcomes if o in ("created", "merged")]) == 1
    assert set(outcomes) <= {"created", "merged", "rejected"}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Incident)) == 1
        assert db.session.scalar(select(func.count()).select_from(SmsReply)) == 1
        accepted = db.session.scalars(select(SmsInbound).where(
            SmsInbound.outcome.in_(["created", "merged"]))).all()
        assert len(accepted) == 1
        outbox.drain()
    assert len(gateway.sent) == 1
