"""Settings: defaults here, overridden by QORGAU_* environment variables.

Every setting `X` below can be set as the environment variable `QORGAU_X`
(values are parsed as JSON when they parse, e.g. QORGAU_MAX_CONTENT_LENGTH=65536).
The database comes from DATABASE_URL (default: a SQLite file in the instance
folder). Secrets are never stored in the repository: SECRET_KEY comes from the
environment or is generated once into the instance folder.
"""

import os
import secrets
from pathlib import Path

ENV_PREFIX = "QORGAU"

DEFAULTS = {
    # Bodies above this are refused with 413 before they are read.
    "MAX_CONTENT_LENGTH": 256 * 1024,
    "JSON_SORT_KEYS": False,
    # WebAuthn relying party; the origins a passkey ceremony may come from.
    "RP_ID": "localhost",
    "RP_NAME": "Qorgau",
    "ALLOWED_ORIGINS": ["http://localhost:5000", "http://127.0.0.1:5000"],
    # Only the one-command local run sets this (see the README).
    "DEMO": False,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
}


def _instance_secret(instance_path: str, name: str) -> str:
    """Read a secret from the instance folder, creating it once (mode 0600)."""
    path = Path(instance_path) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def configure_app(app, overrides: dict | None) -> None:
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env(ENV_PREFIX)
    os.makedirs(app.instance_path, exist_ok=True)
    default_db = "sqlite:///" + os.path.join(app.instance_path, "qorgau.db")
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        os.environ.get("DATABASE_URL", default_db)
    )
    if overrides:
        app.config.update(overrides)
        if "DATABASE_URL" in overrides:
            app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
                overrides["DATABASE_URL"]
            )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path, "secret_key")


def normalise_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
