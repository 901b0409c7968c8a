"""The PWA's SMS encoder (pwa/js/sms_codec.js, run by node) against the server's
decoder (api/sms/codec.py): whatever record the phone holds, the server reads the
same record back and verifies it with the device's key; a message changed in any
code character, or signed with another key, is refused."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.law.service import rules
from api.sms import codec
from tests.sms_helpers import js_encoder  # noqa: F401  (fixture)

KEY = bytes(range(32))

offsets = st.integers(-12 * 60, 14 * 60)
instants = st.integers(1_000_000_000_000, 4_000_000_000_000)  # 2001 .. 2096, in ms
locations = st.one_of(st.none(), st.fixed_dictionaries({
    "lat": st.floats(-90, 90, allow_nan=False), "lon": st.floats(-180, 180, allow_nan=False),
    "accuracy_m": st.one_of(st.none(), st.floats(0, 100_000, allow_nan=False)),
    "source": st.just("gps")}))
records = st.fixed_dictionaries({
    "id": st.uuids(), "kind": st.sampled_from(codec.KINDS),
    "aggravating": st.lists(st.sampled_from(codec.CIRCUMSTANCES), unique=True),
    "ms": instants, "offset": offsets, "location": locations})


def iso(ms: int, offset: int) -> str:
    """As the phone writes tapped_at (store.js localIso): milliseconds and the offset."""
    zone = timezone(timedelta(minutes=offset))
    instant = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(zone)
    text = instant.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if offset == 0 else text


def wire(r: dict) -> dict:
    return {"id": str(r["id"]), "kind": r["kind"], "aggravating": r["aggravating"],
            "tapped_at": iso(r["ms"], r["offset"]), "location": r["location"]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.integers(1, 2**31 - 1), st.binary(min_size=32, max_size=32))
def test_what_the_phone_encodes_the_server_reads_back(js_encoder, r, key_id, key):  # noqa: F811
    body = js_encoder.encode(wire(r), key_id, key)
    assert codec.septets(body) is not None and codec.septets(body) <= codec.MAX_LENGTH
    assert len(body) <= 112
    decoded = codec.parse(body)
    assert codec.verify(decoded, key)
    assert not codec.verify(decoded, bytes([key[0] ^ 1]) + key[1:])  # another device
    assert decoded.key_id == key_id
    assert decoded.id == r["id"]
    assert decoded.kind == r["kind"]
    assert sorted(decoded.aggravating) == sorted(r["aggravating"])
    # The same instant and the same offset: the later sync's tapped_at equals it exactly.
    tapped = datetime.fromisoformat(wire(r)["tapped_at"].replace("Z", "+00:00"))
    assert decoded.tapped_at == tapped
    assert decoded.tapped_at.utcoffset() == tapped.utcoffset()
    if r["location"] is None:
        assert decoded.location is None
    else:
        assert decoded.location["lat"] == pytest.approx(r["location"]["lat"], abs=5.1e-6)
        assert decoded.location["lon"] == pytest.approx(r["location"]["lon"], abs=5.1e-6)
        accuracy = r["location"]["accuracy_m"]
        if accuracy is None:
            assert decoded.location["accuracy_m"] is None
        else:
            assert accuracy <= decoded.location["accuracy_m"] <= max(accuracy + 1, 1)
    assert codec.canonical(decoded) == body


@settings(max_examples=60, deadline=None)
@given(records, st.data())
def test_lowercase_and_respaced_text_still_verifies(js_encoder, r, data):  # noqa: F811
    packed = js_encoder.encode(wire(r), 7, KEY).replace(" ", "")
    spaces = data.draw(st.lists(st.sampled_from(["", " ", "  ", "\n", "\r\n"]),
                                min_size=len(packed), max_size=len(packed)))
    rewritten = "".join(ch + sp for ch, sp in zip(packed, spaces, strict=True))
    if data.draw(st.booleans()):
        rewritten = rewritten.lower()
    decoded = codec.parse(rewritten)
    assert codec.verify(decoded, KEY)
    assert decoded.id == r["id"]


@settings(max_examples=60, deadline=None)
@given(records, st.data())
def test_any_changed_code_character_is_refused(js_encoder, r, data):  # noqa: F811
    body = js_encoder.encode(wire(r), 7, KEY)
    code_start = len(body) - (codec.CODE_CHARS + 7)  # 7 spaces between the 8 groups
    at = data.draw(st.integers(code_start, len(body) - 1).filter(lambda i: body[i] != " "))
    other = data.draw(st.sampled_from(codec.ALPHABET).filter(
        lambda c: codec.b32_int(c) != codec.b32_int(body[at])))
    changed = body[:at] + other + body[at + 1:]
    try:
        decoded = codec.parse(changed)
    except codec.SmsError:
        return
    assert not codec.verify(decoded, KEY)


def test_the_wire_tables_are_the_rules_documents():
    """Format 1 numbers the kinds and circumstances; a new one needs format 2."""
    document = rules()
    assert set(codec.KINDS) == {k["id"] for k in document["kinds"]}
    assert set(codec.CIRCUMSTANCES) == {c["id"] for c in document["aggravating_circumstances"]}


def example(js_encoder, **overrides):  # noqa: F811
    record = {"id": str(uuid.UUID(int=42)), "kind": "violence", "aggravating": ["group"],
              "tapped_at": "2026-12-03T17:05:01.123+05:00",
              "location": {"lat": 43.238123, "lon": 76.945612, "accuracy_m": 11.2}}
    return js_encoder.encode({**record, **overrides}, 12345, KEY)


def test_a_message_reads_as_a_person_would_expect(js_encoder):  # noqa: F811
    body = example(js_encoder)
    assert body.startswith("QORGAU SOS 43.23812,76.94561/12M ")
    assert len(body) == 104
    assert example(js_encoder, location=None).startswith("QORGAU SOS NOLOC ")


@pytest.mark.parametrize(("change", "reason"), [
    (lambda b: b[:-5], "truncated"),
    (lambda b: b[:40], "truncated"),
    (lambda b: b + " " + b, "concatenated"),
    (lambda b: b + "X", "concatenated"),
    (lambda b: "Hi " + b, "concatenated"),
    (lambda b: b.replace("QORGAU SOS", "QORGAU SOS Тревога"), "non_gsm"),
    (lambda b: b.replace(" 1", " “1"), "non_gsm"),
    (lambda b: "Call me back", "not_qorgau"),
    (lambda b: b.replace("QORGAU SOS 43", "QORGAU SOS 4x3"), "malformed"),
    (lambda b: b[:33] + "2" + b[34:], "version"),
])
def test_bad_messages_are_refused_with_a_reason(js_encoder, change, reason):  # noqa: F811
    with pytest.raises(codec.SmsError) as err:
        codec.parse(change(example(js_encoder)))
    assert err.value.reason == reason
