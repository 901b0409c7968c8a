"""Classify an incident's facts against Article 380-3, from the rules document.

Pure functions over `article_380_3.json`; no Flask here, so the same code
serves the API, CLI commands and tests. `pwa/js/law.js` implements the same
rules from the same document for offline use; keep the two in step
(tests/test_law_js.py compares them).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import date, datetime, tzinfo
from functools import cache
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RULES_PATH = Path(__file__).with_name("article_380_3.json")

# RFC 3339 date-time with an explicit offset; the PWA accepts the same form,
# so a string one side refuses the other refuses too.
_ISO_INSTANT = re.compile(
    r"^(\d{4})-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$",
    re.ASCII,
)
# An incident outside these years is a typo; near year 1 or 9999 Python's
# datetime would also overflow when shifted to local time.
MIN_YEAR, MAX_YEAR = 1900, 9998
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ACTS = ("threat", "violence_not_dangerous", "violence_dangerous")


class LawConfigError(Exception):
    """The rules document is wrong or incomplete: a server configuration error."""


@cache
def _load() -> tuple[bytes, dict]:
    raw = RULES_PATH.read_bytes()
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise LawConfigError(f"{RULES_PATH.name} is not valid JSON: {err}") from err
    check_rules(doc)
    return raw, doc


def rules() -> dict:
    """The rules document (a copy: callers may change it without harm)."""
    return copy.deepcopy(_load()[1])


def rules_bytes() -> bytes:
    """The document exactly as stored, so its bytes match its ETag."""
    return _load()[0]


@cache
def rules_etag() -> str:
    """A strong ETag (quoted, ready for the header) from the file's sha256."""
    return '"' + hashlib.sha256(_load()[0]).hexdigest() + '"'


def check_rules(doc: dict) -> None:
    """Refuse a document the classifier could not use, naming what is wrong."""
    try:
        langs = doc["languages"]
        if doc["default_language"] not in langs:
            raise LawConfigError("default_language is not one of languages")
        date.fromisoformat(doc["in_force_date"])
        _zone(doc["timezone"])
        for year, value in doc["mci"].items():
            if not (year.isdigit() and isinstance(value, int) and value > 0):
                raise LawConfigError(f"mci[{year!r}] must be a positive whole number of tenge")
        parts = {(p["act"], p["aggravated"]): p["number"] for p in doc["parts"]}
        if sorted(p["number"] for p in doc["parts"]) != [1, 2, 3, 4, 5, 6] or len(parts) != 6:
            raise LawConfigError("parts must be 1-6, one per act and variant")
        for act in _ACTS:
            if (act, False) not in parts or (act, True) not in parts:
                raise LawConfigError(f"parts lack the plain or aggravated variant of {act}")
        reason_codes = {r["code"] for r in doc["reasons"]}
        for kind in doc["kinds"]:
            if kind["act"] is None and kind.get("reason") not in reason_codes:
                raise LawConfigError(f"kind {kind['id']} has no act and no known reason")
            if kind["act"] is not None and kind["act"] not in _ACTS:
                raise LawConfigError(f"kind {kind['id']} has an unknown act {kind['act']}")
        for part in doc["parts"]:
            for penalty in part["penalties"]:
                variants = doc["penalty_templates"][penalty["type"]]
                # A year without an MCI needs the MCI-only wording (from 1 January
                # until the new value is added).
                for mci_known in (True, False):
                    if _variant(penalty, mci_known) not in variants:
                        raise LawConfigError(
                            f"no {_variant(penalty, mci_known)} template for {penalty['type']}")
        if not isinstance(doc.get("warnings"), dict) or "mci_missing" not in doc["warnings"]:
            raise LawConfigError("warnings lacks mci_missing")
        for code in ("left_scope", "entered_scope", "mci_year"):
            if code not in doc["time_change"]:
                raise LawConfigError(f"time_change lacks {code}")
        lacking = {"within", "within_aggravated", "outside", "pending"} - set(
            doc["summary_templates"])
        if lacking:
            raise LawConfigError(f"summary_templates lacks {', '.join(sorted(lacking))}")
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, LawConfigError):
            raise
        raise LawConfigError(f"the law rules are incomplete or malformed: {err!r}") from err
    _check_translations(doc, langs, "")
    # Render every penalty both ways now, so a bad placeholder fails at load
    # rather than on the first incident of a year without an MCI.
    try:
        for lang in langs:
            for part in doc["parts"]:
                for penalty in part["penalties"]:
                    _penalty(penalty, 1, doc, lang)
                    _penalty(penalty, None, doc, lang)
            _mci_missing(2000, doc, lang)
    except (KeyError, TypeError, ValueError) as err:
        raise LawConfigError(f"the law rules do not render: {err!r}") from err


