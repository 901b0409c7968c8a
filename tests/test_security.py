"""Security review, one test per claim (docs/threat-model.md names them).

Sessions (fixation, sign-out), CSRF on every state-changing endpoint, Origin on
the sign-in endpoints, guessing other people's incident ids, enumerating
invitations, hostile bodies (deep, huge, odd numbers), Unicode and NUL in
names and notes, spreadsheet formulas in the export, and no secret in the logs.
"""

import base64
import csv
import io
import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from api.auth import service as auth
from api.auth.access import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE
from api.auth.models import AuthSession, Invitation
from api.auth.sessions import start_session, token_hash
from api.db import utcnow
from api.extensions import db
from api.incidents.models import Incident
from api.orgs.models import Person, Role
from tests.auth_helpers import ORIGIN, cookie_header, csrf, enrol, invite, sign_in
from tests.endpoints import PUBLIC, api_endpoints
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import batch, record
from tests.webauthn_soft import SoftAuthenticator

# The push_app, push_service and worker fixtures.
pytest_plugins = ["tests.push_service"]

PROBLEM = "application/problem+json"
SYNC = "/api/v1/incidents/sync"
ALL_ROLES = list(Role)


def token_of(response) -> str:
    """The session token a response's Set-Cookie hands the browser."""
    return cookie_header(response).split(";", 1)[0].split("=", 1)[1]


def as_token(app, token: str):
    """A fresh client presenting only `token` as its session cookie."""
    other = app.test_client()
    other.set_cookie(SESSION_COOKIE, token, domain="localhost")
    return other


