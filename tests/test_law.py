"""Article 380-3 classification (api/law/service.py), table by table."""

import copy
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.law import service
from api.law.service import LawConfigError, classify, rules

CIRCUMSTANCES = ["two_or_more_victims", "group", "repeated", "emergency_or_riots",
                 "state_of_emergency_area"]
PROTECTED = ["doctor", "feldsher", "nurse", "other_medical", "driver"]
IN_FORCE = "2026-03-07T00:00:00+05:00"


def facts(**overrides):
    base = {"kind": "threat", "aggravating": [], "victim_role": "feldsher", "on_duty": True,
            "occurred_at": "2026-05-12T14:30:00+05:00"}
    base.update(overrides)
    return base


# --- the six parts ---------------------------------------------------------

@pytest.mark.parametrize(("kind", "aggravating", "part"), [
    ("threat", [], 1),
    ("threat", ["group"], 2),
    ("violence", [], 3),
    ("violence", ["repeated"], 4),
    ("violence_dangerous", [], 5),
    ("violence_dangerous", ["two_or_more_victims"], 6),
])
def test_each_part(kind, aggravating, part):
    result = classify(facts(kind=kind, aggravating=aggravating))
    assert result["status"] == "within"
    assert result["article"] == "380-3"
    assert result["part"] == part
    assert result["aggravated"] is (part % 2 == 0)
    assert result["aggravating"] == aggravating
    assert result["reason"] is None and result["reasons"] == []
    assert result["investigated_by"] == "internal affairs bodies (the police)"
    assert f"part {part}" in result["summary"]


@pytest.mark.parametrize("circumstance", CIRCUMSTANCES)
@pytest.mark.parametrize(("kind", "plain", "aggravated"), [
    ("threat", 1, 2), ("violence", 3, 4), ("violence_dangerous", 5, 6),
])
def test_every_circumstance_aggravates(circumstance, kind, plain, aggravated):
    assert classify(facts(kind=kind))["part"] == plain
    result = classify(facts(kind=kind, aggravating=[circumstance]))
    assert result["part"] == aggravated
    assert result["aggravating"] == [circumstance]
    label = next(c["label"]["en"] for c in rules()["aggravating_circumstances"]
                 if c["id"] == circumstance)
    assert label in result["summary"]


def test_circumstances_reported_once_in_document_order():
    result = classify(facts(aggravating=["repeated", "group", "repeated"]))
    assert result["aggravating"] == ["group", "repeated"]


@pytest.mark.parametrize("role", PROTECTED)
def test_every_protected_role(role):
    assert classify(facts(victim_role=role))["status"] == "within"


# --- penalties, MCI and tenge ------------------------------------------------

def _pen(result):
    return [{k: v for k, v in p.items() if k != "text"} for p in result["penalties"]]


PENALTIES = {
    1: [{"type": "fine", "min_mci": 200, "max_mci": 500},
        {"type": "correctional_labour", "min_mci": 200, "max_mci": 500},
        {"type": "community_service", "max_hours": 300},
        {"type": "restriction_of_liberty", "max_years": 2},
        {"type": "imprisonment", "max_years": 2}],
    2: [{"type": "restriction_of_liberty", "min_years": 2, "max_years": 3},
        {"type": "imprisonment", "min_years": 2, "max_years": 3}],
    3: [{"type": "fine", "min_mci": 500, "max_mci": 1000},
        {"type": "correctional_labour", "min_mci": 500, "max_mci": 1000},
        {"type": "community_service", "max_hours": 600},
        {"type": "restriction_of_liberty", "min_years": 2, "max_years": 3},
        {"type": "imprisonment", "min_years": 2, "max_years": 3}],
    4: [{"type": "restriction_of_liberty", "min_years": 3, "max_years": 7},
        {"type": "imprisonment", "min_years": 3, "max_years": 7}],
    5: [{"type": "imprisonment", "min_years": 5, "max_years": 10}],
    6: [{"type": "imprisonment", "min_years": 7, "max_years": 12}],
}


@pytest.mark.parametrize("part", sorted(PENALTIES))
def test_penalties_per_law_table(part):
    doc = rules()
    stored = next(p for p in doc["parts"] if p["number"] == part)["penalties"]
    assert stored == PENALTIES[part]


