"""Qorgau API: one Flask application built by create_app()."""

import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from flask import Flask

try:
    __version__ = version("qorgau")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

ROOT = Path(__file__).resolve().parent.parent
PWA_DIR = ROOT / "pwa"
MIGRATIONS_DIR = ROOT / "migrations"


def create_app(config: dict | None = None) -> Flask:
    """Build the application; `config` overrides settings (tests pass theirs here)."""
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    from api.config import configure_app

    configure_app(app, config)
    from api.proxy import configure_proxy
    from api.push.worker import start_worker_thread

    configure_proxy(app)
    configure_logging(app)
    configure_extensions(app)
    configure_blueprints(app)
    configure_cli(app)
    # Only the one-process local run sets PUSH_WORKER_THREAD; production runs
    # `flask push worker` as its own process.
    start_worker_thread(app)
    return app


def configure_logging(app: Flask) -> None:
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic announces each of its plugins at INFO on every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def configure_extensions(app: Flask) -> None:
    from api.auth.access import init_access
    from api.db import init_db
    from api.errors import register_error_handlers
    from api.extensions import db, migrate

    init_db(app)
    init_access(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    register_error_handlers(app)


def configure_blueprints(app: Flask) -> None:
    from werkzeug.routing import PathConverter

    class PwaPathConverter(PathConverter):
        """Any path outside /api/, so an unknown API route is a 404, never a 405."""

        regex = r"(?!api/)[^/].*?"

    app.url_map.converters["pwa_path"] = PwaPathConverter
    from api.auth.views import bp as auth_bp
    from api.core.views import bp as core_bp
    from api.hazards.views import bp as hazards_bp
    from api.incidents.views import bp as incidents_bp
    from api.law.views import bp as law_bp
    from api.ledger.views import bp as ledger_bp
    from api.openapi import bp as openapi_bp
    from api.orgs.views import bp as orgs_bp
    from api.police.views import bp as police_bp
    from api.push.views import bp as push_bp
    from api.review.views import bp as review_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(law_bp, url_prefix="/api/v1/law")
    app.register_blueprint(ledger_bp, url_prefix="/api/v1/ledger")
    app.register_blueprint(orgs_bp, url_prefix="/api/v1")
    app.register_blueprint(incidents_bp, url_prefix="/api/v1")
    app.register_blueprint(auth_bp, url_prefix="/api/v1/auth")
    app.register_blueprint(push_bp, url_prefix="/api/v1/push")
    app.register_blueprint(police_bp, url_prefix="/api/v1/police")
    app.register_blueprint(review_bp, url_prefix="/api/v1/review")
    app.register_blueprint(hazards_bp, url_prefix="/api/v1/hazards")


def configure_cli(app: Flask) -> None:
    from api.core.cli import demo_cli
    from api.ledger.cli import ledger_cli
    from api.orgs.cli import orgs_cli, people_cli
    from api.push.cli import push_cli

    app.cli.add_command(push_cli)
    app.cli.add_command(ledger_cli)
    for group in (orgs_cli, people_cli, demo_cli):
        app.cli.add_command(group)
