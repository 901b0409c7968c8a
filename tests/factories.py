"""Test data made through the same models the app uses."""

import itertools

from api.extensions import db
from api.orgs.models import Language, Person, PolicePost, Position, Role, Station

_seq = itertools.count(1)


def make_post(code=None, region="75", lat=43.25, lon=76.92, name=None) -> PolicePost:
    n = next(_seq)
    post = PolicePost(code=code or f"POST-{n}", hospital_name=name or f"Hospital {n}",
                      region_code=region, lat=lat, lon=lon)
    db.session.add(post)
    db.session.commit()
    return post


def make_station(code=None, region="75", default_post=None, lat=43.26,
                 lon=76.93) -> Station:
    n = next(_seq)
    station = Station(code=code or f"ST-{n}", name=f"Substation {n}", region_code=region,
                      default_post=default_post, lat=lat, lon=lon)
    db.session.add(station)
    db.session.commit()
    return station


def make_person(role="crew", *, station=None, post=None, stations=(), position=None,
                language="en", name=None) -> Person:
    role = Role(role)
    n = next(_seq)
    person = Person(display_name=name or f"{role.value.title()} {n}", role=role,
                    language=Language(language))
    if role == Role.CREW:
        person.position = Position(position or "feldsher")
        person.station = station or make_station()
    elif role == Role.MANAGER:
        person.managed_stations = list(stations) or [station or make_station()]
    elif role == Role.POLICE:
        person.post = post or make_post()
    db.session.add(person)
    db.session.commit()
    return person
