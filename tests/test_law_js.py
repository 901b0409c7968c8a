"""pwa/js/law.js and api/law/service.py classify alike, in real Chromium.

The phone classifies offline with the JS; the server with the Python. Both
read the same rules document, and here both run on the same cases and must
return the same dict, texts included.
"""

import json

import pytest

from api.law import service

pytestmark = pytest.mark.browser

# `page` (a blank page served with the PWA's files and the rules) is in conftest.py.

RUN_JS = """
async (cases) => {
  const law = await import('/js/law.js');
  const rules = await (await fetch('/api/v1/law/rules')).json();
  return cases.map(([facts, lang]) => {
    try {
      return { ok: law.classify(rules, facts, lang) };
    } catch (err) {
      return { error: err.name, message: err.message };
    }
  });
}
"""


def facts(kind="threat", aggravating=(), role="doctor", on_duty=True,
          at="2026-06-15T10:00:00+05:00"):
    return {"kind": kind, "aggravating": list(aggravating), "victim_role": role,
            "on_duty": on_duty, "occurred_at": at}


CASES = [
    # the six parts, and each circumstance on its own
    (facts("threat"), "en"),
    (facts("threat", ["two_or_more_victims"]), "en"),
    (facts("violence", role="nurse"), "ru"),
    (facts("violence", ["group"], role="driver"), "kk"),
    (facts("violence_dangerous", role="feldsher"), "en"),
    (facts("violence_dangerous", ["repeated"], role="other_medical"), "ru"),
    (facts("threat", ["emergency_or_riots"]), "kk"),
    (facts("violence", ["state_of_emergency_area"]), "en"),
    (facts("violence_dangerous", ["state_of_emergency_area", "two_or_more_victims", "group",
                                  "repeated", "emergency_or_riots"]), "kk"),
    (facts("threat", ["repeated", "group"]), "ru"),
    # the in-force date in local time
    (facts(at="2026-03-06T23:59:59+05:00"), "en"),
    (facts(at="2026-03-07T00:00:00+05:00"), "en"),
    (facts(at="2026-03-06T19:30:00Z"), "ru"),
    (facts(at="2026-03-06T18:59:59.999999Z"), "en"),
    (facts(at="2026-03-06T19:00:00Z"), "kk"),
    (facts(at="2026-03-07T01:00:00+09:00"), "en"),
    (facts(at="2026-03-06T22:00:00-03:00"), "en"),
    # tz data: UTC+6 until 2024-03-01 00:00 local, UTC+5 after
    (facts(at="2024-06-01T18:30:00Z"), "en"),
    (facts(at="2023-06-01T18:30:00Z"), "en"),
    (facts(at="2024-02-29T18:30:00Z"), "ru"),
    # outside and pending
    (facts(role="other"), "en"),
    (facts(on_duty=False), "ru"),
    (facts("other"), "kk"),
    (facts("other", role="other", on_duty=False, at="2025-12-31T23:00:00+05:00"), "en"),
    (facts("unspecified", ["group"]), "en"),
    (facts("unspecified", on_duty=False), "kk"),
    (facts(at="2019-05-01T10:00:00+05:00"), "ru"),
    # MCI years, and the local year deciding which
    (facts(at="2026-12-31T18:59:59Z"), "en"),
    # no MCI for the year: every part in MCI only, with the warning, in each language
    (facts(at="2026-12-31T19:00:00Z"), "en"),          # 2027 locally: no MCI yet
    (facts(at="2027-01-01T00:00:00+05:00"), "ru"),
    (facts(at="2027-03-08T09:00:00+05:00"), "kk"),
    (facts("threat", ["group"], at="2031-01-01T10:00:00+05:00"), "ru"),
    (facts("violence", at="2031-01-01T10:00:00+05:00"), "kk"),
    (facts("violence", ["repeated"], at="2031-01-01T10:00:00+05:00"), "en"),
    (facts("violence_dangerous", at="2031-01-01T10:00:00+05:00"), "en"),
    (facts("unspecified", at="2031-01-01T10:00:00+05:00"), "en"),
    (facts(on_duty=False, at="2031-01-01T10:00:00+05:00"), "ru"),
    # bad input
    (facts("assault"), "en"),
    (facts(role="patient"), "en"),
    (facts(aggravating=["weapon"]), "en"),
    ({**facts(), "on_duty": "yes"}, "en"),
    (facts(at="2026-06-15T10:00:00"), "en"),
    (facts(at="2026-06-15"), "en"),
    (facts(at="2026-06-15T24:00:00+05:00"), "en"),   # Date.parse would roll these over
    (facts(at="2026-02-29T10:00:00+05:00"), "en"),
    (facts(at="2026-06-15T10:00:00+05:60"), "en"),
    (facts(at="2026-06-15T10:00:00+0500"), "en"),
    (facts(at="1899-06-15T10:00:00+05:00"), "en"),
    (facts(), "de"),
]


