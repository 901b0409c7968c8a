"""The address matcher: api/hazards/address.py and pwa/js/address.js read addresses
alike (the phone matches offline with the JS, the server with the Python), find a
flagged building however it is typed, and never the building next door."""

import json
import random
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from api.hazards.address import address_key
from tests.browser import CHROMIUM, CHROMIUM_ARGS

PWA = Path(__file__).resolve().parent.parent / "pwa"

FLAGGED = "г. Алматы, ул. Абая, д. 10, кв. 5"
# A dozen ways (and more) a crew member or a dispatcher writes the same building.
SAME_BUILDING = [
    "ул. Абая, д. 10",
    "улица Абая 10",
    "Абая 10",
    "УЛ.АБАЯ Д.10 КВ.5",
    "ул.Абая,10,кв.5",
    "  абая   10  ",
    "Абая көшесі, 10 үй",
    "Абай көшесі, 10-үй, 12-пәтер",
    "Абай даңғылы 10",
    "пр. Абая, 10",
    "пр-т Абая д 10",
    "проспект Абая, дом 10, квартира 7",
    "Aбaя 10",              # Latin a
    "yл. Aбaя, д. 1O",      # Latin y, a; a Latin O for the zero is not a digit: see below
    "Абая 10-5",            # house-flat
    "Алматы қаласы, Абая көшесі 10 үй, 5 пәтер",
    "г Алматы Абая 10",
    "Абая д.10 кв.3",
]
NEIGHBOURS = ["Абая 12", "Абая 8", "ул. Абая, д. 10а", "Абая 10/1", "Абая 100", "Абая 1",
              "ул. Сатпаева, д. 10", "Абая", "д. 10"]

MKR_FLAGGED = "мкр. Самал-2, д. 5"
MKR_SAME = ["микрорайон Самал-2, дом 5", "Самал-2 шағын ауданы, 5-үй", "ш.а. Самал-2, 5",
            "мкрн Самал 2 д 5 кв 40", "Самал-2, 5", "MKP Самал-2, 5", "мкр САМАЛ-2 Д.5"]
MKR_NEIGHBOURS = ["мкр. Самал-2, д. 6", "мкр. Самал-3, д. 5", "мкр. Самал-2, д. 55",
                  "мкр. Самал-1, д. 5"]

# One rule at a time: (typed, key).
RULES = [
    ("ул. Абая 10", "абай 10"), ("улица Абая 10", "абай 10"), ("Абая көшесі 10", "абай 10"),
    ("пр. Абая 10", "абай 10"), ("пр-т Абая 10", "абай 10"), ("проспект Абая 10", "абай 10"),
    ("Абай даңғылы 10", "абай 10"),
    ("мкр. Орбита-1 5", "орбита 1 5"), ("микрорайон Орбита-1 5", "орбита 1 5"),
    ("Орбита-1 шағын аудан 5", "орбита 1 5"), ("ш.а. Орбита-1 5", "орбита 1 5"),
    ("Абая д. 10", "абай 10"), ("Абая дом 10", "абай 10"), ("Абая 10 үй", "абай 10"),
    ("Абая 10 кв. 3", "абай 10"), ("Абая 10 квартира 3", "абай 10"),
    ("Абая 10 3 пәтер", "абай 10"),
    ("АБАЯ 10", "абай 10"),                                    # case
    ("Aбaя 10", "абай 10"), ("Tолe би 5", "толе би 5"),       # Latin a, T, e
    ("Xoлмoгорcкая 7", "холмогорскай 7"),                     # Latin X o c
    ("Мира 8", "мира 8"), ("Mира 8", "мира 8"), ("Kирова 3", "кирова 3"),
    ("Hаурызбай 3", "наурызбай 3"), ("Bалиханова 4", "валиханова 4"),  # H→Н, B→В
    ("Pыскулова 2", "рыскулова 2"), ("Cейфуллина 1", "сейфуллина 1"),
    ("yл. Жандосова 9", "жандосова 9"),
    ("Абая, 10.", "абай 10"), ("Абая — 10!", "абай 10"), ("Абая\t10", "абай 10"),  # punctuation
    ("Жолдасбекова 9", "жолдасбекова 9"), ("Жёлтая 4", "желтай 4"),  # ё→е
    ("Төле би 55", "толе би 55"), ("Толе би 55", "толе би 55"),  # Kazakh letters
    ("Абая 10а", "абай 10а"), ("Абая 10 А", "абай 10а"), ("Абая 10/1", "абай 10/1"),
    ("Абая 10 корпус 1", "абай 10/1"),
    ("ул. 8 Марта 12", "8 марта 12"), ("Абая", ""), ("", ""), ("10", ""),
]


def test_every_spelling_of_the_flagged_building_has_its_key():
    key = address_key(FLAGGED)
    assert key == "абай 10"
    misread = {s: address_key(s) for s in SAME_BUILDING if address_key(s) != key}
    # A Latin O in place of the digit zero is a different number: "1o" is house 1, letter о.
    assert misread == {"yл. Aбaя, д. 1O": "абай 1о"}


def test_the_neighbouring_building_does_not_match():
    key = address_key(FLAGGED)
    for other in NEIGHBOURS:
        assert address_key(other) != key, other


def test_microdistrict_and_house_number():
    key = address_key(MKR_FLAGGED)
    assert key == "самал 2 5"
    assert [s for s in MKR_SAME if address_key(s) != key] == []
    assert [s for s in MKR_NEIGHBOURS if address_key(s) == key] == []


@pytest.mark.parametrize("typed,key", RULES)
def test_each_rule(typed, key):
    assert address_key(typed) == key


# ------------------------------------------------------------------ the same in JS

class Handler(SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/blank.html":
            body = b"<!doctype html><title>address.js</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        return super().do_GET()

    def log_message(self, format, *args):
        pass


def random_addresses(n: int, seed: int = 18) -> list[str]:
    """Strings made of the pieces addresses are made of, in any order."""
    rng = random.Random(seed)
    pieces = ["ул.", "улица", "көшесі", "пр.", "пр-т", "проспект", "даңғылы", "мкр.",
              "микрорайон", "шағын", "аудан", "ш.а.", "д.", "дом", "үй", "кв.", "квартира",
              "пәтер", "г.", "Алматы", "қаласы", "корпус", "Абая", "Самал-2", "Төле би",
              "Aбaя", "ABAЯ", "Жёлтая", "10", "10а", "10 А", "10/1", "5-7", "12", "-", ",",
              ".", "/", " ", "  ", "ш", "а", "к", "MKP", "İ", "ß", "№", "1O", "0"]
    return ["".join(rng.choice(pieces) + rng.choice(["", " ", ", "])
                    for _ in range(rng.randint(0, 9))) for _ in range(n)]


@pytest.mark.browser
def test_js_and_python_read_every_address_alike():
    cases = ([FLAGGED, MKR_FLAGGED] + SAME_BUILDING + NEIGHBOURS + MKR_SAME + MKR_NEIGHBOURS
             + [typed for typed, _ in RULES] + random_addresses(3000))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(PWA)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/blank.html")
                js = page.evaluate("""async (cases) => {
                    const m = await import('/js/address.js');
                    return cases.map((c) => m.addressKey(c));
                }""", cases)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    python = [address_key(c) for c in cases]
    differ = [(c, p, j) for c, p, j in zip(cases, python, js, strict=True) if p != j]
    assert differ == [], json.dumps(differ[:5], ensure_ascii=False)
    assert sum(1 for k in python if k) > 500  # the random cases do reach a key
