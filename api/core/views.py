"""Health check, and the PWA's files when no nginx stands in front."""

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify, send_from_directory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api import MIGRATIONS_DIR, PWA_DIR, __version__
from api.db import utcnow
from api.extensions import db
from api.law.service import local_date, rules

bp = Blueprint("core", __name__)


def migration_heads() -> set[str]:
    return set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


@bp.get("/api/health")
def health():
    """Database reachable, schema at the newest migration, and the version running."""
    body = {"version": __version__, "database": "ok", "migrations": "ok"}
    status = 200
    try:
        conn = db.session.connection()
        conn.execute(text("SELECT 1"))
        current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as err:
        current_app.logger.warning("health: database unreachable: %s", type(err).__name__)
        body["database"] = "unreachable"
        body["migrations"] = "unknown"
        return jsonify(body), 503
    # The MCI for the current local year is set by each year's budget law; until
    # someone adds it, classifications give amounts in MCI only, with a warning.
    today = local_date(utcnow())
    # December already asks for next year's value, so it is in place on 1 January.
    years = [today.year, today.year + 1] if today.month == 12 else [today.year]
    missing = [year for year in years if str(year) not in rules()["mci"]]
    if missing:
        body["warnings"] = [f"MCI for {year} is not configured in api/law/article_380_3.json"
                            for year in missing]
    heads = migration_heads()
    if current != heads:
        body["migrations"] = "behind"
        body["migrations_current"] = sorted(current)
        body["migrations_head"] = sorted(heads)
        status = 503
    return jsonify(body), status


# Files a browser must revalidate on every load: the service worker (so an
# update is noticed at once), the page that registers it, and the manifest.
REVALIDATE = {"sw.js", "index.html", "manifest.webmanifest"}
MIMETYPES = {".webmanifest": "application/manifest+json", ".js": "text/javascript"}


def _pwa_dir():
    # Tests serve a built copy of pwa/ (to exercise an update) through this setting.
    return current_app.config.get("PWA_DIR") or PWA_DIR


def _send(filename: str):
    suffix = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
    response = send_from_directory(_pwa_dir(), filename, max_age=0,
                                   mimetype=MIMETYPES.get(suffix))
    if filename in REVALIDATE:
        response.headers["Cache-Control"] = "no-cache"
    if filename == "sw.js":
        # Never let the worker be an old copy: the precache list lives in it.
        response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/")
def index():
    return _send("index.html")


@bp.get("/<pwa_path:filename>")
def pwa_file(filename: str):
    """The PWA's static files (nginx serves them itself in production)."""
    return _send(filename)