def problem(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.mimetype == PROBLEM
    return response.get_json()


def without_instance(body: dict) -> dict:
    """A problem without `instance`, which only echoes the path the caller asked for."""
    return {k: v for k, v in body.items() if k != "instance"}


# --- session fixation and sign-out -----------------------------------------------------

def enrolled_person(client, role="crew"):
    person = make_person(role)
    response, phone = enrol(client, invite(person))
    assert response.status_code == 201, response.get_json()
    return person, phone, response


def test_a_token_planted_before_sign_in_is_never_the_one_after(app, client):
    person, phone, enrolment = enrolled_person(client)
    client.post("/api/v1/auth/logout", headers=csrf(enrolment))
    # An attacker who can set a cookie on the victim's browser plants one of
    # their own choosing, then waits for the victim to sign in.
    client.set_cookie(SESSION_COOKIE, "attacker-chosen-token-0123456789abcdef",
                      domain="localhost")
    signed = sign_in(client, phone)
    assert signed.status_code == 200
    token = token_of(signed)
    assert token != "attacker-chosen-token-0123456789abcdef"
    assert as_token(app, "attacker-chosen-token-0123456789abcdef").get(
        "/api/v1/auth/me").status_code == 401
    assert as_token(app, token).get("/api/v1/auth/me").get_json()["person"]["id"] == person.id


def test_an_attackers_live_session_planted_before_sign_in_is_ended_by_it(app, client):
    victim, phone, enrolment = enrolled_person(client)
    client.post("/api/v1/auth/logout", headers=csrf(enrolment))
    attacker_token, _ = start_session(make_person("crew"), user_agent="attacker")
    client.set_cookie(SESSION_COOKIE, attacker_token, domain="localhost")
    signed = sign_in(client, phone)
    assert signed.status_code == 200
    assert signed.get_json()["person"]["id"] == victim.id
    assert token_of(signed) != attacker_token
    # The planted session is over: nothing the victim does can land in it.
    assert as_token(app, attacker_token).get("/api/v1/auth/me").status_code == 401


def test_every_sign_in_issues_a_fresh_token_and_csrf_token(app, client):
    _, phone, enrolment = enrolled_person(client)
    tokens, csrfs = {token_of(enrolment)}, {enrolment.get_json()["csrf_token"]}
    for _ in range(3):
        signed = sign_in(client, phone)
        assert signed.status_code == 200
        tokens.add(token_of(signed))
        csrfs.add(signed.get_json()["csrf_token"])
    assert len(tokens) == 4 and len(csrfs) == 4
    # Only the newest is live: each sign-in on this browser ended the one before.
    live = [t for t in tokens if as_token(app, t).get("/api/v1/auth/me").status_code == 200]
    assert live == [token_of(signed)]
    # Only a hash of the token is stored.
    stored = set(db.session.scalars(select(AuthSession.token_hash)))
    assert tokens.isdisjoint(stored) and {token_hash(t) for t in tokens} <= stored


def test_after_sign_out_the_old_token_and_csrf_token_are_dead(app, client):
    _, phone, _ = enrolled_person(client)
    signed = sign_in(client, phone)
    old_token, old_csrf = token_of(signed), signed.get_json()["csrf_token"]
    assert client.post("/api/v1/auth/logout", headers={CSRF_HEADER: old_csrf}).status_code == 204
    # Replaying the token (a copy kept by malware, a proxy log) opens nothing.
    replay = as_token(app, old_token)
    problem(replay.get("/api/v1/auth/me"), 401)
    problem(replay.post(SYNC, json=batch(record()), headers={CSRF_HEADER: old_csrf}), 401)
    # A new session does not accept the old session's CSRF token either.
    again = sign_in(client, phone)
    assert again.get_json()["csrf_token"] != old_csrf
    refused = problem(client.post("/api/v1/auth/logout", headers={CSRF_HEADER: old_csrf}), 403)
    assert refused["type"].endswith("/csrf")


def test_the_session_cookie_is_httponly_and_samesite(client):
    _, _, enrolment = enrolled_person(client)
    header = cookie_header(enrolment).lower()
    assert "httponly" in header and "samesite=lax" in header and "path=/" in header


# --- CSRF on every state-changing endpoint; Origin on the sign-in endpoints ----------

def state_changing(app):
    return [(m, url, rule, view) for m, url, rule, view in api_endpoints(app)
            if m not in SAFE_METHODS and rule not in PUBLIC]


def test_every_state_changing_endpoint_refuses_a_missing_or_wrong_csrf_token(app):
    endpoints = state_changing(app)
    assert len(endpoints) >= 10
    for method, url, rule, view in endpoints:
        role = sorted(view.required_roles, key=lambda r: r.value)[0]
        person = make_person(role.value)
        token, session = start_session(person, user_agent="csrf-test")
        browser = as_token(app, token)
        for headers in ({}, {CSRF_HEADER: "x" * 43}, {CSRF_HEADER: ""},
                        {CSRF_HEADER: session.csrf_token[:-1]}):
            body = problem(browser.open(url, method=method, json={}, headers=headers), 403)
            assert body["type"].endswith("/csrf"), f"{method} {rule}: {body}"
        # Someone else's CSRF token is as wrong as none.
        _, other = start_session(make_person(role.value), user_agent="other")
        body = problem(browser.open(url, method=method, json={},
                                    headers={CSRF_HEADER: other.csrf_token}), 403)
        assert body["type"].endswith("/csrf"), f"{method} {rule}"
        # The right token gets past the check (whatever the endpoint then says).
        allowed = browser.open(url, method=method, json={},
                               headers={CSRF_HEADER: session.csrf_token})
        assert not (allowed.status_code == 403 and allowed.get_json()["type"].endswith("/csrf"))


def test_a_refused_csrf_sync_stores_nothing(app, client):
    crew = make_person("crew")
    token, _ = start_session(crew, user_agent="csrf-test")
    browser = as_token(app, token)
    problem(browser.post(SYNC, json=batch(record())), 403)
    assert db.session.scalar(select(Incident.id)) is None


SIGN_IN_POSTS = ["/api/v1/auth/login/options", "/api/v1/auth/login/verify",
                 "/api/v1/auth/register/options", "/api/v1/auth/register/verify",
                 "/api/v1/auth/demo"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:5000.evil",
                                    "http://LOCALHOST:5000", "http://localhost:5001"])
def test_sign_in_endpoints_refuse_a_foreign_origin(app, client, origin):
    app.config["DEMO"] = True  # so /auth/demo exists for this loopback client
    token = invite(make_person("crew"))
    bodies = {"/api/v1/auth/register/options": {"invitation": token},
              "/api/v1/auth/register/verify": {"invitation": token, "credential": {}},
              "/api/v1/auth/login/verify": {"credential": {}},
              "/api/v1/auth/demo": {"person_id": make_person("admin").id}}
    for url in SIGN_IN_POSTS:
        body = problem(client.post(url, json=bodies.get(url, {}), headers={"Origin": origin}),
                       403)
        assert body["type"].endswith("/origin"), url
    assert client.get("/api/v1/auth/me").status_code == 401  # no session came of it
    # The same requests from our own origin go through.
    ok = client.post("/api/v1/auth/demo", json=bodies["/api/v1/auth/demo"],
                     headers={"Origin": ORIGIN})
    assert ok.status_code == 200


