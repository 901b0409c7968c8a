"""Qorgau API: one Flask application built by create_app()."""

import logging
from pathlib import Path

from flask import Flask

from api.config import VERSION as __version__  # noqa: F401  (api.__version__)

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
    from api.shedding import init_shedding

    init_shedding(app)  # its before_request runs first: refusing is cheaper than any work
    configure_logging(app)
    configure_extensions(app)
    configure_listeners()
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
    # Import every model so the metadata is complete for Alembic and create_all.
    import api.models  # noqa: F401
    init_access(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    register_error_handlers(app)


_listeners_configured = False


def configure_listeners() -> None:
    """Who hears whom, all in this one place. The domains run one way (see
    docs/architecture.md and the import-linter contract in pyproject.toml): a
    lower one tells a higher one of its changes through a listener list
    (api/listeners.py), never by importing it.

    Once per process, by the first app: the lists are module-level, as the code
    they wire is (and a test may empty one for its own run)."""
    global _listeners_configured
    if _listeners_configured:
        return
    _listeners_configured = True
    from api import listeners
    from api.auth import service as auth
    from api.auth import sessions
    from api.incidents import records as incidents
    from api.incidents import sync
    from api.ledger import service as ledger
    from api.media import service as media
    from api.orgs import service as orgs
    from api.police import routing
    from api.push import service as push
    from api.push import worker

    # orgs -> auth: a deactivated person keeps no passkey, session or invitation.
    listeners.add(orgs.person_listeners, auth.PersonEvents)
    # auth -> push: revoked sessions and devices lose their push subscriptions;
    # a new passkey is announced to the person's other devices.
    sessions.register_listener(push.DeviceEvents)
    # incidents -> ledger: every incident event is sealed into its hash chain when
    # flushed; each sync's answer carries signed receipts.
    ledger.install_session_events()
    listeners.add(sync.sync_listeners, ledger)
    listeners.add(incidents.chain_listeners, ledger)
    # incidents -> police: each newly synced incident is routed to a police post,
    # whose officers get a push (api.push); a revision may reroute it.
    incidents.register_hook(routing)
    # ledger -> media: `flask ledger verify` re-hashes the stored files whose
    # hashes are attachment events in the chains.
    listeners.add(ledger.verify_listeners, media.FileCheck)
    # push -> police: every tick of the push worker first escalates overdue alerts.
    listeners.add(worker.tick_listeners, routing)
    # incidents -> sos: a new SOS opens its live alarm (after routing has chosen the
    # post) and the station's managers are told at once.
    from api.sos import service as sos

    incidents.register_hook(sos)
    # push -> checkin: then the check-in timers nobody answered (api/checkin).
    from api.checkin import service as checkin

    listeners.add(worker.tick_listeners, checkin)
    # push -> sms: every tick also sends the SMS replies that are due.
    from api.sms import outbox as sms_outbox
    listeners.add(worker.tick_listeners, sms_outbox)


def configure_blueprints(app: Flask) -> None:
    from werkzeug.routing import PathConverter

    class PwaPathConverter(PathConverter):
        """Any path outside /api/, so an unknown API route is a 404, never a 405."""

        regex = r"(?!api/)[^/].*?"

    app.url_map.converters["pwa_path"] = PwaPathConverter
    from api.auth.org_views import bp as orgs_bp
    from api.auth.views import bp as auth_bp
    from api.core.views import bp as core_bp
    from api.hazards.views import bp as hazards_bp
    from api.incidents.views import bp as incidents_bp
    from api.law.views import bp as law_bp
    from api.ledger.views import bp as ledger_bp
    from api.media.views import bp as media_bp
    from api.openapi import bp as openapi_bp
    from api.police.views import bp as police_bp
    from api.push.views import bp as push_bp
    from api.review.views import bp as review_bp
    from api.sos.views import bp as sos_bp

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
    app.register_blueprint(sos_bp, url_prefix="/api/v1/sos")
    app.register_blueprint(media_bp, url_prefix="/api/v1")
    from api.checkin.views import bp as checkin_bp

    app.register_blueprint(checkin_bp, url_prefix="/api/v1/checkin")
    from api.sms.views import bp as sms_bp
    app.register_blueprint(sms_bp, url_prefix="/api/v1/sms")


def configure_cli(app: Flask) -> None:
    from api.auth.org_cli import orgs_cli, people_cli
    from api.core.cli import demo_cli
    from api.ledger.cli import ledger_cli
    from api.push.cli import push_cli

    app.cli.add_command(push_cli)
    app.cli.add_command(ledger_cli)
    from api.police.ladder import escalation_cli

    app.cli.add_command(escalation_cli)
    from api.sms.cli import sms_cli
    app.cli.add_command(sms_cli)
    for group in (orgs_cli, people_cli, demo_cli):
        app.cli.add_command(group)