def test_part_1_fines_in_2026():
    result = classify(facts(kind="threat"))
    assert result["mci_year"] == 2026 and result["mci_kzt"] == 4325
    fine = result["penalties"][0]
    assert fine == {"type": "fine", "min_mci": 200, "max_mci": 500,
                    "min_kzt": 865_000, "max_kzt": 2_162_500,
                    "text": "a fine of 200–500 MCI (865,000–2,162,500 ₸)"}
    assert result["penalties"][1]["min_kzt"] == 865_000  # correctional labour, same amount


def test_part_3_fines_in_2026():
    fine = classify(facts(kind="violence"))["penalties"][0]
    assert (fine["min_mci"], fine["max_mci"]) == (500, 1000)
    assert (fine["min_kzt"], fine["max_kzt"]) == (2_162_500, 4_325_000)


@pytest.mark.parametrize(("occurred_at", "year", "mci"), [
    ("2023-06-01T12:00:00+05:00", 2023, 3450),
    ("2025-06-01T12:00:00+05:00", 2025, 3932),
    ("2019-06-01T12:00:00+05:00", 2019, None),  # not in the table: None, never zero
])
def test_outside_still_reports_the_mci_year(occurred_at, year, mci):
    result = classify(facts(occurred_at=occurred_at))
    assert result["status"] == "outside"
    assert (result["mci_year"], result["mci_kzt"]) == (year, mci)


def test_mci_year_is_the_local_year():
    # 2026-12-31T20:00Z is already 1 January 2027 in Almaty.
    doc = rules()
    doc["mci"]["2027"] = 4700
    result = classify(facts(occurred_at="2026-12-31T20:00:00Z"), rules=doc)
    assert result["local_date"] == "2027-01-01"
    assert result["mci_year"] == 2027
    assert result["penalties"][0]["min_kzt"] == 200 * 4700


def test_penalty_text_in_ru_and_kk():
    ru = classify(facts(), "ru")["penalties"]
    kk = classify(facts(), "kk")["penalties"]
    nbsp = "\u00a0"  # ru and kk group digits with a no-break space
    assert ru[0]["text"] == ("штраф в размере от 200 до 500 МРП "
                             f"(от 865{nbsp}000 до 2{nbsp}162{nbsp}500 ₸)")
    assert kk[0]["text"] == f"200–500 АЕК мөлшерінде айыппұл (865{nbsp}000–2{nbsp}162{nbsp}500 ₸)"
    assert ru[4]["text"] == "лишение свободы на срок до 2 лет"
    assert kk[4]["text"] == "2 жылға дейінгі мерзімге бас бостандығынан айыру"


MCI_MISSING = {
    "en": "The MCI for {year} is not yet configured in Qorgau: amounts are shown in MCI only.",
    "ru": "МРП на {year} год ещё не задан в Qorgau: суммы указаны только в МРП.",
    "kk": "{year} жылға арналған АЕК Qorgau-да әлі белгіленбеген: сомалар тек АЕК-пен көрсетілген.",
}
MCI_ONLY_TEXT = {  # part 1's fine and correctional labour, in MCI only
    "en": ["a fine of 200–500 MCI", "correctional labour of 200–500 MCI"],
    "ru": ["штраф в размере от 200 до 500 МРП",
           "исправительные работы в размере от 200 до 500 МРП"],
    "kk": ["200–500 АЕК мөлшерінде айыппұл", "200–500 АЕК мөлшерінде түзеу жұмыстары"],
}


def assert_no_zero_and_no_kzt(result):
    # Without the year's MCI no tenge amount may appear, least of all a zero.
    for penalty in result["penalties"]:
        assert not {"min_kzt", "max_kzt"} & set(penalty), penalty
        assert all(v != 0 for v in penalty.values()), penalty
        assert "₸" not in penalty["text"]


