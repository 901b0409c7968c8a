"""The migrations build exactly the models' schema, and come down cleanly."""

import uuid
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select, text

from api import create_app
from api.extensions import db
from api.incidents.models import Incident
from api.orgs.models import Region
from tests.factories import make_person, make_post


def test_upgrade_matches_models_and_downgrade_to_base(empty_database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": empty_database_url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"migrations and models differ: {diff}"
        assert db.session.scalar(select(func.count()).select_from(Region)) == 20
        db.session.remove()

        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}

        upgrade()  # and back up again, as a redeploy would
        assert db.session.scalar(select(func.count()).select_from(Region)) == 20
        db.session.remove()
        db.engine.dispose()


def test_0007_copies_each_acknowledgement_time_onto_its_incident(empty_database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": empty_database_url})
    with app.app_context():
        upgrade(revision="0006")
        person, post = make_person("crew", position="driver"), make_post()
        person_id, station_id, post_id = person.id, person.station_id, post.id
        db.session.remove()
        at = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
        acked_at = at + timedelta(minutes=4)
        ids = {"acknowledged": uuid.uuid4(), "waiting": uuid.uuid4(), "unrouted": uuid.uuid4()}
        # Written as the 0006 schema knew them: the time only on the alert.
        with db.engine.begin() as conn:
            sqlite = conn.dialect.name == "sqlite"

            def bind(value):
                if isinstance(value, uuid.UUID):
                    return value.hex if sqlite else value
                return value.replace(tzinfo=None).isoformat(sep=" ") if sqlite else value

            for name, ident in ids.items():
                conn.execute(text(
                    "INSERT INTO incidents (id, reporter_id, station_id, reporter_position, "
                    "tapped_at, tapped_offset_min, received_at, clock_skew_s, occurred_at, "
                    "updated_at, device_id, revision, kind, aggravating, victim_role, on_duty, "
                    "police_needed, note, status) VALUES (:id, :p, :s, 'driver', :t, 300, :t, "
                    "0.0, :t, :t, 'phone', 1, 'threat', '[]', 'driver', true, false, '', "
                    "'routed')"), {"id": bind(ident), "p": person_id, "s": station_id,
                                   "t": bind(at)})
                if name != "unrouted":
                    conn.execute(text(
                        "INSERT INTO police_alerts (incident_id, post_id, reason, routed_at, "
                        "acknowledged_at, region_code) VALUES (:i, :post, 'station_default', "
                        ":t, :ack, '75')"),
                        {"i": bind(ident), "post": post_id, "t": bind(at),
                         "ack": bind(acked_at) if name == "acknowledged" else None})
        upgrade()
        stored = {name: db.session.get(Incident, ident).acknowledged_at
                  for name, ident in ids.items()}
        assert stored == {"acknowledged": acked_at, "waiting": None, "unrouted": None}
        db.session.remove()
        db.engine.dispose()


def test_0010_keeps_each_taps_believed_time_as_logged_at_and_comes_down(empty_database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": empty_database_url})
    with app.app_context():
        upgrade(revision="0009")
        person = make_person("crew", position="driver")
        person_id, station_id = person.id, person.station_id
        db.session.remove()
        tapped = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
        # A trusted tap, and one from a clock two days fast, corrected by its skew.
        believed = {uuid.uuid4(): tapped, uuid.uuid4(): tapped - timedelta(days=2)}
        with db.engine.begin() as conn:
            sqlite = conn.dialect.name == "sqlite"

            def bind(value):
                if isinstance(value, uuid.UUID):
                    return value.hex if sqlite else value
                return value.replace(tzinfo=None).isoformat(sep=" ") if sqlite else value

            for ident, occurred in believed.items():
                conn.execute(text(
                    "INSERT INTO incidents (id, reporter_id, station_id, reporter_position, "
                    "tapped_at, tapped_offset_min, received_at, clock_skew_s, occurred_at, "
                    "updated_at, device_id, revision, kind, aggravating, victim_role, on_duty, "
                    "police_needed, note, status) VALUES (:id, :p, :s, 'driver', :t, 300, :t, "
                    "0.0, :o, :t, 'phone', 1, 'threat', '[]', 'driver', true, false, '', "
                    "'logged')"), {"id": bind(ident), "p": person_id, "s": station_id,
                                   "t": bind(tapped), "o": bind(occurred)})
        upgrade()
        for ident, occurred in believed.items():
            incident = db.session.get(Incident, ident)
            assert incident.logged_at == occurred == incident.occurred_at
            assert incident.occurred_at_pending is None
        db.session.remove()

        downgrade(revision="0009")
        columns = {c["name"] for c in inspect(db.engine).get_columns("incidents")}
        assert {"logged_at", "occurred_at_pending"}.isdisjoint(columns)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM incidents")).scalar() == 2
        db.session.remove()
        db.engine.dispose()
