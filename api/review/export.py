"""The managers' export: the filtered list as flat rows, streamed in the chosen
order, with headers in three languages. No Flask request objects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import aliased

from api.extensions import db
from api.incidents.models import Incident
from api.orgs.models import Person, PolicePost, Station
from api.review.models import ManagerNote
from api.review.service import (
    filter_clauses,
    sort_order,
    zone,
)

EXPORT_COLUMNS = ["case_number", "occurred_at_local", "received_at_local", "station",
                  "reporter", "reporter_position", "victim_role", "kind", "legal_status",
                  "legal_part", "aggravating", "status", "police_needed", "post",
                  "erdr_number", "lat", "lon", "note", "manager_note", "id"]

EXPORT_HEADERS = {
    "ru": ["Номер дела", "Время (местное)", "Получено (местное)", "Подстанция", "Сотрудник",
           "Должность", "Пострадавший", "Что произошло", "Квалификация", "Часть ст. 380-3",
           "Отягчающие обстоятельства", "Статус", "Нужна полиция", "Полицейский пост",
           "Номер ЕРДР", "Широта", "Долгота", "Заметка бригады", "Заметка руководителя",
           "Идентификатор"],
    "kk": ["Іс нөмірі", "Уақыты (жергілікті)", "Алынды (жергілікті)", "Шағын станция",
           "Қызметкер", "Лауазымы", "Зардап шеккен", "Не болды", "Саралау",
           "380-3-баптың бөлігі", "Ауырлататын мән-жайлар", "Мәртебесі", "Полиция керек",
           "Полиция бекеті", "СДТБТ нөмірі", "Ендік", "Бойлық", "Бригада жазбасы",
           "Басшы жазбасы", "Сәйкестендіргіш"],
    "en": ["Case number", "Time (local)", "Received (local)", "Station", "Crew member",
           "Position", "Victim", "What happened", "Classification", "Article 380-3 part",
           "Aggravating circumstances", "Status", "Police needed", "Police post",
           "ERDR number", "Latitude", "Longitude", "Crew note", "Manager's note", "Id"],
}


def _local_text(instant: datetime | None) -> str:
    return instant.astimezone(zone()).strftime("%Y-%m-%d %H:%M") if instant else ""


def export_rows(person: Person, f: dict, batch: int = 1000) -> Iterator[dict]:
    """Every incident matching the filters as flat dicts (EXPORT_COLUMNS), streamed."""
    _, column, descending = sort_order(f["sort"])
    order = (column.desc(), Incident.id.desc()) if descending else (column.asc(), Incident.id.asc())
    reporter = aliased(Person)
    query = (
        select(Incident.id, Incident.case_number, Incident.occurred_at, Incident.received_at,
               Station.name, reporter.display_name, Incident.reporter_position,
               Incident.victim_role, Incident.kind, Incident.legal_status, Incident.legal_part,
               Incident.aggravating, Incident.status, Incident.police_needed,
               PolicePost.hospital_name, Incident.erdr_number, Incident.lat, Incident.lon,
               Incident.note, ManagerNote.note)
        .join(Station, Station.id == Incident.station_id)
        .join(reporter, reporter.id == Incident.reporter_id)
        .outerjoin(PolicePost, PolicePost.id == Incident.post_id)
        .outerjoin(ManagerNote, ManagerNote.incident_id == Incident.id)
        .where(*filter_clauses(person, f)).order_by(*order)
        .execution_options(yield_per=batch))
    for row in db.session.execute(query):
        (ident, case_no, occurred, received, station, name, position, victim, kind, legal,
         part, aggravating, status, police, post, erdr, lat, lon, note, manager_note) = row
        yield {"id": str(ident), "case_number": case_no or "",
               "occurred_at_local": _local_text(occurred),
               "received_at_local": _local_text(received), "station": station,
               "reporter": name, "reporter_position": str(position.value if position else ""),
               "victim_role": victim, "kind": kind, "legal_status": legal or "",
               "legal_part": part, "aggravating": list(aggravating or []),
               "status": status.value if status else "", "police_needed": bool(police),
               "post": post or "", "erdr_number": erdr or "", "lat": lat, "lon": lon,
               "note": note or "", "manager_note": manager_note or ""}


