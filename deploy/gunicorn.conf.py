"""gunicorn settings for Qorgau's API (`gunicorn -c deploy/gunicorn.conf.py 'api:create_app()'`).

nginx sits in front (nginx/): it terminates TLS, buffers slow phones' uploads
and downloads, and serves the PWA's files, so gunicorn only ever talks to nginx
over a fast local link. Each value can be overridden by an environment variable
(set in /etc/qorgau/qorgau.env) or by a command-line flag.
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Where nginx's `upstream` points. Loopback on one server; the host's private
# address when nginx runs on another machine (firewall it to nginx only).
bind = os.environ.get("QORGAU_BIND", "127.0.0.1:8000")

# Workers from cores: the classic 2 x cores + 1, each with a few threads so a
# request waiting on PostgreSQL does not hold a whole process. Every thread can
# hold a database connection: hosts x workers x threads must stay below
# PostgreSQL's max_connections (docs/deploy.md).
workers = _int("QORGAU_WORKERS", 2 * multiprocessing.cpu_count() + 1)
worker_class = "gthread"
threads = _int("QORGAU_THREADS", 2)

# A request may take at most 30 s (nginx waits 35 s, so the API answers first;
# a worker stuck longer is killed and restarted). Keep-alive outlives nginx's
# upstream keep-alive so nginx, not gunicorn, closes idle connections.
timeout = _int("QORGAU_TIMEOUT", 30)
graceful_timeout = 30
keepalive = 75
# nginx refuses a URL or a header line over 4 KB itself, as problem+json
# (large_client_header_buffers in nginx/nginx.conf.template); gunicorn takes
# twice that, so its own text/html 400/414 pages never reach a client.
limit_request_line = 8190
limit_request_field_size = 8190

# Recycle workers now and then so a slow leak never grows unbounded.
max_requests = 2000
max_requests_jitter = 200

# Forwarding headers are trusted by the application only (api/proxy.py, with
# QORGAU_PROXY_COUNT=1), never by gunicorn itself: one place decides.
secure_scheme_headers = {}
forwarded_allow_ips = ""

# nginx writes the access log; errors go to stderr, i.e. the journal.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("QORGAU_LOG_LEVEL", "info")
proc_name = "qorgau-api"
# No runtime control socket (it would be created in $HOME).
control_socket_disable = True