def test_the_sign_in_endpoints_are_exactly_the_public_posts(app):
    public_posts = {rule for m, _, rule, _ in api_endpoints(app)
                    if m not in SAFE_METHODS and rule in PUBLIC}
    # Every public POST but the stateless classifier and the SMS gateway's webhook
    # (no browser: signed with a shared secret, tests/test_sms.py) is a sign-in
    # step, checked above.
    assert public_posts - {"/api/v1/law/classify", "/api/v1/sms/inbound"} == set(SIGN_IN_POSTS)


# --- guessing other people's incident ids ----------------------------------------------

@pytest.fixture
def two_stations(client, login):
    """Crew A (station 1, post 1) with an incident; crew B at the same station; crew C,
    a manager and an officer elsewhere."""
    post1, post2 = make_post(), make_post()
    st1, st2 = make_station(default_post=post1), make_station(default_post=post2)
    people = {"a": make_person("crew", station=st1), "b": make_person("crew", station=st1),
              "c": make_person("crew", station=st2),
              "manager2": make_person("manager", stations=[st2]),
              "police2": make_person("police", post=post2)}
    login(people["a"])
    rec = record(kind="violence", police_needed=True, note="A's private note")
    result = client.post(SYNC, json=batch(rec)).get_json()["results"][0]
    assert result["status"] == "created"
    return people, uuid.UUID(rec["id"]), result["incident"]["case_number"]


OTHERS_READS = {
    "b": ["/api/v1/incidents/{}"],
    "c": ["/api/v1/incidents/{}"],
    "manager2": ["/api/v1/incidents/{}", "/api/v1/review/incidents/{}"],
    "police2": ["/api/v1/incidents/{}", "/api/v1/police/incidents/{}"],
}


@pytest.mark.parametrize("who", sorted(OTHERS_READS))
def test_someone_elses_incident_is_the_same_404_as_an_unknown_one(app, login, two_stations,
                                                                   who):
    people, theirs, case = two_stations
    client = app.test_client()
    login(people[who], on=client)
    unknown = uuid.uuid4()
    for template in OTHERS_READS[who]:
        one = client.get(template.format(theirs))
        other = client.get(template.format(unknown))
        assert without_instance(problem(one, 404)) == without_instance(problem(other, 404))
        assert one.headers.get("Content-Length") is None or \
            len(one.get_data()) - len(str(theirs)) == len(other.get_data()) - len(str(unknown))
        assert case not in one.get_data(as_text=True)
    # Nor do the lists show it.
    listed = client.get("/api/v1/incidents").get_json()["items"]
    assert str(theirs) not in {i["id"] for i in listed}


def test_an_officer_of_another_post_cannot_act_on_the_incident(app, login, two_stations):
    people, theirs, _ = two_stations
    client = app.test_client()
    login(people["police2"], on=client)
    unknown = uuid.uuid4()
    actions = [("POST", "/api/v1/police/incidents/{}/acknowledge", None),
               ("PUT", "/api/v1/police/incidents/{}/erdr", {"erdr_number": "123456789012345"}),
               ("POST", "/api/v1/police/incidents/{}/status", {"status": "investigating"})]
    for method, template, body in actions:
        one = client.open(template.format(theirs), method=method, json=body)
        other = client.open(template.format(unknown), method=method, json=body)
        assert without_instance(problem(one, 404)) == without_instance(problem(other, 404))
    db.session.expire_all()
    incident = db.session.get(Incident, theirs)
    assert incident.erdr_number is None and incident.status.value != "investigating"


def test_syncing_with_someone_elses_id_reveals_and_changes_nothing(app, login, two_stations):
    people, theirs, case = two_stations
    client = app.test_client()
    login(people["b"], on=client)
    hijack = record(theirs, revision=9, kind="threat", note="overwritten by B")
    answer = client.post(SYNC, json=batch(hijack))
    assert answer.status_code == 200
    result = answer.get_json()["results"][0]
    assert result["status"] == "rejected" and "incident" not in result
    assert [e["field"] for e in result["errors"]] == ["id"]
    text = answer.get_data(as_text=True)
    assert case not in text and "A's private note" not in text and "violence" not in text
    db.session.expire_all()
    incident = db.session.get(Incident, theirs)
    assert (incident.revision, incident.note, incident.reporter_id) == (
        1, "A's private note", people["a"].id)


# --- enumerating invitations --------------------------------------------------------------

