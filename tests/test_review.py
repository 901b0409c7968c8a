"""The station managers' API: scope, filters, keyset pages, detail, note, figures,
exports, device health and the access log."""

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from api.access_log import AccessLog
from api.db import is_postgres
from api.extensions import db
from api.incidents.models import IncidentStatus, SyncDevice
from api.push.models import PushSubscription
from api.review.figures import percentile
from api.review.service import planner_settings
from tests.factories import T0, make_incident, make_person, make_post, make_station

BASE = "/api/v1/review"


@pytest.fixture
def world(login):
    post_a, post_b = make_post(), make_post()
    station_a, station_b = make_station(default_post=post_a), make_station()
    people = {
        "doctor": make_person("crew", station=station_a, position="doctor", name="Айгерим"),
        "driver": make_person("crew", station=station_a, position="driver", name="Ержан"),
        "crew_b": make_person("crew", station=station_b),
        "manager": make_person("manager", station=station_a),
        "manager_b": make_person("manager", station=station_b),
        "police": make_person("police", post=post_a),
        "admin": make_person("admin"),
    }
    return {"people": people, "posts": (post_a, post_b), "stations": (station_a, station_b)}


def get(client, url, expect=200, **params):
    response = client.get(url, query_string=params)
    assert response.status_code == expect, response.get_data(as_text=True)
    return response.get_json()


# ---------------------------------------------------------------- scope


def test_a_manager_sees_only_their_stations(client, login, world):
    p = world["people"]
    mine = make_incident(p["doctor"])
    theirs = make_incident(p["crew_b"])
    login(p["manager"])
    page = get(client, f"{BASE}/incidents")
    assert [i["id"] for i in page["items"]] == [str(mine.id)] and page["total"] == 1
    assert get(client, f"{BASE}/incidents/{theirs.id}", expect=404)["status"] == 404
    response = client.put(f"{BASE}/incidents/{theirs.id}/note", json={"note": "x"})
    assert response.status_code == 404
    assert get(client, f"{BASE}/incidents/{uuid.uuid4()}", expect=404)["status"] == 404
    # Another station's export, figures and devices hold nothing of station A.
    login(p["manager_b"])
    assert [i["id"] for i in get(client, f"{BASE}/incidents")["items"]] == [str(theirs.id)]
    assert str(mine.id) not in client.get(f"{BASE}/export.csv").get_data(as_text=True)


def test_a_manager_of_two_stations_sees_both(client, login, world):
    p = world["people"]
    a, b = make_incident(p["doctor"]), make_incident(p["crew_b"], T0 + timedelta(hours=1))
    login(make_person("manager", stations=world["stations"]))
    page = get(client, f"{BASE}/incidents")
    assert [i["id"] for i in page["items"]] == [str(b.id), str(a.id)]


def test_roles_other_than_manager_are_refused(client, login, world):
    for who in ("doctor", "police", "admin"):
        login(world["people"][who])
        assert client.get(f"{BASE}/incidents").status_code == 403
    login(world["people"]["manager"])
    assert client.get(f"{BASE}/access-log").status_code == 403


# ---------------------------------------------------------------- filters