def _check_translations(node, langs: list[str], where: str) -> None:
    # Any object keyed by a language is a text and must have every language.
    if isinstance(node, dict):
        if any(lang in node for lang in langs):
            missing = [lang for lang in langs if not isinstance(node.get(lang), str)]
            if missing:
                raise LawConfigError(f"{where or 'document'} lacks text in {', '.join(missing)}")
            return
        for key, value in node.items():
            _check_translations(value, langs, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_translations(value, langs, f"{where}[{i}]")


@cache
def _zone(name: str) -> tzinfo:
    # Legal dates must not depend on the age of the host's tz database (Almaty
    # moved from UTC+6 to UTC+5 on 2024-03-01, tzdata 2024a), so prefer the
    # pinned `tzdata` package and fall back to the system database.
    try:
        with files("tzdata.zoneinfo").joinpath(name).open("rb") as fh:
            return ZoneInfo.from_file(fh, key=name)
    except (ModuleNotFoundError, FileNotFoundError, IsADirectoryError, ValueError):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise LawConfigError(f"unknown time zone {name!r}") from err


def _variant(penalty: dict, mci_known: bool) -> str:
    """The penalty template to use; the one place that chooses it."""
    base = "range" if ("min_mci" in penalty or "min_years" in penalty) else "up_to"
    in_mci = "min_mci" in penalty or "max_mci" in penalty
    return base if mci_known or not in_mci else f"{base}_mci_only"


def _render(template: str, values: dict) -> str:
    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise LawConfigError(f"template placeholder {{{name}}} has no value: {template!r}")
        return str(values[name])

    return _PLACEHOLDER.sub(sub, template)


def _number(n: int, doc: dict, lang: str) -> str:
    return f"{n:,}".replace(",", doc["number_format"]["group_separator"][lang])


def _format_date(d: date, doc: dict, lang: str) -> str:
    return _render(doc["date_format"][lang],
                   {"year": f"{d.year:04d}", "month": f"{d.month:02d}", "day": f"{d.day:02d}"})


def parse_instant(value) -> datetime:
    """An aware datetime from a datetime or an RFC 3339 string; naive times are refused."""
    if isinstance(value, str):
        if not _ISO_INSTANT.match(value):
            raise ValueError(
                "occurred_at must be an ISO 8601 date-time with a UTC offset, "
                f"e.g. 2026-03-07T10:15:00+05:00; got {value!r}"
            )
        try:
            value = datetime.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"occurred_at is not a valid date-time: {value!r}") from err
    if not isinstance(value, datetime):
        raise ValueError(f"occurred_at must be a date-time; got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("occurred_at must include a UTC offset (a naive time is ambiguous)")
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"occurred_at must be in the years {MIN_YEAR}-{MAX_YEAR}; got {value}")
    return value


def in_force_date(doc: dict | None = None) -> date:
    """The first local date on which the article applies."""
    doc = doc if doc is not None else _load()[1]
    return date.fromisoformat(doc["in_force_date"])


def local_date(occurred_at, doc: dict | None = None) -> date:
    """The incident's legal date: its instant seen in Kazakhstan's time zone."""
    doc = doc if doc is not None else _load()[1]
    return parse_instant(occurred_at).astimezone(_zone(doc["timezone"])).date()


def _choice(facts: dict, field: str, options: dict) -> dict:
    if field not in facts:
        raise ValueError(f"{field} is required")
    value = facts[field]
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{field} must be one of {', '.join(options)}; got {value!r}")
    return options[value]


