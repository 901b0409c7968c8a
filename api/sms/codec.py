"""The SMS message format, version 1: decode and verify (the phone's encoder is
pwa/js/sms_codec.js; tests/test_sms_codec.py runs one against the other).

What the phone sends (GSM-7 only, at most 160 characters, about 105 in use):

    QORGAU SOS 43.23812,76.94561/12M 1000002K 5ZQ3W8... (64 code characters)

- `QORGAU SOS`, then the position to 5 decimals with its accuracy in metres
  (`/12M`, left out when unknown), or `NOLOC`: readable by a person at the
  gateway phone even when nothing else is;
- the code, in Crockford base 32 (0-9 and A-Z without I, L, O, U; fixed widths):
  version (1), key id = the session's id (7), the record's UUID (26), kind (1),
  circumstances as a bit mask (1), the tap's device time in Unix milliseconds (9),
  its UTC offset in minutes + 1024 (3), and the MAC (16): the first 80 bits of
  HMAC-SHA256 under the device's SMS key over everything before it, normalised.

Normalised = every whitespace character removed and upper-cased, so a phone
that re-spaces or lower-cases the text changes nothing that is verified.
No Flask, no database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

VERSION = 1
PREFIX = "QORGAUSOS"
MAX_LENGTH = 160
# The tables of format version 1 (the order is the wire's; a new kind or
# circumstance is a new format version: tests/test_sms_codec.py checks both
# against the rules document).
KINDS = ("threat", "violence", "violence_dangerous", "unspecified", "other")
CIRCUMSTANCES = ("two_or_more_victims", "group", "repeated", "emergency_or_riots",
                 "state_of_emergency_area")

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Crockford's reading of look-alikes: I and L are 1, O is 0.
_VALUES = {c: i for i, c in enumerate(ALPHABET)} | {"I": 1, "L": 1, "O": 0}
MAC_CHARS = 16
MAC_BYTES = 10
WIDTHS = (("version", 1), ("key_id", 7), ("id", 26), ("kind", 1), ("circumstances", 1),
          ("tapped_ms", 9), ("offset", 3), ("mac", MAC_CHARS))
CODE_CHARS = sum(w for _, w in WIDTHS)
OFFSET_BIAS = 1024

# GSM 03.38: the basic set and the extension table (each extension character
# costs two of the 160 septets).
GSM7_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
              "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = "\f^{}\\[~]|€"

_LOCATION = re.compile(r"(-?\d{1,2}\.\d{5}),(-?\d{1,3}\.\d{5})(?:/(\d{1,5})M)?")


class SmsError(ValueError):
    """Why a message cannot be read; `reason` is a short code for logs and events."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SmsRecord:
    """What a version 1 message carries; `signed` is the normalised text the MAC covers."""

    key_id: int
    id: uuid.UUID
    kind: str
    aggravating: list
    tapped_at: datetime
    location: dict | None
    mac: bytes
    signed: str
    normalised: str


def septets(text: str) -> int | None:
    """The message's length in GSM-7 septets, or None if any character is not GSM-7."""
    n = 0
    for ch in text:
        if ch in GSM7_BASIC:
            n += 1
        elif ch in GSM7_EXTENDED:
            n += 2
        else:
            return None
    return n


def normalise(text: str) -> str:
    return "".join(text.split()).upper()


def b32_int(chars: str) -> int:
    value = 0
    for ch in chars:
        if ch not in _VALUES:
            raise SmsError("malformed", f"{ch!r} is not a code character.")
        value = value * 32 + _VALUES[ch]
    return value


def b32_chars(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(ALPHABET[value % 32])
        value //= 32
    if value:
        raise ValueError("value too large for its width")
    return "".join(reversed(out))


def mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES]