def test_filters(client, login, world):
    p, (post_a, _) = world["people"], world["posts"]
    # 2026-04-30 20:30 UTC is 2026-05-01 01:30 in Almaty: a May incident.
    may_night = make_incident(p["doctor"], datetime(2026, 4, 30, 20, 30, tzinfo=UTC),
                              kind="violence", part=3, note="Пьяный пациент ударил")
    april = make_incident(p["driver"], datetime(2026, 4, 30, 18, 59, tzinfo=UTC), part=1,
                          post=post_a, status=IncidentStatus.ROUTED, police_needed=True,
                          note="threat with a knife", erdr="261234567890123")
    old = make_incident(p["doctor"], datetime(2026, 1, 5, 6, 0, tzinfo=UTC), part=None,
                        kind="unspecified")
    login(p["manager"])

    def ids(**params):
        page = get(client, f"{BASE}/incidents", **params)
        assert page["total"] == len(page["items"])
        return {i["id"] for i in page["items"]}

    assert ids() == {str(may_night.id), str(april.id), str(old.id)}
    assert ids(**{"from": "2026-05-01"}) == {str(may_night.id)}
    assert ids(**{"to": "2026-04-30"}) == {str(april.id), str(old.id)}
    assert ids(**{"from": "2026-04-30", "to": "2026-04-30"}) == {str(april.id)}
    assert ids(kind="violence") == {str(may_night.id)}
    assert ids(part=1) == {str(april.id)}
    assert ids(status="routed") == {str(april.id)}
    assert ids(reporter_id=p["doctor"].id) == {str(may_night.id), str(old.id)}
    assert ids(post_id=post_a.id) == {str(april.id)}
    assert ids(police_needed="true") == {str(april.id)}
    assert ids(police_needed="false") == {str(may_night.id), str(old.id)}
    assert ids(q="пьяный") == {str(may_night.id)}  # Cyrillic folds on SQLite too
    assert ids(q="ПЬЯНЫЙ ПАЦИЕНТ") == {str(may_night.id)}
    assert ids(q="Пьяный") == {str(may_night.id)}
    assert ids(q="KNIFE") == {str(april.id)}
    assert ids(q="2612345") == {str(april.id)}
    assert ids(q="100%") == set()  # % and _ are literal characters
    assert ids(kind="violence", part=1) == set()
    item = next(i for i in get(client, f"{BASE}/incidents", part=1)["items"])
    assert item["reporter"]["display_name"] == "Ержан" and item["post"]["id"] == post_a.id


