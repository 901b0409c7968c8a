"""Settings: defaults here, overridden by QORGAU_* environment variables.

Every setting `X` below can be set as the environment variable `QORGAU_X`
(values are parsed as JSON when they parse, e.g. QORGAU_MAX_CONTENT_LENGTH=65536).
The database comes from DATABASE_URL (default: a SQLite file in the instance
folder). Secrets are never stored in the repository: SECRET_KEY comes from the
environment or is generated once into the instance folder.
"""

import os
import secrets
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    VERSION = version("qorgau")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0+source"

ENV_PREFIX = "QORGAU"

DEFAULTS = {
    # Bodies above this are refused with 413 before they are read.
    "MAX_CONTENT_LENGTH": 256 * 1024,
    "JSON_SORT_KEYS": False,
    # WebAuthn relying party; the origins a passkey ceremony may come from.
    "RP_ID": "localhost",
    "RP_NAME": "Qorgau",
    "ALLOWED_ORIGINS": ["http://localhost:5000", "http://127.0.0.1:5000"],
    # Invitation links point here: {BASE_URL}/#/enrol/<token>.
    "BASE_URL": "http://127.0.0.1:5000",
    # Only the one-command local run sets this (see the README).
    "DEMO": False,
    # Sign-in and enrolment attempts: [count, seconds] per client address, and
    # per invitation (fixed windows, counted in the database).
    "AUTH_RATE_LIMIT_PER_ADDRESS": [30, 60],
    "AUTH_RATE_LIMIT_PER_INVITATION": [10, 900],
    # Hazard-flag address look-ups: [count, seconds] per session, so nobody can
    # walk the streets one address at a time to rebuild the list of flags.
    "HAZARD_LOOKUP_LIMIT": [10, 60],
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    # Web Push. The VAPID private key comes from PUSH_VAPID_PRIVATE_KEY (PEM or
    # base64url) or is generated once into PUSH_VAPID_KEY_FILE (default:
    # vapid_private.pem in the instance folder).
    "PUSH_VAPID_PRIVATE_KEY": None,
    "PUSH_VAPID_KEY_FILE": None,
    "PUSH_VAPID_SUBJECT": "mailto:push@qorgau.kz",
    # The one-process local run drains the outbox in a thread; production runs
    # `flask push worker` processes instead.
    "PUSH_WORKER_THREAD": False,
    "PUSH_POLL_SECONDS": 2.0,
    "PUSH_SEND_TIMEOUT": 10.0,
    # How many due notifications a worker claims at once and sends side by side
    # (a send waits on the push service, not the CPU); police alerts are claimed first.
    "PUSH_SEND_BATCH": 16,
    # Subscriptions (and sends) only to these push services' hosts ("*." matches
    # any subdomain): FCM (Chrome, Edge, Android), Mozilla autopush, Apple, Windows.
    # [] lifts the restriction; endpoints must still be https with public addresses
    # (api/push/endpoints.py).
    "PUSH_ENDPOINT_HOSTS": ["fcm.googleapis.com", "*.push.services.mozilla.com",
                            "*.push.apple.com", "*.notify.windows.com"],
    # Test suite only (tests/conftest.py): its loopback push service, over http.
    # Never in production: it lets the server post to its own machine.
    "PUSH_ALLOW_LOOPBACK_FOR_TESTS": False,
    # Retries go on until a message's TTL runs out (0: no count limit). The cap
    # keeps the first try after a push-service outage within five minutes.
    "PUSH_MAX_ATTEMPTS": 0,
    "PUSH_RETRY_BASE_SECONDS": 5,
    "PUSH_RETRY_MAX_SECONDS": 300,
    # A police alert is useless after an hour; a crew confirmation keeps a day.
    "PUSH_TTL_ALERT": 3600,
    "PUSH_TTL_DEFAULT": 86400,
    # An SOS (api.sos): its pushes live only this long at the push service (a
    # minutes-old alarm is for escalation, not a late buzz); the crew's live
    # stream (server-sent events) ends after this many seconds and the phone
    # reconnects; wrong stand-down PINs in a row before they are refused for a while.
    "PUSH_TTL_SOS": 300,
    "SOS_STREAM_SECONDS": 25,
    # Live SOS streams one process serves at once (each holds a gunicorn thread);
    # keep it below QORGAU_THREADS. Over it, the screen looks again every 2 s.
    "SOS_MAX_STREAMS": 1,
    "SOS_MAX_WRONG_PINS": 5,
    "SOS_PIN_LOCK_SECONDS": 900,
    # The review list counts a text search's matches up to here, then says "more than".
    "REVIEW_SEARCH_TOTAL_CAP": 1000,
    # A crew member may state when an incident happened up to this many days
    # before the tap; an earlier time waits for a manager of the station.
    "STATED_TIME_MAX_DAYS_BEFORE_TAP": 7,
    # Load shedding (api/shedding.py): a request that waited longer than this
    # (nginx's X-Request-Start) is answered 503 + Retry-After before any work;
    # at most this many syncs run at once per process (gunicorn worker).
    "QUEUE_DEADLINE_SECONDS": 5.0,
    "SYNC_MAX_IN_FLIGHT": 2,
    # Unacknowledged alerts go to the region's other posts and the station managers.
    "POLICE_ESCALATE_AFTER_SECONDS": 300,
    # Check-in timers (api/checkin): the reminder this long before the end; the
    # police post this long after the managers were told nobody checked in.
    "CHECKIN_REMIND_BEFORE_SECONDS": 120,
    "CHECKIN_POLICE_AFTER_SECONDS": 300,
    # Several servers (docs/deploy.md). DATABASE_URL may name several hosts, libpq's
    # way (postgresql://u@10.0.0.5:5432,10.0.0.6:5432/qorgau?target_session_attrs=
    # read-write): the app connects to whichever is the primary. Behind PgBouncer in
    # transaction mode set DATABASE_PGBOUNCER: no server-side prepared statements.
    "DATABASE_PGBOUNCER": False,
    # The push worker's LISTEN needs a connection of its own to PostgreSQL itself
    # (PgBouncer's transaction mode cannot carry it); None: DATABASE_URL.
    "PUSH_LISTEN_DATABASE_URL": None,
    # A streaming replica the managers' list and figures may read from (None: the
    # primary); the console shows the lag once it passes REVIEW_REPLICA_LAG_WARN_SECONDS.
    "REVIEW_REPLICA_DATABASE_URL": None,
    "REVIEW_REPLICA_LAG_WARN_SECONDS": 5,
    # The SMS fallback (api/sms, docs/sms.md). The number crew phones text an
    # alarm to, by region code: {"75": "+77010000000", ...} (no number: no offer).
    "SMS_NUMBERS": {},
    # The inbound webhook's signing key (required for it to accept anything) and
    # how far its X-Timestamp may be from now; the gateway's send API for replies.
    "SMS_WEBHOOK_SECRET": None,
    "SMS_WEBHOOK_MAX_AGE_SECONDS": 300,
    "SMS_GATEWAY_URL": None,
    "SMS_GATEWAY_USER": None,
    "SMS_GATEWAY_PASSWORD": None,
    "SMS_SEND_TIMEOUT": 10.0,
    "SMS_RETRY_BASE_SECONDS": 5,
    "SMS_RETRY_MAX_SECONDS": 300,
    # A reply not sent within this long is given up (the case number is on the
    # phone by then, or the person has been called).
    "SMS_REPLY_GIVE_UP_SECONDS": 3600,
}


def read_or_create_secret(path: Path | str, make: Callable[[], bytes]) -> bytes:
    """A secret kept in a file (mode 0600) and made once; if another process
    makes it at the same moment, theirs is kept."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(make())
    return path.read_bytes()


def _instance_secret(instance_path: str, name: str) -> str:
    return read_or_create_secret(Path(instance_path) / name,
                                 lambda: secrets.token_urlsafe(48).encode()).decode().strip()


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
    """Accept the usual postgres:// spellings and use the psycopg 3 driver.

    libpq's multi-host form (user@h1:5432,h2:5432/db) becomes SQLAlchemy's
    (user@/db?host=h1:5432&host=h2:5432), which psycopg hands back to libpq."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
            break
    if url.startswith("postgresql+psycopg://"):
        url = _multi_host(url)
    return url


def _multi_host(url: str) -> str:
    scheme, rest = url.split("://", 1)
    netloc, _, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return url
    path, _, query = tail.partition("?")
    params = "&".join(f"host={h}" for h in hosts.split(",") if h)
    query = params + ("&" + query if query else "")
    return f"{scheme}://{userinfo}{at}/{path}?{query}"