@pytest.mark.parametrize("lang", sorted(MCI_MISSING))
@pytest.mark.parametrize(("occurred_at", "year", "drop"), [
    (facts()["occurred_at"], 2026, "2026"),               # a year removed from the table
    ("2031-04-01T10:00:00+05:00", 2031, None),            # a year beyond the table
    ("2026-12-31T19:00:00Z", 2027, None),                 # 00:00 on 1 January 2027 locally
])
def test_missing_mci_still_classifies_in_mci_only(lang, occurred_at, year, drop):
    doc = rules()
    if drop:
        del doc["mci"][drop]
    result = classify(facts(occurred_at=occurred_at), lang, rules=doc)
    assert result["status"] == "within" and result["part"] == 1
    assert result["mci_year"] == year and result["mci_kzt"] is None
    assert result["investigated_by"] and result["summary"] and result["disclaimer"]
    assert result["summary"] == classify(facts(), lang)["summary"]
    fine, labour = result["penalties"][:2]
    assert fine == {"type": "fine", "min_mci": 200, "max_mci": 500,
                    "text": MCI_ONLY_TEXT[lang][0]}
    assert labour["text"] == MCI_ONLY_TEXT[lang][1]
    # Penalties not measured in MCI read as in any other year.
    assert result["penalties"][2:] == classify(facts(), lang)["penalties"][2:]
    assert_no_zero_and_no_kzt(result)
    assert result["warnings"] == [{"code": "mci_missing", "year": year,
                                   "text": MCI_MISSING[lang].format(year=year)}]


@pytest.mark.parametrize(("kind", "aggravating", "part"), [
    ("threat", ["group"], 2), ("violence", [], 3), ("violence", ["repeated"], 4),
    ("violence_dangerous", [], 5), ("violence_dangerous", ["group"], 6),
])
def test_missing_mci_keeps_every_part(kind, aggravating, part):
    late = facts(kind=kind, aggravating=aggravating, occurred_at="2031-04-01T10:00:00+05:00")
    result = classify(late)
    assert result["part"] == part and result["penalties"]
    assert_no_zero_and_no_kzt(result)
    # Parts 2, 4, 5 and 6 have no amount in MCI: nothing is missing from them.
    in_mci = any("min_mci" in p for p in result["penalties"])
    assert [w["code"] for w in result["warnings"]] == (["mci_missing"] if in_mci else [])
    assert in_mci == (part == 3)


def test_no_warnings_when_the_mci_is_known():
    assert classify(facts())["warnings"] == []
    assert classify(facts(kind="unspecified"))["warnings"] == []


@pytest.mark.parametrize("overrides", [{"kind": "unspecified"}, {"on_duty": False},
                                       {"victim_role": "other"}])
def test_missing_mci_does_not_matter_when_nothing_is_due(overrides):
    result = classify(facts(occurred_at="2031-04-01T10:00:00+05:00", **overrides))
    assert result["status"] in {"pending", "outside"} and result["mci_kzt"] is None
    assert result["warnings"] == [] and result["penalties"] == []


@pytest.mark.parametrize(("change", "message"), [
    (lambda doc: doc["penalty_templates"]["fine"].pop("range_mci_only"),
     "no range_mci_only template for fine"),
    (lambda doc: doc["penalty_templates"]["correctional_labour"].pop("range_mci_only"),
     "no range_mci_only template for correctional_labour"),
    (lambda doc: doc.pop("warnings"), "warnings lacks mci_missing"),
    (lambda doc: doc["warnings"].pop("mci_missing"), "warnings lacks mci_missing"),
    (lambda doc: doc["warnings"]["mci_missing"].pop("kk"),
     "warnings.mci_missing lacks text in kk"),
    (lambda doc: doc["penalty_templates"]["fine"]["range_mci_only"].update(
        en="a fine of {min_kzt} ₸"), r"placeholder \{min_kzt\} has no value"),
])
def test_check_rules_needs_the_mci_only_texts(change, message):
    doc = rules()
    change(doc)
    with pytest.raises(LawConfigError, match=message):
        service.check_rules(doc)


# --- the in-force date, judged in local time ---------------------------------

@pytest.mark.parametrize(("occurred_at", "status", "local"), [
    ("2026-03-06T23:59:59+05:00", "outside", "2026-03-06"),
    ("2026-03-07T00:00:00+05:00", "within", "2026-03-07"),
    ("2026-03-06T19:30:00Z", "within", "2026-03-07"),      # 00:30 local on 7 March
    ("2026-03-06T18:59:59Z", "outside", "2026-03-06"),     # 23:59:59 local
    ("2026-03-06T19:00:00Z", "within", "2026-03-07"),
    ("2026-03-07T01:00:00+09:00", "outside", "2026-03-06"),  # Tokyo clock, Almaty's 6th
    ("2026-03-06T22:00:00-03:00", "within", "2026-03-07"),
])
def test_in_force_boundary_in_local_time(occurred_at, status, local):
    result = classify(facts(occurred_at=occurred_at))
    assert (result["status"], result["local_date"]) == (status, local)
    if status == "outside":
        assert result["reason"]["code"] == "before_in_force"


