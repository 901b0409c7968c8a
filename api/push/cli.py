"""`flask push ...`: the VAPID key, the worker, the outbox at a glance."""

import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from api.extensions import db
from api.push.models import PushOutbox
from api.push.vapid import key_file, public_key

push_cli = AppGroup("push", help="Web Push: VAPID key and the outbox worker.")


@push_cli.command("vapid")
def vapid_command():
    """Print the VAPID public key (made once into the instance folder if not configured)."""
    click.echo(public_key(current_app))
    if not current_app.config.get("PUSH_VAPID_PRIVATE_KEY"):
        click.echo(f"(private key: {key_file(current_app)})", err=True)


@push_cli.command("worker")
@click.option("--once", is_flag=True, help="Send what is due and check escalations, then exit.")
def worker_command(once):
    """Drain the notification outbox until stopped (SIGTERM or Ctrl+C)."""
    from api.push.worker import PushWorker

    worker = PushWorker(current_app._get_current_object())
    if once:
        click.echo(f"sent or settled {worker.tick()} notification(s)")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"push worker {worker.name} running")
    worker.run(stop)


@push_cli.command("status")
def status_command():
    """Count the outbox rows by status."""
    rows = db.session.execute(select(PushOutbox.status, func.count())
                              .group_by(PushOutbox.status).order_by(PushOutbox.status))
    for status, count in rows:
        click.echo(f"{status}: {count}")
