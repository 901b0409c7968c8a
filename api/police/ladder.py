"""The escalation ladder: who else hears of a police alert nobody has taken, and when.

Per region, a list of steps, each `after_seconds` from the moment the alert
was routed (or re-routed) and naming its targets:

  post            the alerted post's officers, again
  region_posts    the region's other posts (their officers may then take it)
  managers        the crew member's station managers
  admins          every active administrator
  person:ID       one named person (e.g. the region's duty officer)

A region without steps uses the default ladder, today's single step: after
POLICE_ESCALATE_AFTER_SECONDS, the region's other posts and the station's
managers. The ladder applies to every police alert: an ordinary one, an SOS
(an incident marked police-needed-now) and an overdue check-in timer (which
becomes such an incident, api.checkin). It stops when someone acknowledges.

The steps live in the `escalation_steps` table, set with
`flask escalation set REGION AFTER:TARGET[,TARGET] ...` (docs/checkin.md).
The push worker runs them (api.police.routing.escalate_overdue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import delete, select
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import db
from api.orgs.models import Person, Region

TARGETS = ("post", "region_posts", "managers", "admins")
PERSON = re.compile(r"^person:(\d+)$")


class EscalationStep(db.Model):
    __tablename__ = "escalation_steps"

    region_code: Mapped[str] = mapped_column(
        db.ForeignKey("regions.code", ondelete="CASCADE"), primary_key=True)
    level: Mapped[int] = mapped_column(db.Integer, primary_key=True, autoincrement=False)
    after_seconds: Mapped[int] = mapped_column(db.Integer)
    targets: Mapped[list] = mapped_column(db.JSON)


@dataclass(frozen=True)
class Step:
    level: int
    after_seconds: int
    targets: tuple[str, ...]


def default_ladder() -> list[Step]:
    return [Step(1, int(current_app.config["POLICE_ESCALATE_AFTER_SECONDS"]),
                 ("region_posts", "managers"))]


def steps_for(region_code: str) -> list[Step]:
    """The region's ladder, in order (the default one if none is set)."""
    rows = db.session.scalars(select(EscalationStep).where(
        EscalationStep.region_code == region_code).order_by(EscalationStep.level)).all()
    if not rows:
        return default_ladder()
    return [Step(r.level, r.after_seconds, tuple(r.targets)) for r in rows]


def step_after(region_code: str, level: int) -> Step | None:
    """The step after `level` steps have been taken, or None when the ladder is done."""
    steps = steps_for(region_code)
    return steps[level] if level < len(steps) else None


def first_step_at(region_code: str, routed_at: datetime, cache: dict | None = None):
    """When an alert routed at `routed_at` in this region first needs looking at."""
    if cache is not None and region_code in cache:
        step = cache[region_code]
    else:
        step = step_after(region_code, 0)
        if cache is not None:
            cache[region_code] = step
    return None if step is None else routed_at + timedelta(seconds=step.after_seconds)


def parse_step(text: str) -> tuple[int, list[str]]:
    """"AFTER:TARGET[,TARGET...]" (AFTER in seconds, or with m: "5m") -> (seconds, targets)."""
    after, _, targets = text.partition(":")
    after = after.strip().lower()
    try:
        seconds = int(after[:-1]) * 60 if after.endswith("m") else int(after)
    except ValueError:
        raise click.BadParameter(f"{text!r}: the delay must be seconds (or minutes: 5m)",
                                 param_hint="STEP") from None
    names = [t.strip() for t in targets.split(",") if t.strip()]
    if seconds < 0 or not names:
        raise click.BadParameter(f"{text!r}: give AFTER:TARGET[,TARGET]", param_hint="STEP")
    for name in names:
        match = PERSON.match(name)
        if match:
            if db.session.get(Person, int(match.group(1))) is None:
                raise click.BadParameter(f"{name}: no such person", param_hint="STEP")
        elif name not in TARGETS:
            raise click.BadParameter(
                f"{name}: targets are {', '.join(TARGETS)} or person:ID", param_hint="STEP")
    return seconds, names


# ---------------------------------------------------------------------------
# flask escalation ...

escalation_cli = AppGroup("escalation", help="The escalation ladder of each region.")


def _show(region_code: str) -> None:
    rows = db.session.scalars(select(EscalationStep).where(
        EscalationStep.region_code == region_code)).all()
    label = "" if rows else " (default)"
    for step in steps_for(region_code):
        click.echo(f"{region_code}{label} {step.level}: after {step.after_seconds} s -> "
                   f"{', '.join(step.targets)}")


@escalation_cli.command("set")
@click.argument("region")
@click.argument("steps", nargs=-1, required=True)
def set_command(region, steps):
    """Replace REGION's ladder: STEPS are AFTER:TARGET[,TARGET], each AFTER counted
    from the alert, in seconds or minutes (5m), later than the one before.
    Targets: post, region_posts, managers, admins, person:ID."""
    if db.session.get(Region, region) is None:
        raise click.BadParameter(f"{region}: no such region (a code such as 75)",
                                 param_hint="REGION")
    parsed = [parse_step(s) for s in steps]
    delays = [seconds for seconds, _ in parsed]
    if delays != sorted(set(delays)):
        raise click.BadParameter("each step must come later than the one before",
                                 param_hint="STEPS")
    db.session.execute(delete(EscalationStep).where(EscalationStep.region_code == region))
    for level, (seconds, targets) in enumerate(parsed, start=1):
        db.session.add(EscalationStep(region_code=region, level=level,
                                      after_seconds=seconds, targets=targets))
    db.session.commit()
    _show(region)


@escalation_cli.command("clear")
@click.argument("region")
def clear_command(region):
    """Forget REGION's ladder: it uses the default one again."""
    db.session.execute(delete(EscalationStep).where(EscalationStep.region_code == region))
    db.session.commit()
    _show(region)


@escalation_cli.command("list")
def list_command():
    """Every region's ladder (those without one use the default)."""
    regions = db.session.scalars(select(EscalationStep.region_code).distinct()).all()
    for region in sorted(regions):
        _show(region)
    default = default_ladder()[0]
    click.echo(f"default 1: after {default.after_seconds} s -> {', '.join(default.targets)}")