def test_datetime_objects_accepted():
    at = datetime(2026, 3, 6, 19, 30, tzinfo=UTC)
    assert classify(facts(occurred_at=at))["local_date"] == "2026-03-07"
    at = datetime(2026, 3, 7, 0, 0, tzinfo=timezone(timedelta(hours=5)))
    assert classify(facts(occurred_at=at))["status"] == "within"


def test_almaty_is_utc_plus_5_since_march_2024():
    # Guards against a stale tz database: 18:30Z is 23:30 at +5 but 00:30 at +6.
    assert service.local_date("2024-06-01T18:30:00Z").isoformat() == "2024-06-01"
    assert service.local_date("2023-06-01T18:30:00Z").isoformat() == "2023-06-02"


# --- outside and pending -----------------------------------------------------

@pytest.mark.parametrize(("overrides", "code"), [
    ({"occurred_at": "2025-11-20T10:00:00+05:00"}, "before_in_force"),
    ({"victim_role": "other"}, "victim_not_protected"),
    ({"on_duty": False}, "not_on_duty"),
    ({"kind": "other"}, "not_threat_or_violence"),
])
def test_outside_reasons(overrides, code):
    result = classify(facts(**overrides))
    assert result["status"] == "outside"
    assert result["part"] is None and result["penalties"] == []
    assert result["aggravated"] is False and result["aggravating"] == []
    assert result["investigated_by"] is None
    assert result["reason"]["code"] == code
    assert [r["code"] for r in result["reasons"]] == [code]
    assert result["summary"].startswith("Outside Article 380-3")
    assert result["reason"]["text"] in result["summary"]


def test_all_outside_reasons_listed_in_order():
    result = classify(facts(kind="other", victim_role="other", on_duty=False,
                            occurred_at="2025-01-01T10:00:00+05:00"))
    assert [r["code"] for r in result["reasons"]] == [
        "before_in_force", "victim_not_protected", "not_on_duty", "not_threat_or_violence"]
    assert result["reason"]["code"] == "before_in_force"


def test_unspecified_kind_is_pending_not_outside():
    result = classify(facts(kind="unspecified", aggravating=["group"]))
    assert result["status"] == "pending"
    assert result["part"] is None and result["aggravating"] == []
    assert result["reason"]["code"] == "kind_unspecified"
    assert result["summary"].startswith("Not yet classified")


def test_outside_wins_over_pending():
    result = classify(facts(kind="unspecified", on_duty=False))
    assert result["status"] == "outside"
    assert [r["code"] for r in result["reasons"]] == ["not_on_duty"]


def test_before_in_force_text_names_the_date_per_language():
    f = facts(occurred_at="2026-01-10T10:00:00+05:00")
    assert "(2026-03-07)" in classify(f, "en")["reason"]["text"]
    assert "(07.03.2026)" in classify(f, "ru")["reason"]["text"]
    assert "(07.03.2026)" in classify(f, "kk")["reason"]["text"]


# --- languages ---------------------------------------------------------------

DISCLAIMERS = {
    "en": "Provisional classification: the investigator decides.",
    "ru": "Предварительная квалификация: решение принимает следователь.",
    "kk": "Алдын ала саралау: шешімді тергеуші қабылдайды.",
}


@pytest.mark.parametrize("lang", sorted(DISCLAIMERS))
@pytest.mark.parametrize("overrides", [{}, {"on_duty": False}, {"kind": "unspecified"}])
def test_disclaimer_always_present(lang, overrides):
    result = classify(facts(**overrides), lang)
    assert result["disclaimer"] == DISCLAIMERS[lang]
    assert result["lang"] == lang


def test_summaries_in_each_language():
    ru = classify(facts(kind="violence"), "ru")["summary"]
    kk = classify(facts(kind="violence"), "kk")["summary"]
    assert ru.startswith("Часть 3 статьи 380-3 УК РК: применение насилия, не опасного")
    assert kk.startswith("ҚР ҚК 380-3-бабының 3-бөлігі: ")
    assert classify(facts(), "ru")["investigated_by"] == "органы внутренних дел (полиция)"


def test_every_text_has_all_languages():
    doc = rules()
    service.check_rules(doc)  # raises LawConfigError naming a missing translation
    broken = copy.deepcopy(doc)
    del broken["disclaimer"]["kk"]
    with pytest.raises(LawConfigError, match="disclaimer lacks text in kk"):
        service.check_rules(broken)