@pytest.mark.parametrize("params, field", [
    ({"from": "2026-13-01"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"from": "2026-05-02", "to": "2026-05-01"}, "to"),
    ({"from": "0001-01-01"}, "from"),
    ({"part": "7"}, "part"),
    ({"part": "one"}, "part"),
    ({"kind": "robbery"}, "kind"),
    ({"status": "lost"}, "status"),
    ({"reporter_id": "-1"}, "reporter_id"),
    ({"post_id": "99999999999999"}, "post_id"),
    ({"police_needed": "maybe"}, "police_needed"),
    ({"q": "a" * 101}, "q"),
    ({"q": "a\x00b"}, "q"),
    ({"sort": "note"}, "sort"),
    ({"limit": "0"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
])
def test_bad_filters_are_problems_naming_the_field(client, login, world, params, field):
    make_incident(world["people"]["doctor"])
    login(world["people"]["manager"])
    for url in ("/incidents", "/export.csv", "/export.json"):
        if field in ("cursor", "limit") and url != "/incidents":
            continue
        response = client.get(BASE + url, query_string=params)
        assert response.status_code == 422, (url, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        assert field in {e["field"] for e in response.get_json()["errors"]}


def test_a_cursor_of_another_sort_is_refused(client, login, world):
    for i in range(3):
        make_incident(world["people"]["doctor"], T0 + timedelta(minutes=i))
    login(world["people"]["manager"])
    cursor = get(client, f"{BASE}/incidents", limit=1)["next_cursor"]
    response = client.get(f"{BASE}/incidents", query_string={"cursor": cursor,
                                                            "sort": "received_at"})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "cursor"


# ---------------------------------------------------------------- keyset pages


@pytest.mark.parametrize("sort", ["-occurred_at", "occurred_at", "-received_at",
                                  "received_at", "-case_number", "case_number"])
def test_pages_never_repeat_or_skip(client, login, world, sort):
    p = world["people"]
    made = []
    for i in range(23):
        # Ties on purpose: three incidents share each instant.
        made.append(make_incident(p["doctor"] if i % 2 else p["driver"],
                                  T0 + timedelta(minutes=i // 3), delay_s=60 + (i % 5)))
    make_incident(p["crew_b"])  # another station's: never on these pages
    login(p["manager"])
    seen, cursor, pages = [], None, 0
    while True:
        page = get(client, f"{BASE}/incidents", sort=sort, limit=5,
                   **({"cursor": cursor} if cursor else {}))
        assert page["total"] == 23
        seen.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 5
    ids = [i["id"] for i in seen]
    assert len(ids) == len(set(ids)) == 23
    assert set(ids) == {str(i.id) for i in made}
    name = sort.lstrip("-")
    by_id = {str(i.id): i for i in made}
    keys = [(getattr(by_id[i], name), str(by_id[i].id)) for i in ids]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


def test_a_search_matching_more_than_the_cap_says_more_than(app, client, login, world):
    p = world["people"]
    for i in range(4):
        make_incident(p["doctor"], T0 + timedelta(minutes=i), note=f"Угрожал ножом {i}")
    make_incident(p["doctor"], T0 + timedelta(hours=1), note="Толкнул")
    make_incident(p["crew_b"], note="Угрожал ножом")  # another station's: never counted
    app.config["REVIEW_SEARCH_TOTAL_CAP"] = 3
    login(p["manager"])
    page = get(client, f"{BASE}/incidents", q="НОЖОМ", limit=2)  # any case, both databases
    assert (page["total"], page["total_exact"]) == (3, False)
    assert len(page["items"]) == 2 and page["next_cursor"]
    # Without a search, and for a search within the cap, the total is exact.
    page = get(client, f"{BASE}/incidents")
    assert (page["total"], page["total_exact"]) == (5, True)
    app.config["REVIEW_SEARCH_TOTAL_CAP"] = 4
    page = get(client, f"{BASE}/incidents", q="ножом")
    assert (page["total"], page["total_exact"]) == (4, True)


def test_a_search_total_is_counted_without_reading_the_whole_table(app, client, login, world):
    """A table scan that stops at the cap reads from wherever the last scan of the
    table stopped, so on PostgreSQL the capped count of a search is an index plan;
    the setting that makes it so ends with that count."""
    p = world["people"]
    for i in range(3):
        make_incident(p["doctor"], T0 + timedelta(minutes=i), note=f"Угрожал ножом {i}")
    plans = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        if "count(*)" in statement and "LIKE" in statement and not statement.startswith("EX"):
            cursor.execute("EXPLAIN " + statement, parameters)
            plans.append("\n".join(str(row[-1]) for row in cursor.fetchall()))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", explain)
    try:
        login(p["manager"])
        page = get(client, f"{BASE}/incidents", q="ножом")
    finally:
        event.remove(engine, "before_cursor_execute", explain)
    assert (page["total"], page["total_exact"]) == (3, True)
    assert plans
    if is_postgres():
        # Three rows: left to itself the planner would read the table.
        assert all("Seq Scan on incidents" not in plan for plan in plans), plans


def test_planner_settings_last_for_the_block_only(app):
    if not is_postgres():
        with planner_settings(enable_seqscan="off"):
            pass  # nothing to set on SQLite, and no error
        return
    setting = select(func.current_setting("work_mem"))
    before = db.session.scalar(setting)
    with planner_settings(work_mem="16MB"):
        assert db.session.scalar(setting) == "16MB"
    assert db.session.scalar(setting) == before != "16MB"
    # A statement failing inside is the error raised (not one from putting the
    # setting back in a transaction that failed).
    with pytest.raises(DBAPIError, match="division by zero"), planner_settings(work_mem="16MB"):
        db.session.execute(text("SELECT 1 / 0"))
    db.session.rollback()


# ---------------------------------------------------------------- detail, note, access log


def test_detail_has_everything_and_is_logged(client, login, world):
    p, (post_a, _) = world["people"], world["posts"]
    incident = make_incident(p["doctor"], post=post_a, status=IncidentStatus.ACKNOWLEDGED,
                             ack_after_s=90, lat=43.238949, lon=76.889709,
                             note="Угрожал ножом", erdr="261234567890123")
    login(p["manager"])
    body = get(client, f"{BASE}/incidents/{incident.id}")
    assert body["case_number"] == incident.case_number
    assert body["classification"]["part"] == 1 and body["legal_part"] == 1
    assert body["note"] == "Угрожал ножом" and body["erdr_number"] == "261234567890123"
    assert body["post"] == {"id": post_a.id, "hospital_name": post_a.hospital_name}
    assert body["alert"]["acknowledged_at"] and body["alert"]["reason"] == "station_default"
    assert body["location"]["lat"] == pytest.approx(43.238949)
    assert body["map_url"] == ("https://www.openstreetmap.org/?mlat=43.238949&mlon=76.889709"
                               "#map=17/43.238949/76.889709")
    assert [e["kind"] for e in body["events"]] == ["created"]
    assert body["reporter"]["display_name"] == "Айгерим" and body["manager_note"] is None
    log = db.session.scalars(select(AccessLog)).all()
    assert [(r.person_id, r.incident_id, r.role, r.via) for r in log] == [
        (p["manager"].id, incident.id, "manager", "review.get_incident")]


def test_the_manager_note_is_kept_with_its_history(client, login, world):
    p = world["people"]
    incident = make_incident(p["doctor"])
    login(p["manager"])
    url = f"{BASE}/incidents/{incident.id}/note"
    body = client.put(url, json={"note": "  Передано юристу  "}).get_json()
    assert body["manager_note"]["note"] == "Передано юристу"
    assert body["manager_note"]["author"]["id"] == p["manager"].id
    client.put(url, json={"note": "Передано юристу"})  # the same text: no new event
    client.put(url, json={"note": ""})
    events = get(client, f"{BASE}/incidents/{incident.id}")["events"]
    assert [(e["kind"], e["changes"]) for e in events[1:]] == [
        ("manager_note", {"manager_note": ["", "Передано юристу"]}),
        ("manager_note", {"manager_note": ["Передано юристу", ""]})]
    assert events[1]["actor"]["id"] == p["manager"].id
    bad = client.put(url, json={"note": "x" * 2001})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "note"
    assert client.put(url, json={}).get_json()["errors"][0]["field"] == "note"


def test_police_and_manager_views_are_in_the_access_log_for_the_admin(client, login, world):
    p, (post_a, _) = world["people"], world["posts"]
    incident = make_incident(p["doctor"], post=post_a, note="секрет")
    login(p["police"])
    assert client.get(f"/api/v1/incidents/{incident.id}").status_code == 200
    assert client.get(f"/api/v1/police/incidents/{incident.id}").status_code == 200
    login(p["doctor"])  # the crew member's own view is not logged
    assert client.get(f"/api/v1/incidents/{incident.id}").status_code == 200
    login(p["manager"])
    assert client.get(f"/api/v1/incidents/{incident.id}").status_code == 200
    assert client.get(f"{BASE}/incidents/{incident.id}").status_code == 200
    login(p["admin"])
    page = get(client, f"{BASE}/access-log")
    assert [(e["person_id"], e["role"], e["via"]) for e in page["items"]] == [
        (p["manager"].id, "manager", "review.get_incident"),
        (p["manager"].id, "manager", "incidents.get_incident"),
        (p["police"].id, "police", "police.get_incident"),
        (p["police"].id, "police", "incidents.get_incident")]
    assert all(e["incident_id"] == str(incident.id) for e in page["items"])
    assert "секрет" not in json.dumps(page)  # never the incident's contents
    first = get(client, f"{BASE}/access-log", limit=2)
    rest = get(client, f"{BASE}/access-log", limit=2, cursor=first["next_cursor"])
    assert len(first["items"]) == 2 and len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert len(get(client, f"{BASE}/access-log", person_id=p["police"].id)["items"]) == 2
    assert client.get(f"{BASE}/access-log?from=nope").get_json()["errors"][0]["field"] == "from"
    with pytest.raises(RuntimeError):
        db.session.delete(db.session.scalars(select(AccessLog)).first())
        db.session.flush()
    db.session.rollback()


# ---------------------------------------------------------------- exports


def test_csv_has_a_bom_and_cyrillic_round_trips(client, login, world):
    p = world["people"]
    make_incident(p["doctor"], note="Ударил по лицу; «скорая», \"кавычки\"\nвторая строка")
    make_incident(p["driver"], T0 + timedelta(hours=1), note="=HYPERLINK(\"http://x\")")
    make_incident(p["crew_b"], note="чужая подстанция")
    login(p["manager"])
    response = client.get(f"{BASE}/export.csv", query_string={"lang": "ru"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "Номер дела" and len(rows) == 3
    notes = [r[17] for r in rows[1:]]
    assert notes == ["'=HYPERLINK(\"http://x\")",
                     "Ударил по лицу; «скорая», \"кавычки\"\nвторая строка"]
    assert rows[2][4] == "Айгерим" and rows[2][1] == "2026-04-10 11:00"  # local time
    english = client.get(f"{BASE}/export.csv", query_string={"lang": "en", "kind": "violence"})
    assert english.get_data().decode("utf-8-sig").splitlines() == [
        english.get_data().decode("utf-8-sig").splitlines()[0]]
    assert english.get_data().decode("utf-8-sig").startswith("Case number,")


def test_json_export_has_the_same_rows(client, login, world):
    p = world["people"]
    a = make_incident(p["doctor"], note="Угроза")
    make_incident(p["driver"], T0 + timedelta(days=40))
    login(p["manager"])
    body = json.loads(client.get(f"{BASE}/export.json",
                                 query_string={"to": "2026-04-30"}).get_data())
    assert body["filters"] == {"date_to": "2026-04-30", "sort": "-occurred_at"}
    assert [(r["id"], r["note"]) for r in body["items"]] == [(str(a.id), "Угроза")]


def test_an_export_too_large_asks_to_narrow(app, client, login, world):
    for i in range(3):
        make_incident(world["people"]["doctor"], T0 + timedelta(minutes=i))
    app.config["REVIEW_EXPORT_MAX_ROWS"] = 2
    login(world["people"]["manager"])
    response = client.get(f"{BASE}/export.csv")
    assert response.status_code == 422
    assert {e["field"] for e in response.get_json()["errors"]} == {"from", "to"}


# ---------------------------------------------------------------- figures


def test_percentile_is_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([60.0, 120.0, 180.0, 240.0, 600.0], 0.5) == 180.0
    assert percentile([60.0, 120.0, 180.0, 240.0, 600.0], 0.9) == pytest.approx(456.0)


def test_figures_for_a_known_dataset(client, login, world):
    p, (post_a, _) = world["people"], world["posts"]
    doctor, driver = p["doctor"], p["driver"]
    # March (local): parts 1, 1, 3; April: part 5 and one not in force (no part).
    # 2026-03-31 19:30 UTC is already 1 April 00:30 in Almaty.
    make_incident(doctor, datetime(2026, 3, 2, 6, tzinfo=UTC), delay_s=60, part=1,
                  post=post_a, ack_after_s=30)
    make_incident(doctor, datetime(2026, 3, 15, 6, tzinfo=UTC), delay_s=120, part=1,
                  post=post_a, ack_after_s=90)
    make_incident(driver, datetime(2026, 3, 31, 18, 59, tzinfo=UTC), delay_s=180, part=3,
                  post=post_a, ack_after_s=300)
    make_incident(driver, datetime(2026, 3, 31, 19, 30, tzinfo=UTC), delay_s=240, part=5,
                  post=post_a)  # never acknowledged
    make_incident(doctor, datetime(2026, 4, 20, 6, tzinfo=UTC), delay_s=600, part=None,
                  victim_role="nurse")
    make_incident(doctor, datetime(2026, 5, 1, 6, tzinfo=UTC))  # outside the range
    make_incident(p["crew_b"], datetime(2026, 3, 3, 6, tzinfo=UTC))  # another station
    login(p["manager"])
    body = get(client, f"{BASE}/figures", **{"from": "2026-02-01", "to": "2026-04-30",
                                             "lang": "ru"})
    assert body["from"] == "2026-02-01" and body["to"] == "2026-04-30" and body["total"] == 5
    assert body["by_month"] == [
        {"month": "2026-02", "total": 0, "by_part": {}},
        {"month": "2026-03", "total": 3, "by_part": {"1": 2, "3": 1}},
        {"month": "2026-04", "total": 2, "by_part": {"5": 1, "none": 1}},
    ]
    station = world["stations"][0]
    assert body["by_station"] == [{"key": str(station.id), "label": station.name, "count": 5}]
    jobs = {j["key"]: (j["count"], j["label"]) for j in body["by_job"]}
    assert jobs["doctor"][0] == 2 and jobs["driver"][0] == 2 and jobs["nurse"][0] == 1
    assert jobs["nurse"][1]  # labelled in the chosen language
    assert body["tap_to_sync"] == {"count": 5, "median_s": 180.0, "p90_s": 456.0}
    assert body["sync_to_ack"] == {"count": 3, "median_s": 90.0, "p90_s": 258.0}


def test_figures_from_and_to_in_the_middle_of_months(client, login, world):
    """The first and last months are cut at the chosen local days, not at month ends."""
    p = world["people"]
    doctor, driver = p["doctor"], p["driver"]
    make_incident(doctor, datetime(2026, 3, 9, 18, 59, tzinfo=UTC))  # 9 March 23:59 local
    make_incident(doctor, datetime(2026, 3, 9, 19, 1, tzinfo=UTC), part=3)  # 10 March 00:01
    make_incident(driver, datetime(2026, 3, 20, 6, tzinfo=UTC), victim_role="nurse")
    make_incident(driver, datetime(2026, 4, 5, 18, 30, tzinfo=UTC), part=None)  # 5 Apr 23:30
    make_incident(doctor, datetime(2026, 4, 5, 19, 30, tzinfo=UTC))  # 6 April 00:30 local
    make_incident(p["crew_b"], datetime(2026, 3, 20, 6, tzinfo=UTC))  # another station
    login(p["manager"])
    body = get(client, f"{BASE}/figures", **{"from": "2026-03-10", "to": "2026-04-05"})
    assert body["total"] == 3
    assert body["by_month"] == [
        {"month": "2026-03", "total": 2, "by_part": {"1": 1, "3": 1}},
        {"month": "2026-04", "total": 1, "by_part": {"none": 1}},
    ]
    station = world["stations"][0]
    assert body["by_station"] == [{"key": str(station.id), "label": station.name, "count": 3}]
    assert {j["key"]: j["count"] for j in body["by_job"]} == {"doctor": 1, "driver": 1,
                                                               "nurse": 1}
    assert body["tap_to_sync"]["count"] == 3
    # One day: one month, cut at both ends.
    body = get(client, f"{BASE}/figures", **{"from": "2026-03-10", "to": "2026-03-10"})
    assert body["by_month"] == [{"month": "2026-03", "total": 1, "by_part": {"3": 1}}]


def test_figures_default_to_twelve_months_and_refuse_bad_dates(client, login, world):
    login(world["people"]["manager"])
    body = get(client, f"{BASE}/figures")
    assert len(body["by_month"]) == 12 and body["total"] == 0
    assert body["tap_to_sync"] == {"count": 0, "median_s": None, "p90_s": None}
    bad = client.get(f"{BASE}/figures", query_string={"from": "2026-02-30"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "from"


# ---------------------------------------------------------------- devices


def test_device_health(client, login, world):
    p = world["people"]
    now = datetime.now(UTC)

    def device(person, device_id, outbox, batch, ago):
        db.session.add(SyncDevice(person_id=person.id, device_id=device_id,
                                  station_id=person.station_id, app_version="0.1.0+abc",
                                  outbox_size=outbox, last_sync_at=now - ago,
                                  last_sent_at=now - ago, clock_skew_s=0.0,
                                  last_batch_size=batch))

    device(p["doctor"], "phone-ok", 3, 3, timedelta(hours=5))        # sent all it held
    device(p["driver"], "phone-stuck", 7, 2, timedelta(hours=2))     # 5 left, 2 h ago
    device(p["doctor"], "phone-recent", 4, 1, timedelta(minutes=10))  # 3 left, just now
    device(p["crew_b"], "phone-b", 9, 0, timedelta(hours=9))         # another station
    db.session.add(PushSubscription(person_id=p["driver"].id, endpoint="https://push.example/1",
                                    p256dh="k", auth="a", device_id="phone-stuck"))
    db.session.commit()
    login(p["manager"])
    body = get(client, f"{BASE}/devices")
    assert body["stale_after_s"] == 3600
    rows = [(d["device_id"], d["left_unsynced"], d["stale"], d["push"]["status"],
             d["storage_persisted"]) for d in body["devices"]]
    assert rows == [("phone-stuck", 5, True, "subscribed", None),
                    ("phone-recent", 3, False, "none", None),
                    ("phone-ok", 0, False, "none", None)]
    assert body["devices"][0]["person"]["display_name"] == "Ержан"
    assert body["devices"][0]["app_version"] == "0.1.0+abc"


def test_openapi_documents_the_review_endpoints(client):
    doc = client.get("/api/openapi.json").get_json()
    params = {x["name"] for x in doc["paths"]["/api/v1/review/incidents"]["get"]["parameters"]}
    assert {"from", "to", "kind", "part", "status", "reporter_id", "post_id", "police_needed",
            "q", "sort", "cursor", "limit"} <= params
    assert "/api/v1/review/access-log" in doc["paths"]



def test_filter_options(client, login, world):
    login(world["people"]["manager"])
    body = get(client, f"{BASE}/options")
    assert {c["display_name"] for c in body["crew"]} == {"Айгерим", "Ержан"}
    assert {p["id"] for p in body["posts"]} >= {world["posts"][0].id}
    assert [s["id"] for s in body["stations"]] == [world["stations"][0].id]


# ---------------------------------------------------------------- several stations

@pytest.mark.parametrize("sort", ["-occurred_at", "occurred_at", "-received_at", "received_at"])
def test_pages_across_several_stations_merge_in_order(client, login, world, sort):
    """A manager of two stations: each page is merged from both stations' own runs."""
    p = world["people"]
    made = []
    for i in range(17):
        # Interleaved stations, with ties across them on the instant.
        reporter = (p["doctor"], p["crew_b"], p["driver"])[i % 3]
        made.append(make_incident(reporter, T0 + timedelta(minutes=i // 2),
                                  delay_s=60 + 30 * (i % 3), police_needed=i % 4 == 0))
    login(make_person("manager", stations=world["stations"]))
    for params, expected in (({}, made), ({"police_needed": "true"},
                                          [m for m in made if m.police_needed])):
        seen, cursor = [], None
        while True:
            page = get(client, f"{BASE}/incidents", sort=sort, limit=4, **params,
                       **({"cursor": cursor} if cursor else {}))
            assert page["total"] == len(expected)
            seen.extend(i["id"] for i in page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        by_id = {str(i.id): i for i in expected}
        assert len(seen) == len(set(seen)) and set(seen) == set(by_id)
        keys = [(getattr(by_id[i], sort.lstrip("-")), i) for i in seen]
        assert keys == sorted(keys, reverse=sort.startswith("-"))


def test_figures_across_several_stations(client, login, world):
    p = world["people"]
    for _ in range(2):
        make_incident(p["crew_b"], datetime(2026, 3, 2, 6, tzinfo=UTC))
    make_incident(p["doctor"], datetime(2026, 3, 2, 6, tzinfo=UTC))
    make_incident(p["doctor"], datetime(2026, 4, 2, 6, tzinfo=UTC), part=3)
    make_incident(p["driver"], datetime(2026, 4, 3, 6, tzinfo=UTC))
    login(make_person("manager", stations=world["stations"]))
    body = get(client, f"{BASE}/figures", **{"from": "2026-03-01", "to": "2026-04-30"})
    a, b = world["stations"]
    assert body["total"] == 5
    assert [m["total"] for m in body["by_month"]] == [3, 2]
    assert body["by_month"][1]["by_part"] == {"1": 1, "3": 1}
    assert body["by_station"] == [{"key": str(a.id), "label": a.name, "count": 3},
                                  {"key": str(b.id), "label": b.name, "count": 2}]
    assert sum(j["count"] for j in body["by_job"]) == 5