def classify(facts: dict, lang: str = "en", *, rules: dict | None = None) -> dict:
    """A provisional classification of `facts` under Article 380-3.

    `facts`: kind, aggravating (circumstance ids), victim_role, on_duty (on
    duty, in connection with duty or in revenge for it), occurred_at. `rules`
    replaces the stored document (tests use it to change one value).
    Raises ValueError naming the field for an unknown value. In a year the
    MCI table lacks, amounts stay in MCI (no tenge, never zero) and
    `warnings` says so.
    """
    doc = rules if rules is not None else _load()[1]
    if lang not in doc["languages"]:
        raise ValueError(f"lang must be one of {', '.join(doc['languages'])}; got {lang!r}")
    if not isinstance(facts, dict):
        raise ValueError("facts must be a mapping")

    kind = _choice(facts, "kind", {k["id"]: k for k in doc["kinds"]})
    role = _choice(facts, "victim_role", {r["id"]: r for r in doc["victim_roles"]})
    circumstances = {c["id"]: c for c in doc["aggravating_circumstances"]}
    given = facts.get("aggravating")
    if given is None:
        given = []
    if not isinstance(given, list | tuple | set | frozenset):
        raise ValueError("aggravating must be a list of circumstance ids")
    for cid in given:
        if cid not in circumstances:
            raise ValueError(
                f"aggravating must contain only {', '.join(circumstances)}; got {cid!r}"
            )
    on_duty = facts.get("on_duty")
    if not isinstance(on_duty, bool):
        raise ValueError(f"on_duty must be true or false; got {on_duty!r}")
    if "occurred_at" not in facts:
        raise ValueError("occurred_at is required")
    day = local_date(facts["occurred_at"], doc)

    found = set()
    if day < date.fromisoformat(doc["in_force_date"]):
        found.add("before_in_force")
    if not role["protected"]:
        found.add("victim_not_protected")
    if not on_duty:
        found.add("not_on_duty")
    if kind["act"] is None:
        found.add(kind["reason"])
    # Reasons are reported in the document's order; an outside reason wins
    # over "pending", since no detail still to come could bring the act in.
    outside = [r for r in doc["reasons"] if r["code"] in found and r["status"] == "outside"]
    pending = [r for r in doc["reasons"] if r["code"] in found and r["status"] == "pending"]
    status = "outside" if outside else "pending" if pending else "within"

    mci_kzt = doc["mci"].get(str(day.year))
    result = {
        "status": status,
        "article": doc["article"],
        "part": None,
        "aggravated": False,
        "aggravating": [],
        "penalties": [],
        "mci_year": day.year,
        "mci_kzt": mci_kzt,
        "investigated_by": None,
        "summary": "",
        "reason": None,
        "reasons": [],
        "warnings": [],
        "disclaimer": doc["disclaimer"][lang],
        "local_date": day.isoformat(),
        "rules_version": doc["version"],
        "lang": lang,
    }

    if status != "within":
        in_force = _format_date(date.fromisoformat(doc["in_force_date"]), doc, lang)
        reasons = [
            {"code": r["code"], "text": _render(r["text"][lang], {"in_force_date": in_force})}
            for r in (outside or pending)
        ]
        result["reasons"] = reasons
        result["reason"] = reasons[0]
        result["summary"] = _render(doc["summary_templates"][status][lang],
                                    {"article": doc["article"], "reason": reasons[0]["text"]})
        return result

    applied = [cid for cid in circumstances if cid in given]
    aggravated = bool(applied)
    part = next(p for p in doc["parts"]
                if p["act"] == kind["act"] and p["aggravated"] == aggravated)
    template = "within_aggravated" if aggravated else "within"
    result.update(
        part=part["number"],
        aggravated=aggravated,
        aggravating=applied,
        penalties=[_penalty(p, mci_kzt, doc, lang) for p in part["penalties"]],
        investigated_by=doc["investigated_by"][lang],
        summary=_render(doc["summary_templates"][template][lang], {
            "article": doc["article"],
            "part": part["number"],
            "part_summary": part["summary"][lang],
            "circumstances": doc["list_separator"][lang].join(
                circumstances[cid]["label"][lang] for cid in applied),
        }),
    )
    # Only where an amount is in MCI does its missing tenge value matter.
    if mci_kzt is None and any("min_mci" in p or "max_mci" in p for p in part["penalties"]):
        result["warnings"].append(_mci_missing(day.year, doc, lang))
    return result


def time_change(before, after, lang: str = "en", *, rules: dict | None = None) -> list[dict]:
    """What moving an incident's time from `before` to `after` does in law:
    [{code, text}] for leaving or entering the article's scope (the in-force
    date) and for a change of MCI year (local dates in Kazakhstan). Empty
    when neither moves. pwa/js/law.js timeChange says the same."""
    doc = rules if rules is not None else _load()[1]
    if lang not in doc["languages"]:
        raise ValueError(f"lang must be one of {', '.join(doc['languages'])}; got {lang!r}")
    old, new = local_date(before, doc), local_date(after, doc)
    start = date.fromisoformat(doc["in_force_date"])
    texts = doc["time_change"]
    values = {"article": doc["article"], "in_force_date": _format_date(start, doc, lang),
              "from_year": old.year, "year": new.year}
    notes = []
    if (old >= start) != (new >= start):
        code = "left_scope" if new < start else "entered_scope"
        notes.append({"code": code, "text": _render(texts[code][lang], values)})
    if old.year != new.year:
        notes.append({"code": "mci_year", "text": _render(texts["mci_year"][lang], values)})
    return notes


def _penalty(penalty: dict, mci_kzt: int | None, doc: dict, lang: str) -> dict:
    out = dict(penalty)
    # Anything measured in MCI (fines, correctional labour) is also shown in
    # tenge, when that year's MCI is known.
    if mci_kzt is not None:
        if "min_mci" in out:
            out["min_kzt"] = out["min_mci"] * mci_kzt
        if "max_mci" in out:
            out["max_kzt"] = out["max_mci"] * mci_kzt
    name = _variant(out, mci_kzt is not None)
    template = doc["penalty_templates"].get(out["type"], {}).get(name)
    if template is None:
        raise LawConfigError(f"no {name} template for {out['type']}")
    values = {k: _number(v, doc, lang) for k, v in out.items() if isinstance(v, int)}
    out["text"] = _render(template[lang], values)
    return out


def _mci_missing(year: int, doc: dict, lang: str) -> dict:
    return {"code": "mci_missing", "year": year,
            "text": _render(doc["warnings"]["mci_missing"][lang], {"year": year})}
