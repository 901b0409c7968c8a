"""`flask sms ...`: what the gateway delivered (and why a message was refused),
and sending the replies that are due."""

import click
from flask.cli import AppGroup

from api.sms import outbox, service
from api.sms.models import SmsOutcome

sms_cli = AppGroup("sms", help="The SMS fallback: received messages and replies.")


@sms_cli.command("inbound")
@click.option("--outcome", type=click.Choice([o.value for o in SmsOutcome]), default=None,
              help="Only messages with this outcome (e.g. rejected).")
@click.option("--limit", default=50, show_default=True)
def inbound_command(outcome, limit):
    """The latest received messages, newest first, with what became of each."""
    rows = service.recent(outcome=SmsOutcome(outcome) if outcome else None, limit=limit)
    for row in rows:
        what = row.case_number or row.reason or ""
        click.echo(f"{row.received_at:%Y-%m-%d %H:%M:%S} {row.outcome.value:8} {what:20} "
                   f"from {row.sender or '?'} {row.detail}".rstrip())
    if not rows:
        click.echo("no messages")


@sms_cli.command("send")
def send_command():
    """Send the replies that are due now (the push worker also does, every tick)."""
    click.echo(f"tried {outbox.drain()} reply(ies)")
