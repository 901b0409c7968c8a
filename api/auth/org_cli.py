"""`flask orgs ...` and `flask people ...`.

api.orgs' commands: here, above api.orgs, because the people commands issue
invitations and review passkeys (api.auth.service)."""

import io
import sys

import click
from flask import current_app
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import select

from api.auth import service as auth
from api.auth.models import Passkey
from api.auth.service import DEFAULT_INVITATION_HOURS, MAX_INVITATION_HOURS
from api.errors import Problem, flatten_errors
from api.extensions import db
from api.orgs import service
from api.orgs.models import Language, Person, PolicePost, Position, Role, Station

orgs_cli = AppGroup("orgs", help="Stations and police posts.")
people_cli = AppGroup("people", help="People who sign in to Qorgau.")


@orgs_cli.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8"))
def import_command(csv_file):
    """Create or update stations and posts from CSV; a file with a bad row imports nothing.

    Columns: type (station|post), code, name, region (KZ-75 or 75), address,
    lat, lon, default_post (a station's default police post code).
    """
    result = service.import_orgs(csv_file.read())
    if result.errors:
        for error in result.errors:
            click.echo(f"{csv_file.name}: {error}", err=True)
        click.echo(f"Nothing imported: {len(result.errors)} error(s).", err=True)
        sys.exit(1)
    click.echo(f"Imported: {result.created} created, {result.updated} updated, "
               f"{result.unchanged} unchanged.")


@orgs_cli.command("list")
def list_command():
    """Every police post and station, by region."""
    for post in db.session.scalars(select(PolicePost).order_by(PolicePost.region_code,
                                                               PolicePost.code)):
        click.echo(f"post     {post.code:<16} KZ-{post.region_code}  {post.hospital_name}")
    for st in db.session.scalars(select(Station).order_by(Station.region_code, Station.code)):
        default = st.default_post.code if st.default_post else "-"
        click.echo(f"station  {st.code:<16} KZ-{st.region_code}  {st.name}  (post: {default})")


@people_cli.command("add")
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--position", type=click.Choice([p.value for p in Position]),
              help="Crew members only.")
@click.option("--station", help="Station code (crew); comma-separated codes (manager).")
@click.option("--post", help="Police post code (police officers).")
@click.option("--language", default="ru", type=click.Choice([lang.value for lang in Language]))
def add_command(**values):
    """Add a person."""
    try:
        person = service.add_person({k: v for k, v in values.items() if v is not None})
    except ValidationError as err:
        for error in flatten_errors(err.messages):
            click.echo(f"--{error['field']}: {error['message']}", err=True)
        sys.exit(1)
    click.echo(f"Added person {person.id}: {person.display_name} ({person.role.value}).")


@people_cli.command("list")
@click.option("--active-only", is_flag=True)
def people_list_command(active_only):
    """Every person with their role and unit."""
    for p in service.list_people(include_inactive=not active_only):
        unit = (p.station.code if p.station else p.post.code if p.post else
                ",".join(s.code for s in p.managed_stations) or "-")
        job = f"{p.role.value}/{p.position.value}" if p.position else p.role.value
        state = "active" if p.active else "inactive"
        click.echo(f"{p.id:>5}  {job:<14} {unit:<20} {p.language.value}  {state:<8} "
                   f"{p.display_name}")


@people_cli.command("deactivate")
@click.argument("person_id", type=int)
def deactivate_command(person_id):
    """Deactivate a person: they can no longer sign in; their records stay."""
    person = service.deactivate_person(person_id)
    if person is None:
        click.echo(f"No person with id {person_id}.", err=True)
        sys.exit(1)
    click.echo(f"Deactivated person {person.id}: {person.display_name}.")


@people_cli.command("invite")
@click.argument("person_id", type=int)
@click.option("--hours", default=DEFAULT_INVITATION_HOURS, show_default=True,
              type=click.IntRange(1, MAX_INVITATION_HOURS),
              help="How long the link works.")
def invite_command(person_id, hours):
    """A one-time link (and QR code) for a person to register a passkey on their phone.

    Prints the link and the QR code, and writes the QR code as a PNG to
    instance/invitations/<id>.png. Any unused earlier link stops working.
    """
    person = db.session.get(Person, person_id)
    if person is None:
        click.echo(f"No person with id {person_id}.", err=True)
        sys.exit(1)
    try:
        issued = auth.invite_person(person, base_url=current_app.config["BASE_URL"],
                                       hours=hours)
    except Problem as err:
        click.echo(f"{err.title}: {err.detail}", err=True)
        sys.exit(1)
    png = auth.write_invitation_png(issued, current_app.instance_path)
    expires = issued.invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    click.echo(f"Invitation for {person.display_name} (person {person.id}), "
               f"works once, until {expires}:")
    click.echo(issued.url)
    click.echo()
    qr_text = io.StringIO()
    issued.qr.terminal(out=qr_text, compact=True)
    click.echo(qr_text.getvalue())
    click.echo(f"QR code image: {png}")


@people_cli.command("flagged-passkeys")
def flagged_passkeys_command():
    """Passkeys held for review (their sign count went backwards: a possible clone)."""
    rows = auth.flagged_passkeys()
    for p in rows:
        click.echo(f"passkey {p.id:>5}  person {p.person_id:>5} {p.person.display_name}  "
                   f"'{p.device_label}'  {p.flag_reason}")
    click.echo(f"{len(rows)} passkey(s) held for review.")


@people_cli.command("review-passkey")
@click.argument("passkey_id", type=int)
@click.option("--clear", "decision", flag_value="clear",
              help="It is the person's own device: allow it again.")
@click.option("--revoke", "decision", flag_value="revoke",
              help="It may be a clone: revoke it and end the sessions it started.")
def review_passkey_command(passkey_id, decision):
    """Decide on a passkey held for review."""
    passkey = db.session.get(Passkey, passkey_id)
    if passkey is None or passkey.flagged_at is None or passkey.revoked_at is not None:
        click.echo(f"No passkey {passkey_id} is held for review.", err=True)
        sys.exit(1)
    if decision is None:
        click.echo("Say --clear or --revoke.", err=True)
        sys.exit(2)
    if decision == "clear":
        auth.clear_passkey_flag(passkey)
        click.echo(f"Passkey {passkey.id} of {passkey.person.display_name} may sign in again.")
    else:
        ended = auth.revoke_passkey(passkey)
        click.echo(f"Passkey {passkey.id} of {passkey.person.display_name} revoked; "
                   f"{ended} session(s) ended.")
