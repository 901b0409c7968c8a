"""Push subscriptions follow the devices a person still holds.

A revoked session (a lost or stolen phone) stops getting pushes; revoking all
of a person's devices leaves them no subscription at all; an expired session
does not count as revoked (an officer between 12-hour sign-ins still gets
alerts); and a new passkey is announced to the person's other devices, so one
enrolled by someone else (an administrator holding an invitation) is noticed.

Everything goes through the endpoints the PWA uses, and what reaches a phone is
read from the loopback push service (tests/push_service.py), which decrypts it
with that subscription's own keys.
"""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.auth.models import AuthSession, Passkey
from api.db import utcnow
from api.errors import Problem
from api.extensions import db
from api.push import messages
from api.push import service as push
from api.push.models import OutboxStatus, PushOutbox, PushSubscription
from tests.auth_helpers import ORIGIN, enrol, invite, sign_in
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import record, sync
from tests.webauthn_soft import SoftAuthenticator

pytest_plugins = ["tests.push_service"]

SUBS = "/api/v1/push/subscriptions"


def subscriptions(person) -> list[PushSubscription]:
    db.session.expire_all()
    return list(db.session.scalars(select(PushSubscription).where(
        PushSubscription.person_id == person.id).order_by(PushSubscription.id)))


def pending_for(person) -> list[PushOutbox]:
    return list(db.session.scalars(select(PushOutbox).where(
        PushOutbox.person_id == person.id, PushOutbox.status == OutboxStatus.PENDING)))


def kinds(push_service, sub) -> list[str]:
    return [r.payload["type"] for r in push_service.delivered(sub)]


@pytest.fixture
def crew_with_two_phones(push_app, app, subscribe, worker, push_service):
    """A crew member enrolled on two phones (two passkeys, two sessions), each
    subscribed to pushes from its own session; their station's post and manager.
    (Phone B's passkey was announced to phone A; that push is out of the way.)"""
    post = make_post(name="City Hospital No. 4")
    station = make_station(default_post=post)
    crew = make_person("crew", station=station)
    manager = make_person("manager", station=station)
    phones = {}
    for label in ("Phone A", "Phone B"):
        browser = app.test_client()
        response, authenticator = enrol(browser, invite(crew), label=label)
        assert response.status_code == 201, response.get_json()
        browser.environ_base["HTTP_X_CSRF_TOKEN"] = response.get_json()["csrf_token"]
        phones[label] = {"client": browser, "authenticator": authenticator,
                         "session_id": response.get_json()["session"]["id"],
                         "sub": subscribe(browser)}
    assert worker.tick() == 1
    push_service.received.clear()
    return {"crew": crew, "manager": manager, "post": post, "a": phones["Phone A"],
            "b": phones["Phone B"]}


# --- revocation ----------------------------------------------------------------


def test_each_subscription_names_the_session_that_made_it(crew_with_two_phones):
    w = crew_with_two_phones
    assert [s.session_id for s in subscriptions(w["crew"])] == \
        [w["a"]["session_id"], w["b"]["session_id"]]


def test_a_session_ended_from_my_devices_gets_no_more_pushes(crew_with_two_phones, worker,
                                                             push_service):
    """Phone B is stolen; from phone A the crew member ends its session."""
    w = crew_with_two_phones
    a, b = w["a"], w["b"]
    # Something was already queued for phone B: it must not leave either.
    sync(a["client"], record(kind="threat"))
    assert len(pending_for(w["crew"])) == 2

    response = a["client"].delete(f"/api/v1/auth/sessions/{b['session_id']}")
    assert response.status_code == 204
    assert b["client"].get("/api/v1/auth/me").status_code == 401
    assert [s.session_id for s in subscriptions(w["crew"])] == [a["session_id"]]

    sync(a["client"], record(kind="violence", police_needed=True))
    worker.tick()
    assert kinds(push_service, a["sub"]) == ["incident.received", "incident.received"]
    assert push_service.posts(b["sub"]) == []
    gone = db.session.scalars(select(PushOutbox).where(
        PushOutbox.person_id == w["crew"].id, PushOutbox.status == OutboxStatus.GONE)).all()
    assert [row.last_error for row in gone] == \
        ["subscription removed: its session was revoked"]


def test_a_revoked_passkey_takes_its_sessions_subscriptions_with_it(crew_with_two_phones,
                                                                    worker, push_service):
    w = crew_with_two_phones
    a, b = w["a"], w["b"]
    passkey_b = db.session.scalar(select(Passkey).where(Passkey.device_label == "Phone B"))
    assert a["client"].delete(f"/api/v1/auth/passkeys/{passkey_b.id}").status_code == 204
    assert sign_in(b["client"], b["authenticator"]).status_code == 401
    assert [s.session_id for s in subscriptions(w["crew"])] == [a["session_id"]]

    sync(a["client"], record(kind="threat"))
    assert worker.tick() == 1
    assert kinds(push_service, a["sub"]) == ["incident.received"]
    assert push_service.posts(b["sub"]) == []