def parse(text: str) -> SmsRecord:
    """Read a message (not yet verified: see verify). Raises SmsError with a reason:
    non_gsm, not_qorgau, concatenated, truncated, malformed, version. Its length
    is not checked: the phone's fits one SMS, one re-spaced on the way may not."""
    body = normalise(text)
    if PREFIX not in body:
        raise SmsError("not_qorgau", "No QORGAU SOS prefix.")
    if septets(text) is None:
        bad = next(ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENDED)
        raise SmsError("non_gsm", f"Character U+{ord(bad):04X} is not in the GSM-7 alphabet.")
    if body.count(PREFIX) > 1:
        raise SmsError("concatenated", "More than one message in one text.")
    if not body.startswith(PREFIX):
        raise SmsError("concatenated", "Text before the QORGAU SOS prefix.")
    rest = body[len(PREFIX):]
    location = None
    if rest.startswith("NOLOC"):
        rest = rest[len("NOLOC"):]
    else:
        match = _LOCATION.match(rest)
        if match is None:
            raise SmsError("malformed" if rest else "truncated", "No readable position.")
        lat, lon = float(match[1]), float(match[2])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise SmsError("malformed", "Position out of range.")
        location = {"lat": lat, "lon": lon, "source": "gps",
                    "accuracy_m": float(match[3]) if match[3] is not None else None}
        rest = rest[match.end():]
    if len(rest) < CODE_CHARS:
        raise SmsError("truncated", f"The code has {len(rest)} of {CODE_CHARS} characters.")
    if len(rest) > CODE_CHARS:
        raise SmsError("concatenated", f"The code has {len(rest)} characters, not {CODE_CHARS}.")
    fields, at = {}, 0
    for name, width in WIDTHS:
        fields[name] = rest[at:at + width]
        at += width
    if b32_int(fields["version"]) != VERSION:
        raise SmsError("version", f"Unknown format version {fields['version']}.")
    kind = b32_int(fields["kind"])
    if kind >= len(KINDS):
        raise SmsError("malformed", "Unknown kind.")
    mask = b32_int(fields["circumstances"])
    offset = b32_int(fields["offset"]) - OFFSET_BIAS
    if abs(offset) > 18 * 60:
        raise SmsError("malformed", "Impossible UTC offset.")
    try:
        instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            milliseconds=b32_int(fields["tapped_ms"]))
        tapped_at = instant.astimezone(timezone(timedelta(minutes=offset)))
        ident = uuid.UUID(int=b32_int(fields["id"]))
    except (OverflowError, ValueError) as err:
        raise SmsError("malformed", "Unreadable time or id.") from err
    # The MAC's own characters are read leniently too (Crockford), as the rest.
    mac_value = b32_int(fields["mac"])
    if mac_value >> (MAC_BYTES * 8):
        raise SmsError("malformed", "Unreadable MAC.")
    return SmsRecord(
        key_id=b32_int(fields["key_id"]), id=ident, kind=KINDS[kind],
        aggravating=[c for i, c in enumerate(CIRCUMSTANCES) if mask >> i & 1],
        tapped_at=tapped_at, location=location,
        mac=mac_value.to_bytes(MAC_BYTES, "big"),
        signed=body[:-MAC_CHARS], normalised=body)


def verify(record: SmsRecord, key: bytes) -> bool:
    return hmac.compare_digest(mac(key, record.signed), record.mac)


def sync_record(record: SmsRecord) -> dict:
    """The record as the sync endpoint would take it (revision set by the caller)."""
    return {"id": str(record.id), "tapped_at": record.tapped_at.isoformat(),
            "kind": record.kind, "aggravating": list(record.aggravating),
            "police_needed": True, "location": record.location}


def canonical(record: SmsRecord) -> str:
    """The message exactly as the phone's encoder writes it (spaces and case)."""
    body = record.normalised
    code = body[len(body) - CODE_CHARS:]
    position = body[len(PREFIX):len(body) - CODE_CHARS]
    groups = " ".join(code[i:i + 8] for i in range(0, CODE_CHARS, 8))
    return f"QORGAU SOS {position} {groups}"