def python_side(case_facts, lang):
    try:
        return {"ok": json.loads(json.dumps(service.classify(case_facts, lang)))}
    except ValueError as err:
        return {"error": "ValueError", "field": str(err).split(" ")[0]}


def js_side(outcome):
    if "ok" in outcome:
        return outcome
    assert outcome["error"] == "RangeError", outcome
    return {"error": "ValueError", "field": outcome["message"].split(" ")[0]}


def test_js_and_python_agree(page):
    results = page.evaluate(RUN_JS, [[f, lang] for f, lang in CASES])
    assert len(results) == len(CASES)
    statuses = set()
    for (case_facts, lang), outcome in zip(CASES, results, strict=True):
        expected = python_side(case_facts, lang)
        assert js_side(outcome) == expected, (case_facts, lang)
        if "ok" not in expected:
            statuses.add(expected["error"])
            continue
        ok = expected["ok"]
        statuses.add(ok["status"] + ("/mci_missing" if ok["warnings"] else ""))
        if ok["warnings"]:
            assert ok["part"] and ok["mci_kzt"] is None
            assert not any({"min_kzt", "max_kzt"} & set(p) for p in ok["penalties"])
    # The table really covers every branch.
    assert statuses == {"within", "within/mci_missing", "outside", "pending", "ValueError"}


def test_fixed_offset_fallback_matches_the_tz_database(page):
    # The fallback for phones whose tz data predates 2024: must agree with
    # the server for recent instants, which are the ones that matter.
    instants = ["2024-02-29T17:59:59Z", "2024-02-29T18:00:00Z", "2024-02-29T18:30:00Z",
                "2026-03-06T18:59:59Z", "2026-03-06T19:00:00Z", "2026-12-31T19:00:00Z",
                "2023-06-01T18:30:00Z"]
    got = page.evaluate("""async (instants) => {
      const law = await import('/js/law.js');
      return instants.map((s) => law.fixedRuleLocalDate(Date.parse(s)));
    }""", instants)
    assert got == [service.local_date(s).isoformat() for s in instants]


TIME_CHANGES = [
    # across the in-force date, both ways, in local time
    ("2026-03-07T00:30:00+05:00", "2026-03-06T23:30:00+05:00", "en"),
    ("2026-03-06T23:30:00+05:00", "2026-03-07T00:05:00+05:00", "ru"),
    ("2026-03-06T19:30:00Z", "2026-03-06T18:30:00Z", "kk"),
    # across New Year: another MCI year (and into one with none configured)
    ("2027-01-01T00:20:00+05:00", "2026-12-31T23:40:00+05:00", "kk"),
    ("2026-12-31T18:59:59Z", "2026-12-31T19:00:00Z", "en"),
    # across both at once, and neither
    ("2026-03-08T10:00:00+05:00", "2025-12-31T10:00:00+05:00", "ru"),
    ("2026-06-01T10:00:00+05:00", "2026-05-30T10:00:00+05:00", "en"),
]


def test_time_change_notes_agree(page):
    got = page.evaluate("""async (cases) => {
      const law = await import('/js/law.js');
      const rules = await (await fetch('/api/v1/law/rules')).json();
      return cases.map(([a, b, lang]) => law.timeChange(rules, a, b, lang));
    }""", [list(c) for c in TIME_CHANGES])
    expected = [service.time_change(a, b, lang) for a, b, lang in TIME_CHANGES]
    assert got == expected
    codes = [[n["code"] for n in notes] for notes in expected]
    assert codes == [["left_scope"], ["entered_scope"], ["left_scope"], ["mci_year"],
                     ["mci_year"], ["left_scope", "mci_year"], []]
    assert expected[1][0]["text"] == ("Указанное время — 07.03.2026 или позже: к инциденту "
                                      "теперь применяется статья 380-3 УК РК.")
