// Addresses as people type them, reduced to one key per building: the same
// algorithm as api/hazards/address.py, line for line, so the phone matches
// offline exactly as the server does (tests/test_hazards_address.py runs both
// on the same spellings in Chromium). Change one, change the other. The rules
// are explained there; in short: "<place words> <house>", kinds of street,
// cities and flats dropped, letters folded (case, ё, Kazakh, Latin look-alikes).

const FOLD = {
  "ё": "е", "ә": "а", "ғ": "г", "қ": "к", "ң": "н", "ө": "о", "ұ": "у", "ү": "у",
  "һ": "х", "і": "и",
  a: "а", e: "е", o: "о", p: "р", c: "с", x: "х", y: "у", k: "к",
  m: "м", t: "т", h: "н", b: "в", i: "и",
};

const STREET = new Set(["ул", "улица", "кошеси", "коше", "кош", "пр", "пркт", "проспект",
  "дангылы", "данг", "дан", "пер", "переулок", "мкр", "мкрн", "микрорайон",
  "мр", "ауданы", "бульвар", "бул", "трасса", "тракт"]);
const HOUSE = new Set(["д", "дом"]);
const HOUSE_AFTER = new Set(["уй"]);
const FLAT = new Set(["кв", "квартира"]);
const FLAT_AFTER = new Set(["патер", "пат"]);
const BUILDING = new Set(["корп", "корпус"]);
const CITY = new Set(["г", "город", "гор"]);
const CITY_AFTER = new Set(["каласы", "кал"]);
const CITY_NAMES = new Set(["алматы", "астана", "шымкент"]);
const PAIRS = new Set(["пр т", "пр кт", "ш а", "шагын аудан", "шагын ауданы"]);
const NOT_A_LETTER = new Set(["д", "г", "ш", "к", "п"]);
const VOWELS = "аоуеиыэюя";

const FLAT_DASH = /([0-9])\s*-\s*([0-9])/g;
const TOKEN = /[0-9]+[а-яa-z](?![а-яa-z])|[0-9]+|[а-яa-z]+|\//g;
const NUMBER = /^[0-9]+[а-яa-z]?$/;
const DIGITS = /^[0-9]+$/;
const LETTER = /^[а-яa-z]$/;

export function fold(text) {
  return Array.from((text || "").normalize("NFC").toLowerCase(),
    (ch) => FOLD[ch] ?? ch).join("");
}

export function tokens(text) {
  const folded = fold(text).replace(FLAT_DASH, "$1 кв $2");
  return folded.match(TOKEN) || [];
}

const isNumber = (token) => token != null && NUMBER.test(token);
const isWord = (token) => token != null && !isNumber(token) && token !== "/";

function word(token) {
  if (token.length > 2 && token.at(-1) === "я" && VOWELS.includes(token.at(-2))) {
    return token.slice(0, -1) + "й";
  }
  return token;
}

// The building's key, or "" when the text names no house number.
export function addressKey(text) {
  const toks = tokens(text);
  let place = [];
  const numbers = [];
  let house = "";
  let i = 0;
  const n = toks.length;
  while (i < n) {
    const tok = toks[i];
    const nxt = i + 1 < n ? toks[i + 1] : null;
    if (nxt != null && PAIRS.has(`${tok} ${nxt}`)) {
      i += 2;
    } else if (STREET.has(tok) || HOUSE_AFTER.has(tok) || FLAT_AFTER.has(tok) || tok === "/") {
      i += 1;
    } else if (CITY.has(tok) && isWord(nxt)) {
      i += 2;
    } else if (CITY_AFTER.has(nxt) && isWord(tok)) {
      i += 2;
    } else if (CITY_AFTER.has(tok)) {
      i += 1;
    } else if (FLAT.has(tok)) {
      i += isNumber(nxt) ? 2 : 1;
    } else if (HOUSE.has(tok)) {
      if (isNumber(nxt)) [house, i] = readNumber(toks, i + 1);
      else i += 1;
    } else if (BUILDING.has(tok)) {
      if (isNumber(nxt) && house) house += "/" + nxt;
      else if (isNumber(nxt) && numbers.length) place[numbers.at(-1)] += "/" + nxt;
      i += isNumber(nxt) ? 2 : 1;
    } else if (isNumber(tok)) {
      let number;
      [number, i] = readNumber(toks, i);
      const after = i < n ? toks[i] : null;
      if (HOUSE_AFTER.has(after)) {
        house = number;
        i += 1;
      } else if (FLAT_AFTER.has(after)) {
        i += 1;
      } else {
        numbers.push(place.length);
        place.push(number);
      }
    } else {
      place.push(word(tok));
      i += 1;
    }
  }
  if (!house && numbers.length) house = place.splice(numbers.at(-1), 1)[0];
  if (place.length > 1 && CITY_NAMES.has(place[0])) place = place.slice(1);
  if (!house || !place.length) return "";
  return place.join(" ") + " " + house;
}

function readNumber(toks, i) {
  let number = toks[i];
  i += 1;
  const nxt = i < toks.length ? toks[i] : null;
  if (DIGITS.test(number) && nxt != null && LETTER.test(nxt) && !NOT_A_LETTER.has(nxt)) {
    number += nxt;
    i += 1;
  } else if (nxt === "/" && i + 1 < toks.length && DIGITS.test(toks[i + 1])) {
    number += "/" + toks[i + 1];
    i += 2;
  }
  return [number, i];
}

// Metres between two points on the Earth (haversine; plenty for 50 m circles).
export function distanceM(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const dlat = (lat2 - lat1) * rad;
  const dlon = (lon2 - lon1) * rad;
  const a = Math.sin(dlat / 2) ** 2
    + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * 6371000 * Math.asin(Math.sqrt(a));
}