def test_flagged_passkey_revoked_by_the_administrators_command(crew_with_two_phones, runner,
                                                               worker, push_service):
    """`flask people review-passkey --revoke` (a suspected clone) ends the subscription too."""
    w = crew_with_two_phones
    passkey_b = db.session.scalar(select(Passkey).where(Passkey.device_label == "Phone B"))
    passkey_b.flagged_at = utcnow()
    db.session.commit()
    result = runner.invoke(args=["people", "review-passkey", str(passkey_b.id), "--revoke"])
    assert result.exit_code == 0, result.output
    assert [s.session_id for s in subscriptions(w["crew"])] == [w["a"]["session_id"]]


def test_lost_phone_revoke_all_devices_leaves_no_subscription_and_queues_nothing(
        crew_with_two_phones, client, login, worker, push_service):
    w = crew_with_two_phones
    crew, a, b = w["crew"], w["a"], w["b"]
    incident = sync(a["client"], record(kind="violence", police_needed=True)
                    )["results"][0]["incident"]
    # A subscription from before subscriptions named their session.
    legacy = push_service.subscribe()
    db.session.add(PushSubscription(person_id=crew.id, session_id=None, **{
        "endpoint": legacy.endpoint, "p256dh": legacy.p256dh,
        "auth": legacy.to_json()["keys"]["auth"]}))
    db.session.commit()

    login(w["manager"])
    response = client.post(f"/api/v1/people/{crew.id}/revoke-devices")
    assert response.status_code == 200
    assert response.get_json() == {"passkeys": 2, "sessions": 2, "invitations": 0}
    assert subscriptions(crew) == []
    assert pending_for(crew) == []  # the confirmation queued before: settled, never sent

    # The post acknowledges the case afterwards: the crew member would be told.
    officer = make_person("police", post=w["post"])
    officer_client = client.application.test_client()
    login(officer, on=officer_client)
    assert officer_client.post(
        f"/api/v1/police/incidents/{incident['id']}/acknowledge").status_code == 200
    assert pending_for(crew) == []
    worker.tick()
    for sub in (a["sub"], b["sub"], legacy):
        assert push_service.posts(sub) == []


def test_deactivation_removes_every_subscription(crew_with_two_phones, runner):
    crew = crew_with_two_phones["crew"]
    result = runner.invoke(args=["people", "deactivate", str(crew.id)])
    assert result.exit_code == 0, result.output
    assert subscriptions(crew) == []


def test_signing_out_still_removes_the_subscription(crew_with_two_phones):
    w = crew_with_two_phones
    a, b = w["a"], w["b"]
    # The PWA's sign-out: DELETE the subscription, then end the session.
    assert a["client"].delete(SUBS, json={"endpoint": a["sub"].endpoint}).status_code == 204
    assert a["client"].post("/api/v1/auth/logout").status_code == 204
    assert [s.endpoint for s in subscriptions(w["crew"])] == [b["sub"].endpoint]
    # Had the DELETE not got through (offline, timed out), sign-out alone does it.
    assert b["client"].post("/api/v1/auth/logout").status_code == 204
    assert subscriptions(w["crew"]) == []


def test_resubscribing_from_a_new_session_moves_the_subscription_to_it(
        push_app, client, login, subscribe):
    person = make_person("police")
    old = login(person)
    sub = subscribe(client)
    new = login(person)  # the same browser, signed in again
    assert client.post(SUBS, json=sub.to_json()).status_code == 200
    [row] = subscriptions(person)
    assert row.session_id == new.id
    # Ending the old session now leaves the browser subscribed.
    assert client.delete(f"/api/v1/auth/sessions/{old.id}").status_code == 204
    assert [s.id for s in subscriptions(person)] == [row.id]


def test_signing_in_again_on_the_same_browser_keeps_its_subscription(crew_with_two_phones):
    w = crew_with_two_phones
    a = w["a"]
    # A passkey sign-in while phone A's session is still live replaces that session.
    response = sign_in(a["client"], a["authenticator"])
    assert response.status_code == 200
    new_id = response.get_json()["session"]["id"]
    assert new_id != a["session_id"]
    assert db.session.get(AuthSession, a["session_id"]).revoked_at is not None
    assert [s.session_id for s in subscriptions(w["crew"])] == [new_id, w["b"]["session_id"]]


def test_someone_else_signing_in_on_the_browser_ends_the_old_persons_subscription(
        crew_with_two_phones):
    w = crew_with_two_phones
    a = w["a"]
    colleague = make_person("crew", station=w["crew"].station)
    token = invite(colleague)
    response, _ = enrol(a["client"], token)
    assert response.status_code == 201
    assert [s.session_id for s in subscriptions(w["crew"])] == [w["b"]["session_id"]]


def test_a_subscription_from_a_session_revoked_meanwhile_is_refused(push_app, client, login,
                                                                    push_service):
    person = make_person("crew")
    session = login(person)
    sub = push_service.subscribe()
    # The request was let in; the session is revoked before the subscription is saved.
    session.revoked_at = utcnow()
    db.session.commit()
    with pytest.raises(Problem) as raised:
        push.subscribe(person, sub.to_json(), session_id=session.id)
    assert raised.value.status == 401
    assert subscriptions(person) == []


