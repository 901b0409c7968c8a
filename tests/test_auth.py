"""Passkey enrolment and sign-in with real WebAuthn responses (tests/webauthn_soft.py)."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from api.auth import service as auth
from api.auth.models import AuthSession, Challenge, Invitation, Passkey
from api.db import utcnow
from api.extensions import db
from tests.auth_helpers import ORIGIN, cookie_header, csrf, enrol, invite, sign_in
from tests.factories import make_person
from tests.webauthn_soft import SoftAuthenticator, b64url, b64url_decode

PROBLEM = "application/problem+json"


# --- enrolment -----------------------------------------------------------------

def test_registration_options_ask_for_a_discoverable_verified_passkey(client):
    person = make_person("crew", name="Айгерим Сапарова")
    options = client.post("/api/v1/auth/register/options",
                          json={"invitation": invite(person)}).get_json()
    assert options["rp"] == {"id": "localhost", "name": "Qorgau"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert options["user"]["displayName"] == "Айгерим Сапарова"
    handle = b64url_decode(options["user"]["id"])
    assert handle == person.webauthn_user_handle and len(handle) == 32
    assert handle != str(person.id).encode()
    # The challenge is kept on the server for five minutes.
    stored = db.session.scalar(select(Challenge).where(
        Challenge.challenge == b64url_decode(options["challenge"])))
    assert stored.purpose == "register" and stored.used_at is None
    assert timedelta(minutes=4) < stored.expires_at - utcnow() <= timedelta(minutes=5)


def test_enrolment_registers_the_passkey_and_signs_in(client):
    person = make_person("crew")
    response, phone = enrol(client, invite(person), label="Samsung A14")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["person"]["id"] == person.id and body["demo"] is False
    assert body["person"]["station"]["code"] == person.station.code
    header = cookie_header(response)
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header  # plain-HTTP localhost only

    passkey = db.session.scalar(select(Passkey).where(Passkey.person_id == person.id))
    assert passkey.credential_id == phone.credentials[0].credential_id
    assert passkey.public_key == phone.credentials[0].cose_public_key()
    assert passkey.sign_count == 0
    assert passkey.transports == ["internal", "hybrid"]
    assert passkey.aaguid == "00112233-4455-6677-8899-aabbccddeeff"
    assert passkey.backed_up is True
    assert passkey.device_label == "Samsung A14"
    assert passkey.created_at and passkey.last_used_at is None

    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.get_json()["person"]["id"] == person.id


def test_session_cookie_is_secure_off_localhost(app):
    person = make_person("crew")
    client = app.test_client()
    token = invite(person)
    options = client.post("/api/v1/auth/register/options", json={"invitation": token},
                          base_url="https://qorgau.example.kz").get_json()
    credential = SoftAuthenticator(ORIGIN).create(options)
    response = client.post("/api/v1/auth/register/verify",
                           json={"invitation": token, "credential": credential},
                           base_url="https://qorgau.example.kz")
    assert response.status_code == 201
    assert "Secure" in cookie_header(response)


def test_a_used_invitation_is_refused(client):
    person = make_person("crew")
    token = invite(person)
    assert enrol(client, token)[0].status_code == 201
    again = client.post("/api/v1/auth/register/options", json={"invitation": token})
    assert again.status_code == 410
    assert again.mimetype == PROBLEM
    assert again.get_json()["type"].endswith("invitation-used")
    assert again.get_json()["errors"][0]["field"] == "invitation"


def test_an_invitation_cannot_be_used_twice_even_with_options_fetched_before(client):
    person = make_person("crew")
    token = invite(person)
    first = client.post("/api/v1/auth/register/options", json={"invitation": token}).get_json()
    second = client.post("/api/v1/auth/register/options", json={"invitation": token}).get_json()
    phone = SoftAuthenticator(ORIGIN)
    ok = client.post("/api/v1/auth/register/verify",
                     json={"invitation": token, "credential": phone.create(first)})
    assert ok.status_code == 201
    late = client.post("/api/v1/auth/register/verify",
                       json={"invitation": token, "credential": phone.create(second)})
    assert late.status_code == 410
    assert db.session.scalar(select(db.func.count()).select_from(Passkey)) == 1


def test_an_expired_invitation_is_refused(client):
    person = make_person("crew")
    token, invitation = auth.create_invitation(person)
    invitation.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.post("/api/v1/auth/register/options", json={"invitation": token})
    assert response.status_code == 410
    assert response.get_json()["type"].endswith("invitation-expired")


def test_an_unknown_invitation_is_404_naming_the_field(client):
    response = client.post("/api/v1/auth/register/options",
                           json={"invitation": "x" * 43})
    assert response.status_code == 404
    assert response.get_json()["errors"] == [
        {"field": "invitation", "message": "No such invitation."}]


def test_a_new_invitation_replaces_the_old_one(client):
    person = make_person("crew")
    old = invite(person)
    new = invite(person)
    assert client.post("/api/v1/auth/register/options",
                       json={"invitation": old}).status_code == 410
    assert enrol(client, new)[0].status_code == 201


def test_a_replayed_registration_challenge_is_refused(client):
    person = make_person("crew")
    token = invite(person)
    options = client.post("/api/v1/auth/register/options", json={"invitation": token}).get_json()
    phone = SoftAuthenticator(ORIGIN)
    bad = phone.create(options, origin="https://evil.example")
    assert client.post("/api/v1/auth/register/verify",
                       json={"invitation": token, "credential": bad}).status_code == 400
    # The failed attempt used the challenge up: a good response to it is refused too.
    replay = client.post("/api/v1/auth/register/verify",
                         json={"invitation": token, "credential": phone.create(options)})
    assert replay.status_code == 400
    assert replay.get_json()["type"].endswith("challenge")
    assert db.session.scalar(select(Invitation.used_at)) is None


def test_a_wrong_origin_is_refused(client):
    person = make_person("crew")
    response, _ = enrol(client, invite(person), origin="https://qorgau.evil.example")
    assert response.status_code == 400
    body = response.get_json()
    assert body["errors"][0]["field"] == "credential"
    assert "origin" in body["detail"]
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_challenge_for_another_invitation_is_refused(client):
    alice, bob = make_person("crew"), make_person("crew")
    alice_token, bob_token = invite(alice), invite(bob)
    options = client.post("/api/v1/auth/register/options",
                          json={"invitation": alice_token}).get_json()
    credential = SoftAuthenticator(ORIGIN).create(options)
    response = client.post("/api/v1/auth/register/verify",
                           json={"invitation": bob_token, "credential": credential})
    assert response.status_code == 400
    assert db.session.scalar(select(Passkey)) is None


def test_an_expired_challenge_is_refused(client):
    person = make_person("crew")
    token = invite(person)
    options = client.post("/api/v1/auth/register/options", json={"invitation": token}).get_json()
    db.session.execute(db.update(Challenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    credential = SoftAuthenticator(ORIGIN).create(options)
    response = client.post("/api/v1/auth/register/verify",
                           json={"invitation": token, "credential": credential})
    assert response.status_code == 400
    assert response.get_json()["type"].endswith("challenge")


def test_registration_without_user_verification_is_refused(client):
    person = make_person("crew")
    phone = SoftAuthenticator(ORIGIN, user_verifying=False)
    response, _ = enrol(client, invite(person), phone=phone)
    assert response.status_code == 400
    assert "verif" in response.get_json()["detail"].lower()


@pytest.mark.parametrize("credential", [
    {}, {"response": {}}, {"response": {"clientDataJSON": "!!!"}},
    {"response": {"clientDataJSON": b64url(b"not json")}},
    {"response": {"clientDataJSON": b64url(b'{"challenge": 5}')}},
    {"id": 1, "rawId": [], "response": {"clientDataJSON": b64url(b'{"challenge": "AAAA"}')}},
])
def test_malformed_credentials_are_400_never_500(client, credential):
    token = invite(make_person("crew"))
    for path, body in (("/api/v1/auth/register/verify", {"invitation": token,
                                                         "credential": credential}),
                       ("/api/v1/auth/login/verify", {"credential": credential})):
        response = client.post(path, json=body)
        assert response.status_code == 400, (path, response.get_json())
        assert response.get_json()["errors"][0]["field"] == "credential"


def test_garbage_inside_a_live_challenge_is_400_never_500(client):
    person = make_person("crew")
    token = invite(person)
    options = client.post("/api/v1/auth/register/options", json={"invitation": token}).get_json()
    credential = SoftAuthenticator(ORIGIN).create(options)
    credential["response"]["attestationObject"] = b64url(b"\xff\x00garbage")
    response = client.post("/api/v1/auth/register/verify",
                           json={"invitation": token, "credential": credential})
    assert response.status_code == 400


def test_bodies_are_validated_per_field(client):
    response = client.post("/api/v1/auth/register/verify",
                           json={"invitation": "short", "credential": [1]})
    assert response.status_code == 422
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields == {"invitation", "credential"}
    assert client.post("/api/v1/auth/login/verify", data="x",
                       content_type="text/plain").status_code == 415


def test_a_foreign_origin_header_is_refused_before_a_session_exists(client):
    response = client.post("/api/v1/auth/login/options", json={},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert client.post("/api/v1/auth/login/options", json={},
                       headers={"Origin": ORIGIN}).status_code == 200


# --- sign-in -----------------------------------------------------------------------

def enrolled(client, role="crew", **kwargs):
    person = make_person(role, **kwargs)
    response, phone = enrol(client, invite(person))
    assert response.status_code == 201
    client.post("/api/v1/auth/logout", headers=csrf(response))
    return person, phone


def test_sign_in_with_a_discoverable_passkey(client):
    person, phone = enrolled(client)
    assert client.get("/api/v1/auth/me").status_code == 401
    options = client.post("/api/v1/auth/login/options").get_json()  # no body at all is fine
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    assert options["rpId"] == "localhost"
    response = client.post("/api/v1/auth/login/verify",
                           json={"credential": phone.get(options)})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["person"]["id"] == person.id
    assert client.get("/api/v1/auth/me").status_code == 200
    passkey = db.session.scalar(select(Passkey))
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    session = db.session.scalar(select(AuthSession).where(AuthSession.revoked_at.is_(None)))
    assert session.passkey_id == passkey.id


def test_a_replayed_sign_in_is_refused(client):
    _, phone = enrolled(client)
    options = client.post("/api/v1/auth/login/options", json={}).get_json()
    credential = phone.get(options)
    assert client.post("/api/v1/auth/login/verify",
                       json={"credential": credential}).status_code == 200
    replay = client.post("/api/v1/auth/login/verify", json={"credential": credential})
    assert replay.status_code == 400
    assert replay.get_json()["type"].endswith("challenge")


def test_a_registration_challenge_cannot_sign_in(client):
    person, phone = enrolled(client)
    options = client.post("/api/v1/auth/register/options",
                          json={"invitation": invite(person)}).get_json()
    credential = phone.get({"rpId": "localhost", "challenge": options["challenge"]})
    assert client.post("/api/v1/auth/login/verify",
                       json={"credential": credential}).status_code == 400


def test_sign_in_from_a_wrong_origin_is_refused(client):
    _, phone = enrolled(client)
    response = sign_in(client, phone, origin="http://localhost:5001")
    assert response.status_code == 400
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_forged_signature_is_refused_and_flags_nothing(client):
    _, phone = enrolled(client)
    options = client.post("/api/v1/auth/login/options", json={}).get_json()
    credential = phone.get(options, sign_count=0)  # would look like a regression if trusted
    credential["response"]["signature"] = b64url(b"\x30\x06\x02\x01\x01\x02\x01\x01")
    assert client.post("/api/v1/auth/login/verify",
                       json={"credential": credential}).status_code == 400
    assert db.session.scalar(select(Passkey.flagged_at)) is None


def test_a_sign_count_regression_refuses_and_flags_the_passkey(client):
    _, phone = enrolled(client)
    assert sign_in(client, phone, sign_count=5).status_code == 200
    client.post("/api/v1/auth/logout",
                headers={"X-CSRF-Token": client.get("/api/v1/auth/me").get_json()["csrf_token"]})
    cloned = sign_in(client, phone, sign_count=3)
    assert cloned.status_code == 403
    assert cloned.get_json()["type"].endswith("passkey-flagged")
    passkey = db.session.scalar(select(Passkey))
    assert passkey.flagged_at is not None and "5 to 3" in passkey.flag_reason
    # Held for review: even a higher count is refused now.
    assert sign_in(client, phone, sign_count=9).status_code == 403


def test_an_administrator_reviews_a_flagged_passkey(client, runner):
    _, phone = enrolled(client)
    assert sign_in(client, phone, sign_count=5).status_code == 200
    client.post("/api/v1/auth/logout",
                headers={"X-CSRF-Token": client.get("/api/v1/auth/me").get_json()["csrf_token"]})
    assert sign_in(client, phone, sign_count=2).status_code == 403
    passkey = db.session.scalar(select(Passkey))

    listed = runner.invoke(args=["people", "flagged-passkeys"])
    assert f"passkey {passkey.id:>5}" in listed.output and "5 to 2" in listed.output
    assert runner.invoke(args=["people", "review-passkey", str(passkey.id)]).exit_code == 2

    cleared = runner.invoke(args=["people", "review-passkey", str(passkey.id), "--clear"])
    assert cleared.exit_code == 0, cleared.output
    # The person's own phone, whose counter is behind the stored one, signs in again.
    assert sign_in(client, phone, sign_count=3).status_code == 200
    assert "0 passkey(s) held for review." in runner.invoke(
        args=["people", "flagged-passkeys"]).output
    again = runner.invoke(args=["people", "review-passkey", str(passkey.id), "--revoke"])
    assert again.exit_code == 1 and "is held for review" in again.output


def test_a_flagged_passkey_judged_a_clone_is_revoked(client, runner):
    _, phone = enrolled(client)
    assert sign_in(client, phone, sign_count=5).status_code == 200
    assert sign_in(client, phone, sign_count=1).status_code == 403
    passkey = db.session.scalar(select(Passkey))
    revoked = runner.invoke(args=["people", "review-passkey", str(passkey.id), "--revoke"])
    assert revoked.exit_code == 0 and "revoked; 1 session(s) ended" in revoked.output
    assert sign_in(client, phone, sign_count=9).status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_revoked_passkey_cannot_sign_in(client):
    _, phone = enrolled(client)
    auth.revoke_passkey(db.session.scalar(select(Passkey)))
    response = sign_in(client, phone)
    assert response.status_code == 401
    assert response.get_json()["type"].endswith("unknown-passkey")


def test_a_passkey_presented_with_another_users_handle_is_refused(client):
    _, phone = enrolled(client)
    phone.credentials[0].user_handle = b"someone else"
    assert sign_in(client, phone).status_code == 401


def test_deactivation_ends_sessions_and_revokes_passkeys(client, runner):
    person = make_person("crew")
    _, phone = enrol(client, invite(person))
    assert client.get("/api/v1/auth/me").status_code == 200
    result = runner.invoke(args=["people", "deactivate", str(person.id)])
    assert result.exit_code == 0
    assert client.get("/api/v1/auth/me").status_code == 401
    assert db.session.scalar(select(Passkey.revoked_at)) is not None
    assert sign_in(client, phone).status_code == 401


# --- sessions, CSRF, sign-out, my devices ------------------------------------------------

def test_sign_out_needs_the_csrf_token_and_ends_the_session(client):
    response, _ = enrol(client, invite(make_person("crew")))
    refused = client.post("/api/v1/auth/logout")
    assert refused.status_code == 403 and refused.get_json()["type"].endswith("csrf")
    assert client.post("/api/v1/auth/logout",
                       headers={"X-CSRF-Token": "wrong"}).status_code == 403
    out = client.post("/api/v1/auth/logout", headers=csrf(response))
    assert out.status_code == 204
    assert "qorgau_session=;" in cookie_header(out)
    assert client.get("/api/v1/auth/me").status_code == 401
    assert db.session.scalar(select(AuthSession.revoked_at)) is not None


def test_crew_sessions_last_30_days_and_slide_staff_12_hours(client, login):
    crew = make_person("crew")
    crew_session = login(crew)
    assert timedelta(days=29, hours=23) < crew_session.expires_at - utcnow() <= \
        timedelta(days=30)
    crew_session.last_seen_at = utcnow() - timedelta(days=10)
    crew_session.expires_at = utcnow() + timedelta(days=20)
    db.session.commit()
    assert client.get("/api/v1/auth/me").status_code == 200
    db.session.refresh(crew_session)
    assert crew_session.expires_at - utcnow() > timedelta(days=29)

    for role in ("manager", "police", "admin"):
        staff_client = client.application.test_client()
        session = login(make_person(role), on=staff_client)
        assert timedelta(hours=11, minutes=59) < session.expires_at - utcnow() <= \
            timedelta(hours=12)
        session.last_seen_at = utcnow() - timedelta(hours=2)
        db.session.commit()
        expires = session.expires_at
        assert staff_client.get("/api/v1/auth/me").status_code == 200
        db.session.refresh(session)
        assert session.expires_at == expires  # staff sessions do not slide


def test_an_expired_session_is_401(client, login):
    session = login(make_person("manager"))
    session.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/auth/me").status_code == 401


def test_my_devices_lists_and_revokes_my_own_passkeys_and_sessions(app, client):
    person = make_person("crew")
    response, phone = enrol(client, invite(person), label="Phone A")
    headers = csrf(response)
    # A second browser signs in with the same passkey.
    other = app.test_client()
    assert sign_in(other, phone).status_code == 200

    devices = client.get("/api/v1/auth/devices").get_json()
    assert [p["device_label"] for p in devices["passkeys"]] == ["Phone A"]
    assert devices["passkeys"][0]["current"] is True
    assert len(devices["sessions"]) == 2
    current = [s for s in devices["sessions"] if s["current"]]
    other_session = next(s for s in devices["sessions"] if not s["current"])
    assert len(current) == 1

    assert client.delete(f"/api/v1/auth/sessions/{other_session['id']}").status_code == 403
    assert client.delete(f"/api/v1/auth/sessions/{other_session['id']}",
                         headers=headers).status_code == 204
    assert other.get("/api/v1/auth/me").status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 200

    # Someone else's session or passkey is simply not found.
    stranger = make_person("crew")
    enrol(app.test_client(), invite(stranger))
    theirs = db.session.scalar(select(Passkey).where(Passkey.person_id == stranger.id))
    assert client.delete(f"/api/v1/auth/passkeys/{theirs.id}",
                         headers=headers).status_code == 404
    assert theirs.revoked_at is None

    # Revoking my own (current) passkey ends this session too.
    mine = devices["passkeys"][0]["id"]
    gone = client.delete(f"/api/v1/auth/passkeys/{mine}", headers=headers)
    assert gone.status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401
    assert sign_in(client, phone).status_code == 401


def test_a_second_passkey_can_be_added_while_signed_in(app, client):
    person = make_person("crew")
    response, old_phone = enrol(client, invite(person), label="Old phone")
    headers = csrf(response)
    new_phone = SoftAuthenticator(ORIGIN)
    options = client.post("/api/v1/auth/passkeys/options", headers=headers).get_json()
    assert [c["id"] for c in options["excludeCredentials"]] == \
        [b64url(old_phone.credentials[0].credential_id)]
    added = client.post("/api/v1/auth/passkeys/verify", headers=headers, json={
        "credential": new_phone.create(options), "device_label": "New phone"})
    assert added.status_code == 201, added.get_json()
    assert sign_in(app.test_client(), new_phone).status_code == 200
    labels = [p["device_label"] for p in client.get("/api/v1/auth/devices").get_json()["passkeys"]]
    assert labels == ["Old phone", "New phone"]


def test_a_passkey_challenge_issued_to_someone_else_is_refused(app, client, login):
    alice, bob = make_person("crew"), make_person("crew")
    alice_client, bob_client = app.test_client(), app.test_client()
    login(alice, on=alice_client)
    login(bob, on=bob_client)
    options = alice_client.post("/api/v1/auth/passkeys/options").get_json()
    credential = SoftAuthenticator(ORIGIN).create(options)
    response = bob_client.post("/api/v1/auth/passkeys/verify", json={"credential": credential})
    assert response.status_code == 400
    assert db.session.scalar(select(Passkey)) is None


def test_every_device_lost_a_fresh_invitation_enrols_a_new_phone(client):
    person = make_person("crew")
    _, lost = enrol(client, invite(person))
    auth.revoke_all_devices(person.id)
    assert client.get("/api/v1/auth/me").status_code == 401
    response, new_phone = enrol(client, invite(person))
    assert response.status_code == 201
    assert sign_in(client, lost).status_code == 401
    assert sign_in(client, new_phone).status_code == 200


# --- invitations and revocation by managers and administrators ---------------------------

def test_a_manager_invites_crew_of_their_own_stations_only(app, client, login):
    app.config["BASE_URL"] = "https://qorgau.example.kz"
    manager = make_person("manager")
    own = make_person("crew", station=manager.managed_stations[0])
    elsewhere = make_person("crew")
    login(manager)
    response = client.post(f"/api/v1/people/{own.id}/invitations", json={"hours": 24})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["url"].startswith("https://qorgau.example.kz/#/enrol/")
    assert body["qr_svg"].startswith("<svg")
    assert timedelta(hours=23) < (
        db.session.scalar(select(Invitation.expires_at)) - utcnow()) <= timedelta(hours=24)
    invitation = db.session.scalar(select(Invitation))
    assert invitation.created_by_id == manager.id
    # The link works, once.
    token = body["url"].rsplit("/", 1)[1]
    assert enrol(app.test_client(), token)[0].status_code == 201

    assert client.post(f"/api/v1/people/{elsewhere.id}/invitations").status_code == 403
    other_manager = make_person("manager", station=manager.managed_stations[0])
    assert client.post(f"/api/v1/people/{other_manager.id}/invitations").status_code == 403
    assert client.post("/api/v1/people/999999/invitations").status_code == 404
    bad = client.post(f"/api/v1/people/{own.id}/invitations", json={"hours": 0})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "hours"

    listed = client.get("/api/v1/people").get_json()["people"]
    assert [p["id"] for p in listed] == [own.id]
    assert listed[0]["passkeys"] == 1


@pytest.mark.parametrize("role", ["crew", "police"])
def test_crew_and_police_cannot_invite_or_revoke(client, login, role):
    target = make_person("crew")
    login(make_person(role))
    assert client.post(f"/api/v1/people/{target.id}/invitations").status_code == 403
    assert client.post(f"/api/v1/people/{target.id}/revoke-devices").status_code == 403
    assert client.get("/api/v1/people").status_code == 403


def test_an_administrator_invites_anyone(client, login):
    login(make_person("admin"))
    for role in ("crew", "manager", "police", "admin"):
        target = make_person(role)
        assert client.post(f"/api/v1/people/{target.id}/invitations").status_code == 201


def test_a_deactivated_person_cannot_be_invited(client, login):
    target = make_person("crew")
    target.active = False
    db.session.commit()
    login(make_person("admin"))
    assert client.post(f"/api/v1/people/{target.id}/invitations").status_code == 409


def test_a_manager_revokes_a_crew_members_devices_lost_phone(app, client, login):
    manager = make_person("manager")
    crew = make_person("crew", station=manager.managed_stations[0])
    crew_client = app.test_client()
    _, phone = enrol(crew_client, invite(crew))
    pending = invite(crew)
    login(manager)
    response = client.post(f"/api/v1/people/{crew.id}/revoke-devices")
    assert response.status_code == 200
    assert response.get_json() == {"passkeys": 1, "sessions": 1, "invitations": 1}
    assert crew_client.get("/api/v1/auth/me").status_code == 401
    assert sign_in(crew_client, phone).status_code == 401
    assert crew_client.post("/api/v1/auth/register/options",
                            json={"invitation": pending}).status_code == 410
    stranger = make_person("crew")
    assert client.post(f"/api/v1/people/{stranger.id}/revoke-devices").status_code == 403


def test_flask_people_invite_prints_link_and_qr_and_writes_png(app, runner, tmp_path):
    app.config["BASE_URL"] = "https://qorgau.example.kz/"
    app.instance_path = str(tmp_path)  # not the checkout's instance folder
    person = make_person("crew", name="Ольга Ким")
    result = runner.invoke(args=["people", "invite", str(person.id), "--hours", "48"])
    assert result.exit_code == 0, result.output
    assert "Ольга Ким" in result.output
    url = next(line for line in result.output.splitlines() if "#/enrol/" in line)
    assert url.startswith("https://qorgau.example.kz/#/enrol/")
    assert "▀" in result.output or "█" in result.output  # the QR code in the terminal
    png = app.instance_path + f"/invitations/{person.id}.png"
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    invitation = db.session.scalar(select(Invitation))
    assert timedelta(hours=47) < invitation.expires_at - utcnow() <= timedelta(hours=48)
    token = url.rsplit("/", 1)[1]
    assert invitation.token_hash == auth._hash(token)  # only the hash is stored

    assert runner.invoke(args=["people", "invite", "999999"]).exit_code == 1
    assert runner.invoke(args=["people", "invite", str(person.id), "--hours", "0"]
                         ).exit_code != 0


# --- rate limits ------------------------------------------------------------------------

def test_sign_in_is_rate_limited_per_address_with_retry_after(app, client):
    app.config["AUTH_RATE_LIMIT_PER_ADDRESS"] = [3, 60]
    for _ in range(3):
        assert client.post("/api/v1/auth/login/options", json={}).status_code == 200
    limited = client.post("/api/v1/auth/login/options", json={})
    assert limited.status_code == 429
    assert limited.mimetype == PROBLEM
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another address has its own window.
    other = client.post("/api/v1/auth/login/options", json={},
                        environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200


def test_enrolment_is_rate_limited_per_invitation_across_addresses(app, client):
    app.config["AUTH_RATE_LIMIT_PER_INVITATION"] = [2, 900]
    token = invite(make_person("crew"))
    for n in range(2):
        assert client.post("/api/v1/auth/register/options", json={"invitation": token},
                           environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}).status_code == 200
    limited = client.post("/api/v1/auth/register/options", json={"invitation": token},
                          environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    # Guessing tokens is limited by address even when every guess is new.
    app.config["AUTH_RATE_LIMIT_PER_ADDRESS"] = [2, 60]
    statuses = [client.post("/api/v1/auth/register/options",
                            json={"invitation": f"guess-{n:020d}"},
                            environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code
                for n in range(3)]
    assert statuses == [404, 404, 429]
