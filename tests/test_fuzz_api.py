"""Schemathesis against /api/openapi.json: every operation, as every role.

In-process (WSGI, no network) against the app of the `app` fixture: a fresh
migrated database with a station, its police post, one person of each role
and a few synced incidents. Each generated request is sent with a fresh
session of the role (a cookie and its X-CSRF-Token), so an operation that
signs out or revokes devices cannot starve the ones after it.

The bar: no 5xx, and every response matches the document (its status is
declared, its media type and body match the declared schema; errors are
problem+json). Examples are bounded and derandomised, so CI is deterministic.
Each operation also runs with its path parameters set to seeded ids, so the
found-and-allowed paths are fuzzed too, not only the 404s.
"""

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.auth.access import CSRF_HEADER, SESSION_COOKIE
from api.auth.sessions import start_session
from api.openapi import build_document
from tests.factories import make_person, make_post, make_station
from tests.incident_helpers import batch, record
from tests.media_helpers import png_bytes
from tests.media_helpers import upload as media_upload

ROLES = ["anonymous", "crew", "manager", "police", "admin"]

# No 5xx at all: a year the MCI table lacks is classified in MCI only, with a
# warning (tests/test_law_api.py), not answered with a 500.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Reads that need state a generated request cannot make (the demo run only).
NEVER_2XX = {"GET /api/v1/auth/demo/people"}
# Per operation and pass; five roles x ~40 operations x 2 modes stay within minutes.
MAX_EXAMPLES = 25
# Operations a signed-out caller may reach; the rest answer 401 before reading
# anything, which a handful of examples show.
ANONYMOUS_EXAMPLES_IF_PROTECTED = 3


@dataclass
class World:
    app: object
    people: dict
    incident_ids: list
    statuses: dict = field(default_factory=dict)
    timer_id: str | None = None
    attachment_id: str | None = None


def seed(app, client) -> World:
    post = make_post()
    station = make_station(default_post=post)
    people = {
        "crew": make_person("crew", station=station),
        "manager": make_person("manager", stations=[station]),
        "police": make_person("police", post=post),
        "admin": make_person("admin"),
    }
    token, session = start_session(people["crew"], user_agent="fuzz")
    client.set_cookie(SESSION_COOKIE, token, domain="localhost")
    ids = [uuid.uuid4() for _ in range(3)]
    records = [
        # An SOS (api/sos), so its endpoints have a real alarm to answer about.
        record(ids[0], kind="violence", police_needed=True, sos=True, aggravating=["group"],
               victim_role="doctor", note="punched at the door",
               location={"lat": 43.25, "lon": 76.92, "accuracy_m": 12.5, "source": "gps",
                         "fixed_at": "2026-06-01T09:30:00+05:00"}),
        record(ids[1], kind="threat"),
        record(ids[2]),
    ]
    response = client.post("/api/v1/incidents/sync", json=batch(*records),
                           headers={CSRF_HEADER: session.csrf_token})
    assert response.status_code == 200, response.get_json()
    assert {r["status"] for r in response.get_json()["results"]} == {"created"}
    # A stored photo, so the media reads have something to answer (api/media).
    client.environ_base["HTTP_X_CSRF_TOKEN"] = session.csrf_token
    stored = media_upload(client, ids[0], png_bytes(), filename="p.png")
    assert stored.status_code == 200, stored.get_json()
    del client.environ_base["HTTP_X_CSRF_TOKEN"]
    # A check-in timer, so the timer reads have something to answer (api/checkin).
    timer = {"id": str(uuid.uuid4()), "address": "ул. Абая, д. 10", "minutes": 30,
             "started_at": datetime.now(UTC).isoformat()}
    response = client.post("/api/v1/checkin/timers", json=timer,
                           headers={CSRF_HEADER: session.csrf_token})
    assert response.status_code == 201, response.get_json()
    client.delete_cookie(SESSION_COOKIE, domain="localhost")
    app.config["SOS_STREAM_SECONDS"] = 0  # the SOS's live stream answers at once
    return World(app=app, people=people, incident_ids=ids,
                 attachment_id=stored.get_json()["id"], timer_id=timer["id"])


