"""Enrolling a passkey and signing in through the API, with the soft
authenticator (tests/webauthn_soft.py): shared by the auth, push and security tests."""

from api.auth import service as auth
from tests.webauthn_soft import SoftAuthenticator

ORIGIN = "http://localhost:5000"


def invite(person, hours=72):
    token, _ = auth.create_invitation(person, hours=hours)
    return token


def enrol(client, token, phone=None, label="Work phone", **create_kwargs):
    phone = phone or SoftAuthenticator(ORIGIN)
    options = client.post("/api/v1/auth/register/options", json={"invitation": token})
    assert options.status_code == 200, options.get_json()
    credential = phone.create(options.get_json(), **create_kwargs)
    response = client.post("/api/v1/auth/register/verify", json={
        "invitation": token, "credential": credential, "device_label": label})
    return response, phone


def sign_in(client, phone, **get_kwargs):
    options = client.post("/api/v1/auth/login/options", json={})
    assert options.status_code == 200, options.get_json()
    return client.post("/api/v1/auth/login/verify",
                       json={"credential": phone.get(options.get_json(), **get_kwargs)})


def csrf(response) -> dict:
    return {"X-CSRF-Token": response.get_json()["csrf_token"]}


def cookie_header(response) -> str:
    return next(v for v in response.headers.getlist("Set-Cookie")
                if v.startswith("qorgau_session="))