def invitation_answer(client, token):
    return client.post("/api/v1/auth/register/options", json={"invitation": token})


def test_invitation_answers_name_the_state_but_never_the_person(client):
    person = make_person("crew", name="Айгерим Сарсенова")
    used_token = invite(person)
    response, _ = enrol(client, used_token)
    assert response.status_code == 201
    client.post("/api/v1/auth/logout", headers=csrf(response))
    expired_token, expired = auth.create_invitation(make_person("crew", name="Expired Person"))
    expired.expires_at = utcnow() - timedelta(minutes=1)
    replaced_token = invite(other := make_person("crew", name="Replaced Person"))
    invite(other)  # a newer link replaces it
    db.session.commit()
    answers = {
        "unknown": problem(invitation_answer(client, "x" * 43), 404),
        "used": problem(invitation_answer(client, used_token), 410),
        "expired": problem(invitation_answer(client, expired_token), 410),
        "replaced": problem(invitation_answer(client, replaced_token), 410),
    }
    assert {k: v["type"].rsplit("/", 1)[1] for k, v in answers.items()} == {
        "unknown": "invitation-unknown", "used": "invitation-used",
        "expired": "invitation-expired", "replaced": "invitation-revoked"}
    for body in answers.values():
        text = str(body)
        assert "Айгерим" not in text and "Person" not in text and "person" not in body
    # Tokens are 256-bit random (43 characters); only their hash is stored.
    assert len(used_token) == 43 and db.session.scalar(
        select(Invitation.id).where(Invitation.token_hash == used_token)) is None


def test_guessing_invitations_hits_the_rate_limit_before_a_real_one_is_reached(app, client):
    limit, _ = app.config["AUTH_RATE_LIMIT_PER_ADDRESS"]
    real = invite(make_person("crew"))
    statuses = [invitation_answer(client, base64.urlsafe_b64encode(
        uuid.uuid4().bytes * 2).decode()[:43]).status_code for _ in range(limit)]
    assert set(statuses) == {404}
    # The next try is refused before any lookup, even with the real token.
    limited = invitation_answer(client, real)
    assert problem(limited, 429)["type"].endswith("/rate-limited")
    assert int(limited.headers["Retry-After"]) >= 1


# --- hostile bodies -----------------------------------------------------------------------

def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("body", [deep(10_000), deep(1_000), deep(100),
                                  '{"a":' * 5_000 + "1" + "}" * 5_000,
                                  '{"credential": ' + deep(900) + "}"])
def test_deeply_nested_json_is_a_400_problem_not_a_crash(app, login, body):
    crew = app.test_client()
    login(make_person("crew"), on=crew)
    for who, url in ((app.test_client(), "/api/v1/law/classify"),
                     (app.test_client(), "/api/v1/auth/login/verify"),
                     (crew, SYNC)):
        answer = problem(who.post(url, data=body, content_type="application/json"), 400)
        assert answer["type"].endswith(("/json-too-deep", "/malformed-json")), url


def test_json_nested_as_deep_as_the_app_needs_is_fine(app, login, client):
    login(make_person("crew"))
    rec = record(location={"lat": 43.2, "lon": 76.9, "source": "gps"})
    assert client.post(SYNC, json=batch(rec)).status_code == 200


def test_a_body_over_the_limit_is_413_before_it_is_read(app, login, client):
    big = b'{"note": "' + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1) + b'"}'
    body = problem(client.post("/api/v1/law/classify", data=big,
                               content_type="application/json"), 413)
    assert str(app.config["MAX_CONTENT_LENGTH"]) in body["detail"]
    login(make_person("crew"))
    app.config["SYNC_MAX_CONTENT_LENGTH"] = 4096
    problem(client.post(SYNC, data=b"[" + b" " * 5000 + b"]",
                        content_type="application/json"), 413)


@pytest.mark.parametrize("path", [
    "/api/v1/people/99999999999999999999999/invitations",
    "/api/v1/people/9223372036854775808/revoke-devices",
    "/api/v1/people/0/invitations",
    "/api/v1/people/-1/invitations",
])
def test_out_of_range_ids_in_the_path_are_404_not_500(login, client, path):
    login(make_person("admin"))
    problem(client.post(path, json={}), 404)


@pytest.mark.parametrize("path", ["/api/v1/auth/sessions/99999999999999999999",
                                  "/api/v1/auth/passkeys/9223372036854775808"])
def test_out_of_range_device_ids_are_404_not_500(login, client, path):
    login(make_person("crew"))
    problem(client.delete(path), 404)