def credentials(world: World, role: str) -> tuple[dict, dict]:
    """(cookies, headers) of a brand-new session of `role`; none for anonymous."""
    if role == "anonymous":
        return {}, {}
    token, session = start_session(world.people[role], user_agent="fuzz")
    return {SESSION_COOKIE: token}, {CSRF_HEADER: session.csrf_token}


def seeded_path_values(world: World, role: str, operation) -> dict | None:
    """Path parameters that name real things the role may see, or None."""
    names = {p.name for p in operation.path_parameters}
    if not names:
        return None
    values = {}
    for name in names:
        if name == "incident_id":
            values[name] = str(world.incident_ids[0])
        elif name == "person_id":
            values[name] = world.people["crew"].id
        elif name == "timer_id":
            values[name] = world.timer_id
        elif name == "attachment_id" and world.attachment_id:
            values[name] = world.attachment_id
        elif name in {"passkey_id", "session_id"}:
            values[name] = 1
        else:
            return None
    return values


def admitted(raw_operation: dict, role: str) -> bool:
    roles = raw_operation.get("x-roles")
    if roles is None:
        return True  # public
    return role in roles


@pytest.fixture
def world(app, client, tmp_path):
    app.config["MEDIA_DIR"] = str(tmp_path / "media")
    # Generous limits: a 429 would hide the code behind it from the fuzzer.
    app.config.update(AUTH_RATE_LIMIT_PER_ADDRESS=[10**9, 60],
                      AUTH_RATE_LIMIT_PER_INVITATION=[10**9, 900])
    return seed(app, client)


def fuzz_operation(world: World, role: str, operation, mode, max_examples: int,
                   path_parameters: dict | None) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(case=strategy)
    def run(case):
        cookies, headers = credentials(world, role)
        response = case.call_and_validate(app=world.app, cookies=cookies, headers=headers,
                                          checks=CHECKS)
        world.statuses.setdefault(f"{operation.method.upper()} {operation.path}", []).append(
            response.status_code)

    # Unsatisfiable: nothing to generate for this combination; not a finding.
    with contextlib.suppress(Unsatisfiable):
        run()


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_as_every_role(app, world, role):
    document = build_document(app)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app
    failures, ran = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        raw = document["paths"][operation.path][operation.method.lower()]
        protected = "x-roles" in raw
        if role != "anonymous" and not admitted(raw, role):
            continue  # test_role_matrix shows the 403; nothing behind it to fuzz
        examples = MAX_EXAMPLES
        if role == "anonymous" and protected:
            examples = ANONYMOUS_EXAMPLES_IF_PROTECTED
        passes = [(schemathesis.GenerationMode.POSITIVE, None),
                  (schemathesis.GenerationMode.NEGATIVE, None)]
        seeded = seeded_path_values(world, role, operation)
        if seeded and not (role == "anonymous" and protected):
            passes.append((schemathesis.GenerationMode.POSITIVE, seeded))
        for mode, path_parameters in passes:
            try:
                fuzz_operation(world, role, operation, mode, examples, path_parameters)
            except Exception as err:
                failures.append(f"{operation.method.upper()} {operation.path} "
                                f"[{mode.value}{' seeded' if path_parameters else ''}]:\n"
                                + "\n".join(str(err).splitlines()[:40]))
            ran += 1
    assert ran >= 5
    if role != "anonymous":
        # The fuzzer reached the handlers, not only the doors: every read the role
        # is admitted to answered 2xx at least once (a broken session would not).
        unreached = sorted(op for op, statuses in world.statuses.items()
                           if op.startswith("GET ") and op not in NEVER_2XX
                           and not any(200 <= s < 300 for s in statuses))
        assert unreached == [], f"{role}: never answered 2xx: {unreached}"
    assert failures == [], "\n\n".join(failures)
