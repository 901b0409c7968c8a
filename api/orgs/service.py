"""The rules for organisation data. No Flask request objects here."""

import csv
import io
from dataclasses import dataclass, field

from marshmallow import ValidationError
from sqlalchemy import select

from api import listeners
from api.db import utcnow
from api.errors import flatten_errors
from api.extensions import db
from api.orgs.models import Person, PolicePost, Position, Region, Role, Station
from api.orgs.schemas import OrgRowSchema, PersonSchema

CSV_COLUMNS = ["type", "code", "name", "region", "address", "lat", "lon", "default_post"]


def region_code(value: str | None) -> str | None:
    """'KZ-75', 'kz-75' and '75' all name Almaty; None if it names no region."""
    if not value:
        return None
    code = value.strip().upper().removeprefix("KZ-")
    return code if db.session.get(Region, code) else None


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


def parse_org_csv(text: str) -> tuple[list[tuple[int, dict]], list[RowError]]:
    """Rows with their line numbers, and header errors. Blank lines are skipped."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("type", "code", "name", "region") if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    errors = []
    if missing:
        errors.append(RowError(1, "header", f"missing column(s): {', '.join(missing)}"))
    if unknown:
        errors.append(RowError(1, "header", f"unknown column(s): {', '.join(unknown)}; "
                                            f"expected {', '.join(CSV_COLUMNS)}"))
    if errors:
        return [], errors
    reader.fieldnames = header
    rows = []
    for raw in reader:
        if None in raw:
            errors.append(RowError(reader.line_num, "row", "more values than columns"))
            continue
        values = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
        if not any(values.values()):
            continue
        rows.append((reader.line_num, {k: v for k, v in values.items() if v not in ("", None)}))
    return rows, errors


def import_orgs(text: str) -> ImportResult:
    """Create or update stations and posts by code; any bad row imports nothing.

    Idempotent: importing the same file again changes nothing.
    """
    rows, errors = parse_org_csv(text)
    result = ImportResult(errors=errors)
    if errors:
        return result
    schema = OrgRowSchema()
    valid: list[tuple[int, dict]] = []
    seen: dict[tuple[str, str], int] = {}
    for line, raw in rows:
        try:
            data = schema.load(raw)
        except ValidationError as err:
            result.errors += [RowError(line, e["field"], e["message"])
                              for e in flatten_errors(err.messages)]
            continue
        code = region_code(data["region"])
        if code is None:
            result.errors.append(RowError(line, "region", f"unknown region code {data['region']!r}"
                                                          " (use ISO 3166-2:KZ, e.g. KZ-75)"))
            continue
        data["region"] = code
        key = (data["type"], data["code"])
        if key in seen:
            result.errors.append(RowError(line, "code", f"{data['type']} {data['code']!r} is "
                                                        f"already on line {seen[key]}"))
            continue
        seen[key] = line
        valid.append((line, data))

    post_codes = {code for (kind, code) in seen if kind == "post"}
    for line, data in valid:
        wanted = data.get("default_post")
        if wanted and wanted not in post_codes and not _post_by_code(wanted):
            result.errors.append(RowError(line, "default_post",
                                          f"no police post with code {wanted!r}"))
    if result.errors:
        return result

    # Posts first, so stations in the same file can name them.
    for _, data in sorted(valid, key=lambda item: item[1]["type"] != "post"):
        outcome = _upsert_post(data) if data["type"] == "post" else _upsert_station(data)
        setattr(result, outcome, getattr(result, outcome) + 1)
    db.session.commit()
    return result


def _post_by_code(code: str) -> PolicePost | None:
    return db.session.scalar(select(PolicePost).where(PolicePost.code == code))


def _station_by_code(code: str) -> Station | None:
    return db.session.scalar(select(Station).where(Station.code == code))


def _apply(obj, values: dict) -> str:
    """Set attributes; 'created', 'updated' or 'unchanged'."""
    is_new = obj.id is None
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    if is_new:
        db.session.add(obj)
        db.session.flush()
        return "created"
    return "updated" if changed else "unchanged"


def _upsert_post(data: dict) -> str:
    post = _post_by_code(data["code"]) or PolicePost(code=data["code"])
    return _apply(post, {"hospital_name": data["name"], "region_code": data["region"],
                         "address": data.get("address"), "lat": data.get("lat"),
                         "lon": data.get("lon")})


def _upsert_station(data: dict) -> str:
    station = _station_by_code(data["code"]) or Station(code=data["code"])
    post = _post_by_code(data["default_post"]) if data.get("default_post") else None
    return _apply(station, {"name": data["name"], "region_code": data["region"],
                            "address": data.get("address"), "lat": data.get("lat"),
                            "lon": data.get("lon"),
                            "default_post_id": post.id if post else None})


def add_person(values: dict) -> Person:
    """Validate and create a person; ValidationError names the offending field."""
    data = PersonSchema().load(values)
    role: Role = data["role"]
    errors: dict[str, list[str]] = {}
    station_codes = [c.strip() for c in (data.get("station") or "").split(",") if c.strip()]
    stations = []
    for code in station_codes:
        station = _station_by_code(code)
        if station is None:
            errors.setdefault("station", []).append(f"no station with code {code!r}")
        stations.append(station)
    post = None
    if data.get("post"):
        post = _post_by_code(data["post"])
        if post is None:
            errors.setdefault("post", []).append(f"no police post with code {data['post']!r}")

    if role == Role.CREW:
        if data.get("position") is None:
            errors.setdefault("position", []).append(
                "A crew member needs a position: " + ", ".join(p.value for p in Position))
        if len(station_codes) != 1:
            errors.setdefault("station", []).append("A crew member belongs to exactly one station.")
    elif data.get("position") is not None:
        errors.setdefault("position", []).append("Only crew members have a position.")
    if role == Role.MANAGER and not station_codes:
        errors.setdefault("station", []).append("A station manager manages at least one station.")
    if role == Role.POLICE and not data.get("post"):
        errors.setdefault("post", []).append("A police officer belongs to a police post.")
    if role != Role.POLICE and data.get("post"):
        errors.setdefault("post", []).append("Only police officers belong to a post.")
    if role in (Role.POLICE, Role.ADMIN) and station_codes:
        errors.setdefault("station", []).append(f"A {role.value} has no station.")
    if errors:
        raise ValidationError(errors)

    person = Person(display_name=data["display_name"].strip(), role=role,
                    position=data.get("position"), language=data["language"], post=post)
    if role == Role.CREW:
        person.station = stations[0]
    if role == Role.MANAGER:
        person.managed_stations = stations
    db.session.add(person)
    db.session.commit()
    return person


# Told of changes to people, in the caller's transaction (see api.listeners):
# person_deactivated(person_id). api.auth listens, registered in create_app.
person_listeners: list = []


def deactivate_person(person_id: int) -> Person | None:
    """Mark a person inactive; they can no longer sign in. Their records stay.

    Every session ends at once, and their passkeys and open invitations are
    revoked too: an inactive person holds no live credential, so coming back
    means a fresh invitation (not a phone that was out of our hands meanwhile).
    """
    person = db.session.get(Person, person_id)
    if person is None:
        return None
    if person.active:
        person.active = False
        person.deactivated_at = utcnow()
        db.session.commit()
    # api.auth revokes every credential (registered in create_app).
    listeners.call(person_listeners, "person_deactivated", person.id)
    return person


def people_in_scope(actor: Person) -> list[Person]:
    """Whom `actor` may manage devices for: an admin everyone, a manager their crew."""
    query = select(Person).order_by(Person.display_name, Person.id)
    if actor.role == Role.MANAGER:
        query = query.where(Person.role == Role.CREW,
                            Person.station_id.in_(actor.station_ids_in_scope() or {-1}))
    elif actor.role != Role.ADMIN:
        return []
    return list(db.session.scalars(query))


def stations_for_new_people(actor: Person) -> list[dict]:
    """Stations `actor` may add people to: a manager's own, every one for an admin."""
    if actor.role == Role.MANAGER:
        stations = sorted(actor.managed_stations, key=lambda s: (s.name, s.code))
    elif actor.role == Role.ADMIN:
        stations = list(db.session.scalars(select(Station).order_by(Station.name, Station.code)))
    else:
        stations = []
    return [{"code": s.code, "name": s.name} for s in stations]


def list_people(include_inactive: bool = True) -> list[Person]:
    query = select(Person).order_by(Person.id)
    if not include_inactive:
        query = query.where(Person.active.is_(True))
    return list(db.session.scalars(query))