# --- Unicode and NUL in names and notes ------------------------------------------------------

ODD_TEXT = {
    "rtl_override": "Ахмет \u202eevil\u202c Смағұлов",
    "zero_width": "Зере\u200d\u200bнұр\ufeff",
    "combining": "A\u0301ся\u0308 Z\u0335\u0321\u0322algo",
    "emoji": "Дина 👩🏽‍⚕️🚑",
    "astral_and_bidi": "𝔔𝔬𝔯𝔤𝔞𝔲 \u2067שלום\u2069 \u061c",
    "html": "<img src=x onerror=alert(1)><script>alert(2)</script>",
}


@pytest.mark.parametrize("kind", sorted(ODD_TEXT))
def test_odd_names_are_stored_and_returned_faithfully(app, runner, client, login, kind):
    name = ODD_TEXT[kind]
    station = make_station()
    result = runner.invoke(args=["people", "add", "--name", name, "--role", "crew",
                                 "--position", "doctor", "--station", station.code])
    assert result.exit_code == 0, result.output
    person = db.session.scalar(select(Person).where(Person.display_name == name))
    assert person is not None
    login(person)
    assert client.get("/api/v1/auth/me").get_json()["person"]["display_name"] == name
    manager = app.test_client()
    login(make_person("manager", stations=[station]), on=manager)
    people = manager.get("/api/v1/people").get_json()["people"]
    listed = {p["id"]: p["display_name"] for p in people}
    assert listed[person.id] == name


def test_a_nul_in_a_name_is_refused_clearly(runner):
    station = make_station()
    result = runner.invoke(args=["people", "add", "--name", "Ali\x00ya", "--role", "crew",
                                 "--position", "doctor", "--station", station.code])
    assert result.exit_code == 1
    assert "--display_name" in result.output and "NUL" in result.output
    assert db.session.scalar(select(Person.id).where(Person.display_name.like("Ali%"))) is None


def test_a_nul_in_an_org_name_refuses_the_import(runner, tmp_path):
    path = tmp_path / "orgs.csv"
    path.write_text("type,code,name,region\npost,P-NUL,Hospital\x00 4,75\n", encoding="utf-8")
    result = runner.invoke(args=["orgs", "import", str(path)])
    assert result.exit_code == 1 and "NUL" in result.output


@pytest.mark.parametrize("kind", sorted(ODD_TEXT))
def test_odd_notes_and_device_labels_round_trip(app, client, login, kind):
    text = ODD_TEXT[kind]
    login(make_person("crew"))
    rec = record(note=text)
    assert client.post(SYNC, json=batch(rec)).get_json()["results"][0]["status"] == "created"
    assert client.get(f"/api/v1/incidents/{rec['id']}").get_json()["note"] == text
    fresh = app.test_client()
    response, _ = enrol(fresh, invite(make_person("police")), label=text[:120])
    assert response.status_code == 201
    labels = [p["device_label"] for p in fresh.get("/api/v1/auth/devices").get_json()["passkeys"]]
    assert labels == [text[:120].strip()]


def test_a_nul_in_a_device_label_is_a_422(client):
    token = invite(make_person("crew"))
    phone = SoftAuthenticator(ORIGIN)
    options = client.post("/api/v1/auth/register/options", json={"invitation": token}).get_json()
    answer = client.post("/api/v1/auth/register/verify", json={
        "invitation": token, "credential": phone.create(options), "device_label": "ph\x00ne"})
    body = problem(answer, 422)
    assert [e["field"] for e in body["errors"]] == ["device_label"]


def test_a_nul_in_a_police_note_is_a_422(app, login, two_stations):
    _, theirs, _ = two_stations
    officer = app.test_client()
    post = db.session.get(Incident, theirs).post
    login(make_person("police", post=post), on=officer)
    body = problem(officer.post(f"/api/v1/police/incidents/{theirs}/status",
                                json={"status": "closed", "note": "done\x00"}), 422)
    assert [e["field"] for e in body["errors"]] == ["note"]


def test_a_nul_in_a_push_device_id_is_refused(app, client, login):
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.push_service import BrowserSubscription

    login(make_person("crew"))
    sub = BrowserSubscription("http://127.0.0.1:9/push/abc", ec.generate_private_key(
        ec.SECP256R1()), b"0123456789abcdef")
    body = sub.to_json("tab\x00let")
    answer = client.post("/api/v1/push/subscriptions", json=body)
    # PostgreSQL text cannot hold NUL: refused at the door on both databases.
    assert answer.status_code == 422, answer.get_data()[:300]
    assert [e["field"] for e in answer.get_json()["errors"]] == ["device_id"]


