"""Addresses as people type them, reduced to one key per building.

pwa/js/address.js is the same algorithm, line for line, so the phone matches
offline exactly as the server does (tests/test_hazards_address.py runs both on
the same spellings in Chromium). Change one, change the other.

The key is "<place words> <house>": the street's or microdistrict's name and
the house number. Kinds of street (ул./улица/көшесі, пр./проспект/даңғылы,
пер., мкр./микрорайон/шағын аудан/ш.а.) are dropped, so "пр. Абая 10",
"Абай даңғылы... " spellings of one kind agree and a crew member who types just
"Абая 10" still matches; a city ("г. Алматы", "Алматы қаласы") is dropped; the
flat (кв./квартира/пәтер, or "10-5") is dropped: a flag warns for the whole
building, because whoever threatened a crew in flat 5 meets the next crew on
the stairs. Letters are folded: case, ё→е, Kazakh letters to their Russian
look-alikes (ә→а, қ→к, ң→н, ө→о, ұ/ү→у, і→и, ғ→г, һ→х), and Latin letters
that look like Cyrillic ones (a e o p c x y k m t h b, and i) to Cyrillic.
With no house number there is no building, and no key ("").
"""

import re
import unicodedata

FOLD = str.maketrans({
    "ё": "е", "ә": "а", "ғ": "г", "қ": "к", "ң": "н", "ө": "о", "ұ": "у", "ү": "у",
    "һ": "х", "і": "и",
    "a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "k": "к",
    "m": "м", "t": "т", "h": "н", "b": "в", "i": "и",
})

STREET = frozenset({"ул", "улица", "кошеси", "коше", "кош", "пр", "пркт", "проспект",
                    "дангылы", "данг", "дан", "пер", "переулок", "мкр", "мкрн", "микрорайон",
                    "мр", "ауданы", "бульвар", "бул", "трасса", "тракт"})
HOUSE = frozenset({"д", "дом"})           # before the number (Russian): "д. 10"
HOUSE_AFTER = frozenset({"уй"})           # after it (Kazakh): "10-үй"
FLAT = frozenset({"кв", "квартира"})      # "кв. 5"
FLAT_AFTER = frozenset({"патер", "пат"})  # "5-пәтер"
BUILDING = frozenset({"корп", "корпус"})  # "10 корпус 1" is house "10/1"
CITY = frozenset({"г", "город", "гор"})
CITY_AFTER = frozenset({"каласы", "кал"})
CITY_NAMES = frozenset({"алматы", "астана", "шымкент"})
# Two-token kinds: "пр-т", "пр-кт", "ш.а.", "шағын аудан".
PAIRS = frozenset({("пр", "т"), ("пр", "кт"), ("ш", "а"), ("шагын", "аудан"),
                   ("шагын", "ауданы")})
# Never a house number's letter: markers that are one letter long.
NOT_A_LETTER = frozenset({"д", "г", "ш", "к", "п"})
VOWELS = "аоуеиыэюя"

FLAT_DASH = re.compile(r"([0-9])\s*-\s*([0-9])")
TOKEN = re.compile(r"[0-9]+[а-яa-z](?![а-яa-z])|[0-9]+|[а-яa-z]+|/")
NUMBER = re.compile(r"[0-9]+[а-яa-z]?")


def fold(text: str) -> str:
    return unicodedata.normalize("NFC", text or "").lower().translate(FOLD)


def tokens(text: str) -> list[str]:
    folded = FLAT_DASH.sub(r"\1 кв \2", fold(text))
    return TOKEN.findall(folded)


def is_number(token: str | None) -> bool:
    return token is not None and NUMBER.fullmatch(token) is not None


def is_word(tok: str | None) -> bool:
    return tok is not None and not is_number(tok) and tok != "/"


def word(token: str) -> str:
    """A name's Russian genitive in -ая/-уя... as its nominative: "Абая" is "Абай"."""
    if len(token) > 2 and token[-1] == "я" and token[-2] in VOWELS:
        return token[:-1] + "й"
    return token


def address_key(text: str) -> str:
    """The building's key, or "" when the text names no house number."""
    toks = tokens(text)
    place: list[str] = []
    numbers: list[int] = []  # positions in `place` of bare numbers
    house = ""
    i, n = 0, len(toks)
    while i < n:
        tok = toks[i]
        nxt = toks[i + 1] if i + 1 < n else None
        if (tok, nxt) in PAIRS:
            i += 2
        elif tok in STREET or tok in HOUSE_AFTER or tok in FLAT_AFTER or tok == "/":
            i += 1
        elif (tok in CITY and is_word(nxt)) or (nxt in CITY_AFTER and is_word(tok)):
            i += 2
        elif tok in CITY_AFTER:
            i += 1
        elif tok in FLAT:
            i += 2 if is_number(nxt) else 1
        elif tok in HOUSE:
            if is_number(nxt):
                house, i = read_number(toks, i + 1)
            else:
                i += 1
        elif tok in BUILDING:
            if is_number(nxt) and house:
                house += "/" + nxt
            elif is_number(nxt) and numbers:
                place[numbers[-1]] += "/" + nxt
            i += 2 if is_number(nxt) else 1
        elif is_number(tok):
            number, i = read_number(toks, i)
            after = toks[i] if i < n else None
            if after in HOUSE_AFTER:
                house = number
                i += 1
            elif after in FLAT_AFTER:
                i += 1
            else:
                numbers.append(len(place))
                place.append(number)
        else:
            place.append(word(tok))
            i += 1
    if not house and numbers:
        house = place.pop(numbers[-1])
    if len(place) > 1 and place[0] in CITY_NAMES:
        place = place[1:]
    if not house or not place:
        return ""
    return " ".join(place) + " " + house


def read_number(toks: list[str], i: int) -> tuple[str, int]:
    """A number at toks[i], with its letter ("10 а") or part ("10/1") if one follows."""
    number = toks[i]
    i += 1
    nxt = toks[i] if i < len(toks) else None
    if number.isdigit() and nxt is not None and len(nxt) == 1 and nxt.isalpha() \
            and nxt not in NOT_A_LETTER:
        number += nxt
        i += 1
    elif nxt == "/" and i + 1 < len(toks) and toks[i + 1].isdigit():
        number += "/" + toks[i + 1]
        i += 2
    return number, i
