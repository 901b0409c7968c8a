"""Regions, stations, police posts and people, through the API and the CLI."""

from sqlalchemy import func, select

from api.extensions import db
from api.orgs.models import Person, PolicePost, Station

GOOD_CSV = """type,code,name,region,address,lat,lon,default_post
post,AST-P1,City Hospital No. 1 Astana,KZ-71,,51.1300,71.4300,
station,AST-S1,Substation 1,KZ-71,"Kenesary 1",51.1600,71.4400,AST-P1
station,AST-S2,Substation 2,71,,,,
"""


def counts():
    return (db.session.scalar(select(func.count()).select_from(Station)),
            db.session.scalar(select(func.count()).select_from(PolicePost)))


def write(tmp_path, text, name="orgs.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_all_twenty_regions_are_loaded_by_the_migration(client):
    regions = client.get("/api/v1/regions").get_json()["regions"]
    assert len(regions) == 20
    by_code = {r["iso_code"]: r for r in regions}
    assert by_code["KZ-75"]["name_en"] == "Almaty" and by_code["KZ-75"]["is_city"]
    assert by_code["KZ-62"]["name_kk"] == "Ұлытау облысы"
    assert sum(r["is_city"] for r in regions) == 3


def test_import_creates_then_is_idempotent(runner, tmp_path):
    path = write(tmp_path, GOOD_CSV)
    first = runner.invoke(args=["orgs", "import", path])
    assert first.exit_code == 0, first.output
    assert "2 created" not in first.output and "3 created" in first.output
    assert counts() == (2, 1)
    station = db.session.scalar(select(Station).where(Station.code == "AST-S1"))
    assert station.default_post.code == "AST-P1"
    assert station.region_code == "71"

    again = runner.invoke(args=["orgs", "import", path])
    assert again.exit_code == 0
    assert "0 created, 0 updated, 3 unchanged" in again.output
    assert counts() == (2, 1)


def test_import_updates_changed_rows(runner, tmp_path):
    runner.invoke(args=["orgs", "import", write(tmp_path, GOOD_CSV)])
    changed = GOOD_CSV.replace("Substation 2", "Substation Two")
    result = runner.invoke(args=["orgs", "import", write(tmp_path, changed, "b.csv")])
    assert "0 created, 1 updated, 2 unchanged" in result.output
    assert db.session.scalar(select(Station.name).where(Station.code == "AST-S2")) == \
        "Substation Two"


def test_any_bad_row_imports_nothing_and_every_bad_row_is_reported(runner, tmp_path):
    bad = (GOOD_CSV
           + "station,AST-S3,Substation 3,KZ-99,,,,\n"         # line 5: unknown region
           + "station,AST-S4,Substation 4,KZ-71,,91,71,\n"     # line 6: latitude
           + "post,AST-P1,Duplicate,KZ-71,,,,\n"               # line 7: duplicate code
           + "station,AST-S5,Substation 5,KZ-71,,,,NOPE\n"     # line 8: unknown post
           + "clinic,AST-C1,Clinic,KZ-71,,,,\n")               # line 9: type
    result = runner.invoke(args=["orgs", "import", write(tmp_path, bad)])
    assert result.exit_code == 1
    out = result.output
    assert "line 5: region: unknown region code 'KZ-99'" in out
    assert "line 6: lat:" in out
    assert "line 7: code: post 'AST-P1' is already on line 2" in out
    assert "line 8: default_post: no police post with code 'NOPE'" in out
    assert "line 9: type:" in out
    assert "Nothing imported: 5 error(s)." in out
    assert counts() == (0, 0)


def test_bad_file_leaves_earlier_data_untouched(runner, tmp_path):
    runner.invoke(args=["orgs", "import", write(tmp_path, GOOD_CSV)])
    bad = GOOD_CSV.replace("Substation 2,71", "Renamed,KZ-00")
    result = runner.invoke(args=["orgs", "import", write(tmp_path, bad, "bad.csv")])
    assert result.exit_code == 1
    assert db.session.scalar(select(Station.name).where(Station.code == "AST-S2")) == \
        "Substation 2"


def test_bad_header_is_reported(runner, tmp_path):
    result = runner.invoke(args=["orgs", "import",
                                 write(tmp_path, "kind,code,name\nstation,X,Y\n")])
    assert result.exit_code == 1
    assert "line 1: header: missing column(s): type, region" in result.output
    assert "unknown column(s): kind" in result.output


def test_orgs_list_shows_posts_and_stations(runner, tmp_path):
    runner.invoke(args=["orgs", "import", write(tmp_path, GOOD_CSV)])
    out = runner.invoke(args=["orgs", "list"]).output
    assert "post     AST-P1" in out
    assert "station  AST-S1           KZ-71  Substation 1  (post: AST-P1)" in out


def test_people_add_list_deactivate(runner, tmp_path):
    runner.invoke(args=["orgs", "import", write(tmp_path, GOOD_CSV)])
    added = runner.invoke(args=["people", "add", "--name", "Асель Нурова", "--role", "crew",
                                "--position", "nurse", "--station", "AST-S1",
                                "--language", "kk"])
    assert added.exit_code == 0, added.output
    person = db.session.scalar(select(Person).where(Person.display_name == "Асель Нурова"))
    assert person.station.code == "AST-S1" and person.position.value == "nurse"

    listed = runner.invoke(args=["people", "list"]).output
    assert "crew/nurse" in listed and "Асель Нурова" in listed and "active" in listed

    gone = runner.invoke(args=["people", "deactivate", str(person.id)])
    assert gone.exit_code == 0
    db.session.refresh(person)
    assert person.active is False and person.deactivated_at is not None
    assert "Асель Нурова" not in runner.invoke(args=["people", "list", "--active-only"]).output

    missing = runner.invoke(args=["people", "deactivate", "999999"])
    assert missing.exit_code == 1 and "No person with id 999999" in missing.output


def test_people_add_names_what_is_wrong(runner, tmp_path):
    runner.invoke(args=["orgs", "import", write(tmp_path, GOOD_CSV)])
    no_position = runner.invoke(args=["people", "add", "--name", "A", "--role", "crew",
                                      "--station", "AST-S1"])
    assert no_position.exit_code == 1
    assert "--position: A crew member needs a position" in no_position.output

    no_post = runner.invoke(args=["people", "add", "--name", "B", "--role", "police"])
    assert "--post: A police officer belongs to a police post." in no_post.output

    unknown = runner.invoke(args=["people", "add", "--name", "C", "--role", "manager",
                                  "--station", "AST-S1,GHOST"])
    assert "--station: no station with code 'GHOST'" in unknown.output
    assert db.session.scalar(select(func.count()).select_from(Person)) == 0


def test_manager_can_manage_several_stations(runner, tmp_path):
    runner.invoke(args=["orgs", "import", write(tmp_path, GOOD_CSV)])
    result = runner.invoke(args=["people", "add", "--name", "M", "--role", "manager",
                                 "--station", "AST-S1,AST-S2"])
    assert result.exit_code == 0, result.output
    manager = db.session.scalar(select(Person).where(Person.display_name == "M"))
    assert {s.code for s in manager.managed_stations} == {"AST-S1", "AST-S2"}
    assert len(manager.station_ids_in_scope()) == 2


def test_demo_seed_is_realistic_and_repeatable(runner):
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    roles = {p.role.value for p in db.session.scalars(select(Person))}
    assert roles == {"crew", "manager", "police", "admin"}
    positions = {p.position.value for p in db.session.scalars(select(Person)) if p.position}
    assert positions == {"doctor", "feldsher", "nurse", "driver"}
    assert all(s.region_code == "75" and s.default_post for s in db.session.scalars(
        select(Station)))
    second = runner.invoke(args=["demo", "seed"])
    assert "0 created" in second.output and "0 people added" in second.output
    assert counts() == (3, 3)


def test_posts_list_for_signed_in_people_own_region_first(client, login):
    from tests.factories import make_person, make_post, make_station

    make_post(code="AST-P", region="71", name="Astana Hospital")
    almaty = make_post(code="ALA-P", region="75", name="Almaty Hospital")
    assert client.get("/api/v1/posts").status_code == 401
    login(make_person("crew", station=make_station(region="75", default_post=almaty)))
    posts = client.get("/api/v1/posts").get_json()["posts"]
    assert [p["code"] for p in posts] == ["ALA-P", "AST-P"]
    assert posts[0]["hospital_name"] == "Almaty Hospital" and posts[0]["region_code"] == "75"