# --- spreadsheet formulas in the CSV export ---------------------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
            '=HYPERLINK("http://evil.example","x")']


def test_the_csv_export_neutralises_formulas_in_every_text_cell(app, client, login, runner):
    station = make_station()
    runner.invoke(args=["people", "add", "--name", "=1+2", "--role", "crew", "--position",
                        "doctor", "--station", station.code])
    crew = db.session.scalar(select(Person).where(Person.display_name == "=1+2"))
    login(crew)
    for formula in FORMULAS:
        assert client.post(SYNC, json=batch(record(note=formula))).status_code == 200
    manager = app.test_client()
    login(make_person("manager", stations=[station]), on=manager)
    export = manager.get("/api/v1/review/export.csv?lang=en")
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    header, data = rows[0], rows[1:]
    note_at = header.index(next(h for h in header if "note" in h.lower() and "crew" in h.lower()))
    notes = sorted(row[note_at] for row in data)
    assert notes == sorted("'" + f for f in FORMULAS)
    for row in data:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or cell.lstrip("-").replace(".", "").isdigit()


# --- no secret in the logs -----------------------------------------------------------------


def test_no_secret_is_ever_logged(push_app, client, login, push_service, worker, caplog):
    from api.push.vapid import vapid_key
    from tests.push_service import vapid_pem

    # SQL echo is a developer's switch, never on in production; everything else at DEBUG.
    # (In this order: each set_level also sets the capturing handler's level.)
    caplog.set_level(logging.WARNING, logger="sqlalchemy")
    caplog.set_level(logging.DEBUG)
    secrets = {"SECRET_KEY": push_app.config["SECRET_KEY"]}
    pem = vapid_pem()
    for n, line in enumerate(pem.splitlines()[1:-1]):
        secrets[f"VAPID PEM line {n}"] = line
    number = vapid_key(push_app).private_key.private_numbers().private_value.to_bytes(32, "big")
    secrets["VAPID private scalar"] = base64.urlsafe_b64encode(number).decode().rstrip("=")
    secrets["VAPID private hex"] = number.hex()

    post = make_post()
    station = make_station(default_post=post)
    officer = client.application.test_client()
    login(make_person("police", post=post), on=officer)
    officer_sub = push_service.subscribe()
    assert officer.post("/api/v1/push/subscriptions",
                        json=officer_sub.to_json()).status_code == 201
    admin = client.application.test_client()
    admin_session = login(make_person("admin"), on=admin)
    secrets["admin CSRF token"] = admin_session.csrf_token
    crew = make_person("crew", station=station)
    invitation = admin.post(f"/api/v1/people/{crew.id}/invitations", json={"hours": 24})
    assert invitation.status_code == 201
    secrets["invitation token"] = invitation.get_json()["url"].rsplit("/", 1)[1]
    enrolment, phone = enrol(client, secrets["invitation token"])
    assert enrolment.status_code == 201
    secrets["enrolment session"] = token_of(enrolment)
    secrets["enrolment CSRF"] = enrolment.get_json()["csrf_token"]
    client.post("/api/v1/auth/logout", headers=csrf(enrolment))
    # A wrong try and a right one, both logged wherever they are.
    client.post("/api/v1/auth/login/verify", json={"credential": {"id": "x", "response": {}}})
    signed = sign_in(client, phone)
    assert signed.status_code == 200
    secrets["sign-in session"] = token_of(signed)
    secrets["sign-in CSRF"] = signed.get_json()["csrf_token"]
    crew_sub = push_service.subscribe()
    assert client.post("/api/v1/push/subscriptions", json=crew_sub.to_json(),
                       headers=csrf(signed)).status_code == 201
    secrets["crew push auth secret"] = crew_sub.to_json()["keys"]["auth"]
    synced = client.post(SYNC, json=batch(record(kind="violence", police_needed=True)),
                         headers=csrf(signed))
    assert synced.get_json()["results"][0]["status"] == "created"
    push_service.answer(crew_sub, 500)  # a failed delivery is logged too
    assert worker.tick() == 2
    assert push_service.delivered(officer_sub)
    assert caplog.records, "nothing was logged, so nothing was checked"
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    leaked = [name for name, value in secrets.items() if value and value in logged]
    assert leaked == []
