#!/usr/bin/env python3
"""Render Qorgau's nginx configuration from nginx.conf.template and snippets/.

    python3 nginx/render.py --out /etc/nginx/qorgau \
        --server-name qorgau.example.kz \
        --cert /etc/letsencrypt/live/qorgau.example.kz/fullchain.pem \
        --key /etc/letsencrypt/live/qorgau.example.kz/privkey.pem

writes OUT/nginx.conf and OUT/snippets/*.conf (a complete nginx.conf: run
nginx with `-c OUT/nginx.conf`). Only ${UPPER_CASE} placeholders are filled in;
every other `$` is an nginx variable and is left alone. Standard library only,
so it runs with any python3 on the server.
"""

import argparse
import re
import sys
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent

DEFAULTS = {
    "server_name": "qorgau.example.kz",
    "http_listen": "80",
    "https_listen": "443",
    "cert": "/etc/letsencrypt/live/qorgau.example.kz/fullchain.pem",
    "key": "/etc/letsencrypt/live/qorgau.example.kz/privkey.pem",
    "pwa_root": "/opt/qorgau/app/pwa",
    "upstream": "127.0.0.1:8000",
    # The API's MAX_CONTENT_LENGTH (api/config.py), in bytes.
    "body_limit": "262144",
    "user": "www-data",
    "log_dir": "/var/log/nginx",
    "state_dir": "/var/lib/nginx",
    "acme_root": "/var/www/letsencrypt",
    # How long nginx waits for gunicorn to read a request or answer it (504 after);
    # a little more than gunicorn's own worker timeout (deploy/gunicorn.conf.py).
    "api_timeout": "35s",
    # Syncs nginx lets through to gunicorn at once (all phones together): about
    # three times gunicorn's threads (workers x threads, deploy/gunicorn.conf.py).
    "sync_in_flight": "32",
}


class ConfTemplate(Template):
    """string.Template that substitutes only ${UPPER_CASE} names."""

    flags = re.VERBOSE  # no IGNORECASE: $host and ${host} are nginx's
    pattern = r"""
        \$(?:
            (?P<escaped>(?!))                 |
            (?P<named>(?!))                   |
            \{(?P<braced>[A-Z][A-Z0-9_]*)\}   |
            (?P<invalid>(?!))
        )
    """


def _listens(addresses: str, extra: str) -> tuple[str, str]:
    """`listen` lines for the default server and for the named server."""
    items = [a.strip() for a in addresses.split(",") if a.strip()]
    if not items:
        raise ValueError("at least one listen address is needed")
    default = "\n".join(f"        listen {a}{extra} default_server;" for a in items)
    named = "\n".join(f"        listen {a}{extra};" for a in items)
    return default, named


def _port(address: str) -> int:
    last = address.rsplit("]", 1)[-1]  # an IPv6 literal's colons are not the port
    return int(last.rsplit(":", 1)[-1]) if ":" in last else int(address)


def parameters(options: dict) -> dict:
    """The template's placeholders from the (lower-case) options."""
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    if not re.fullmatch(r"[1-9][0-9]*", str(opts["sync_in_flight"])):
        raise ValueError(f"sync_in_flight must be a positive number, "
                         f"not {opts['sync_in_flight']!r}")
    if not re.fullmatch(r"[0-9]+[kKmM]?", str(opts["body_limit"])):
        raise ValueError(f"body_limit must be an nginx size, not {opts['body_limit']!r}")
    if not re.fullmatch(r"[0-9]+(ms|s|m)?", str(opts["api_timeout"])):
        raise ValueError(f"api_timeout must be an nginx time, not {opts['api_timeout']!r}")
    for name in ("server_name", "cert", "key", "pwa_root", "upstream", "log_dir",
                 "state_dir", "acme_root", "user"):
        if re.search(r"[\s;{}'\"$]", str(opts[name])):
            raise ValueError(f"{name} may not contain spaces, quotes, ';', '{{', '}}' or '$'")
    https_port = _port(opts["https_listen"].split(",")[0].strip())
    http_default, http_named = _listens(opts["http_listen"], "")
    https_default, https_named = _listens(opts["https_listen"], " ssl http2")
    return {
        "SERVER_NAME": opts["server_name"],
        "HTTP_LISTEN_DEFAULT": http_default,
        "HTTP_LISTEN": http_named,
        "HTTPS_LISTEN_DEFAULT": https_default,
        "HTTPS_LISTEN": https_named,
        "PUBLIC_PORT_SUFFIX": "" if https_port == 443 else f":{https_port}",
        "CERT": opts["cert"],
        "KEY": opts["key"],
        "PWA_ROOT": str(opts["pwa_root"]).rstrip("/") or "/",
        # Several app hosts: --upstream 10.0.0.11:8000,10.0.0.12:8000 (one server line each).
        "UPSTREAM_SERVERS": "\n".join(
            f"        server {u.strip()};" for u in str(opts["upstream"]).split(",")
            if u.strip()).lstrip(),
        "BODY_LIMIT": str(opts["body_limit"]),
        "API_TIMEOUT": str(opts["api_timeout"]),
        "SYNC_IN_FLIGHT": str(opts["sync_in_flight"]),
        "USER_LINE": f"user {opts['user']};" if opts["user"] else "",
        "LOG_DIR": opts["log_dir"],
        "STATE_DIR": opts["state_dir"],
        "ACME_ROOT": opts["acme_root"],
    }


def render(out: Path, **options) -> Path:
    """Write out/nginx.conf and out/snippets/; return the path of nginx.conf."""
    values = parameters(options)
    out = Path(out)
    (out / "snippets").mkdir(parents=True, exist_ok=True)
    for snippet in sorted((HERE / "snippets").glob("*.conf")):
        text = ConfTemplate(snippet.read_text()).substitute(values)
        (out / "snippets" / snippet.name).write_text(text)
    conf = out / "nginx.conf"
    conf.write_text(ConfTemplate((HERE / "nginx.conf.template").read_text()).substitute(values))
    return conf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path,
                        help="directory for nginx.conf and snippets/")
    for name, default in DEFAULTS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name,
                            help=f"default: {default!r}" if default else "default: none")
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    try:
        conf = render(out, **args)
    except (ValueError, KeyError) as err:
        parser.error(str(err))
    print(conf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