def test_an_officer_whose_session_merely_expired_still_gets_alerts(push_app, client, login,
                                                                   subscribe, worker,
                                                                   push_service):
    post = make_post(name="City Hospital No. 1")
    station = make_station(default_post=post)
    officer = make_person("police", post=post, language="kk")
    officer_client = client.application.test_client()
    session = login(officer, on=officer_client)
    sub = subscribe(officer_client)
    # Twelve hours later the officer's session has lapsed (not revoked).
    session.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert officer_client.get("/api/v1/auth/me").status_code == 401

    crew = make_person("crew", station=station)
    login(crew)
    sync(client, record(kind="violence", police_needed=True))
    worker.tick()
    [alert] = push_service.delivered(sub)
    assert alert.payload["type"] == "police.alert" and alert.payload["lang"] == "kk"
    assert [s.session_id for s in subscriptions(officer)] == [session.id]


# --- a new passkey is announced ------------------------------------------------


@pytest.mark.parametrize(("role", "language", "title", "body"), [
    ("crew", "en", "New passkey on your Qorgau account",
     "“Intruder's laptop” was added on {when}. If this was not you, tell your station "
     "manager."),
    ("manager", "ru", "Новый ключ доступа в вашей учётной записи Qorgau",
     "«Intruder's laptop» добавлен {when}. Если это были не вы, сообщите своему "
     "руководителю."),
    ("police", "kk", "Qorgau тіркелгіңізге жаңа кіру кілті қосылды",
     "«Intruder's laptop» {when} қосылды. Егер бұл сіз болмасаңыз, басшыңызға хабарлаңыз."),
], ids=["crew-en", "manager-ru", "police-kk"])
def test_an_administrator_enrolling_a_passkey_as_someone_is_announced_to_their_devices(
        push_app, app, client, login, subscribe, worker, push_service, role, language,
        title, body):
    victim = make_person(role, language=language)
    phones = []
    for label in ("Own phone", "Own tablet"):
        browser = app.test_client()
        response, _ = enrol(browser, invite(victim), label=label)
        assert response.status_code == 201
        browser.environ_base["HTTP_X_CSRF_TOKEN"] = response.get_json()["csrf_token"]
        phones.append(subscribe(browser))
    assert worker.tick() == 1  # the tablet's passkey was announced to the phone
    push_service.received.clear()

    # The administrator invites the victim and enrols their own passkey with it.
    login(make_person("admin"))
    url = client.post(f"/api/v1/people/{victim.id}/invitations").get_json()["url"]
    intruder = app.test_client()
    response, _ = enrol(intruder, url.rsplit("/", 1)[1], label="Intruder's laptop")
    assert response.status_code == 201

    assert worker.tick() == 2
    passkey = db.session.scalar(select(Passkey).where(
        Passkey.device_label == "Intruder's laptop"))
    when = messages.local_time(passkey.created_at)
    for phone in phones:
        [received] = push_service.delivered(phone)
        p = received.payload
        assert p["type"] == "account.passkey_added" and p["lang"] == language
        assert p["title"] == title
        assert p["body"] == body.format(when=when)
        assert p["url"] == "/#/account"
        assert p["tag"] == f"passkey-{passkey.id}"
        assert p["require_interaction"] is True
        assert "incident_id" not in p and "incident" not in p
        assert received.urgency == "high" and received.topic is None


def test_the_device_adding_a_passkey_is_not_told_its_others_are(crew_with_two_phones,
                                                                 worker, push_service):
    w = crew_with_two_phones
    worker.tick()
    push_service.received.clear()
    a = w["a"]
    options = a["client"].post("/api/v1/auth/passkeys/options").get_json()
    added = a["client"].post("/api/v1/auth/passkeys/verify", json={
        "credential": SoftAuthenticator(ORIGIN).create(options), "device_label": ""})
    assert added.status_code == 201, added.get_json()
    assert worker.tick() == 1
    assert push_service.posts(a["sub"]) == []
    [received] = push_service.delivered(w["b"]["sub"])
    assert received.payload["body"].startswith("A passkey with no name was added on ")


def test_a_refused_registration_tells_nobody(push_app, app, client, subscribe, worker,
                                             push_service):
    person = make_person("crew")
    response, _ = enrol(client, invite(person))
    assert response.status_code == 201
    client.environ_base["HTTP_X_CSRF_TOKEN"] = response.get_json()["csrf_token"]
    sub = subscribe(client)
    # Someone with an invitation, on a look-alike site: the passkey is refused.
    token = invite(person)
    intruder = app.test_client()
    options = intruder.post("/api/v1/auth/register/options",
                            json={"invitation": token}).get_json()
    credential = SoftAuthenticator(ORIGIN).create(options, origin="https://qorgau.example.com")
    refused = intruder.post("/api/v1/auth/register/verify", json={
        "invitation": token, "credential": credential, "device_label": "x"})
    assert refused.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(PushOutbox)) == 0
    assert worker.tick() == 0 and push_service.posts(sub) == []
