"""The migrations build exactly the models' schema, and come down cleanly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select

from api import create_app
from api.extensions import db
from api.orgs.models import Region


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
