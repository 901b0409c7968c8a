"""`flask ledger verify`: walk every chain and check every receipt."""

import sys
import uuid

import click
from flask.cli import AppGroup

from api.ledger import service

ledger_cli = AppGroup("ledger", help="Tamper evidence: hash chains and signed receipts.")


@ledger_cli.command("verify")
@click.option("--incident", "incident_id", type=click.UUID, default=None,
              help="Check one incident only.")
def verify(incident_id: uuid.UUID | None):
    """Recompute every hash chain and check every receipt; exit 1 at any break."""
    report = service.verify_all(incident_id)
    click.echo(f"incidents: {report.incidents}  events: {report.events}  "
               f"receipts: {report.receipts}")
    click.echo(f"broken chains: {len(report.broken_chains)}  "
               f"bad receipts: {len(report.bad_receipts)}")
    click.echo(f"files: {report.files}  changed or missing: {len(report.bad_files)}")
    if report.ok:
        click.echo("OK: every chain links, every receipt verifies and every file matches.")
        return
    if report.broken_chains:
        click.echo(f"FIRST BROKEN LINK: {report.broken_chains[0]}")
    for receipt, problem in report.bad_receipts[:1]:
        click.echo(f"FIRST BAD RECEIPT: incident {receipt.incident_id} revision "
                   f"{receipt.revision}: {problem}")
    for problem in report.bad_files[:20]:
        click.echo(f"BAD FILE: {problem}")
    for broken in report.broken_chains[1:20]:
        click.echo(f"  also: {broken}")
    for receipt, problem in report.bad_receipts[1:20]:
        click.echo(f"  also: receipt incident {receipt.incident_id} revision "
                   f"{receipt.revision}: {problem}")
    sys.exit(1)