# --- bad input ---------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "field"), [
    ({"kind": "assault"}, "kind"),
    ({"kind": None}, "kind"),
    ({"aggravating": ["weapon"]}, "aggravating"),
    ({"aggravating": "group"}, "aggravating"),
    ({"victim_role": "patient"}, "victim_role"),
    ({"on_duty": "yes"}, "on_duty"),
    ({"on_duty": 1}, "on_duty"),
    ({"occurred_at": "2026-03-07T10:00:00"}, "occurred_at"),            # naive
    ({"occurred_at": datetime(2026, 3, 7, 10)}, "occurred_at"),         # naive
    ({"occurred_at": "2026-03-07"}, "occurred_at"),
    ({"occurred_at": "2026-13-07T10:00:00+05:00"}, "occurred_at"),
    ({"occurred_at": 1772841600}, "occurred_at"),
    ({"occurred_at": "2026-06-15T24:00:00+05:00"}, "occurred_at"),
    ({"occurred_at": "2026-02-29T10:00:00+05:00"}, "occurred_at"),
    ({"occurred_at": "2026-06-15T10:00:00+05:60"}, "occurred_at"),
    ({"occurred_at": "2026-06-15T10:00:00+0500"}, "occurred_at"),       # RFC 3339 only
    ({"occurred_at": "2026-06-15 10:00:00+05:00"}, "occurred_at"),
    ({"occurred_at": "0001-01-01T01:00:00+05:00"}, "occurred_at"),      # would overflow
])
def test_unknown_values_raise_value_error_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"^{field} "):
        classify(facts(**overrides))


@pytest.mark.parametrize("field", ["kind", "victim_role", "occurred_at"])
def test_missing_required_fact(field):
    f = facts()
    del f[field]
    with pytest.raises(ValueError, match=f"^{field} is required"):
        classify(f)


def test_unknown_language():
    with pytest.raises(ValueError, match=r"^lang "):
        classify(facts(), "de")


# --- the document and its ETag -----------------------------------------------

def test_rules_document_shape():
    doc = rules()
    assert doc["article"] == "380-3"
    assert doc["in_force_date"] == "2026-03-07"
    assert doc["timezone"] == "Asia/Almaty"
    assert doc["mci"] == {"2023": 3450, "2024": 3692, "2025": 3932, "2026": 4325}
    assert [c["id"] for c in doc["aggravating_circumstances"]] == CIRCUMSTANCES
    assert [r["id"] for r in doc["victim_roles"] if r["protected"]] == PROTECTED
    assert set(doc["title"]) == {"ru", "kk", "en"}


def test_rules_copy_is_independent():
    rules()["mci"].clear()
    assert rules()["mci"]["2026"] == 4325


def test_etag_is_sha256_of_the_file():
    import hashlib

    raw = service.RULES_PATH.read_bytes()
    assert service.rules_etag() == f'"{hashlib.sha256(raw).hexdigest()}"'
    assert json.loads(service.rules_bytes()) == rules()


# --- property ----------------------------------------------------------------

OFFSETS = [timezone(timedelta(hours=h)) for h in (-8, 0, 5, 6, 14)]


@given(
    kind=st.sampled_from(["threat", "violence", "violence_dangerous"]),
    subset=st.sets(st.sampled_from(CIRCUMSTANCES)),
    role=st.sampled_from(PROTECTED),
    # Instants from 7 March 2026 00:00 to 31 December 2026 23:59:59 in Almaty
    # (2026 has an MCI), written with any offset.
    instant=st.datetimes(min_value=datetime(2026, 3, 6, 19, 0),
                         max_value=datetime(2026, 12, 31, 18, 59, 59)),
    offset=st.sampled_from(OFFSETS),
    lang=st.sampled_from(["ru", "kk", "en"]),
)
def test_property_within_and_part_parity(kind, subset, role, instant, offset, lang):
    when = instant.replace(tzinfo=UTC).astimezone(offset)
    result = classify({"kind": kind, "aggravating": sorted(subset), "victim_role": role,
                       "on_duty": True, "occurred_at": when.isoformat()}, lang)
    assert result["status"] == "within"
    assert 1 <= result["part"] <= 6
    assert (result["part"] % 2 == 0) == bool(subset)
    assert set(result["aggravating"]) == subset
    assert result["disclaimer"]
