"""`flask demo seed`: a small, realistic data set for the one-command local run."""

from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from api.extensions import db
from api.orgs import service as orgs
from api.orgs.models import Person

demo_cli = AppGroup("demo", help="Demo data for a local run.")

DEMO_ORGS = Path(__file__).with_name("demo_orgs.csv")

# One person of each role (and each crew position) at the Almaty demo stations.
DEMO_PEOPLE = [
    {"display_name": "Айгерим Сапарова", "role": "crew", "position": "feldsher",
     "station": "ALA-SS01", "language": "ru"},
    {"display_name": "Данияр Ахметов", "role": "crew", "position": "doctor",
     "station": "ALA-SS01", "language": "kk"},
    {"display_name": "Ольга Ким", "role": "crew", "position": "nurse",
     "station": "ALA-SS05", "language": "ru"},
    {"display_name": "Ерлан Жумабеков", "role": "crew", "position": "driver",
     "station": "ALA-SS01", "language": "kk"},
    {"display_name": "Гульнара Оспанова", "role": "manager", "station": "ALA-SS01,ALA-SS05",
     "language": "ru"},
    {"display_name": "Капитан Нурлан Сеитов", "role": "police", "post": "ALA-BSNP",
     "language": "kk"},
    {"display_name": "Demo Administrator", "role": "admin", "language": "en"},
]


def seed_demo() -> tuple[orgs.ImportResult, int]:
    """Load the demo stations and posts, and the demo people once. Safe to repeat."""
    result = orgs.import_orgs(DEMO_ORGS.read_text(encoding="utf-8"))
    if result.errors:
        raise click.ClickException("demo data is invalid: " + "; ".join(map(str, result.errors)))
    added = 0
    if not db.session.scalar(select(func.count()).select_from(Person)):
        for values in DEMO_PEOPLE:
            orgs.add_person(values)
            added += 1
    return result, added


@demo_cli.command("seed")
def seed_command():
    """Almaty: three substations, police posts at three city hospitals, one person per role."""
    result, added = seed_demo()
    click.echo(f"Demo organisations: {result.created} created, {result.updated} updated, "
               f"{result.unchanged} unchanged; {added} people added.")
