// The SMS message of an urgent record, format version 1 (read and verified by
// api/sms/codec.py, which describes the format; tests/test_sms_codec.py runs
// this encoder against it). No DOM, no IndexedDB: node runs it too.
//
//   QORGAU SOS 43.23812,76.94561/12M 1000002K 5ZQ3W8AB ... (GSM-7, about 105 characters)

export const VERSION = 1;
export const KINDS = ["threat", "violence", "violence_dangerous", "unspecified", "other"];
export const CIRCUMSTANCES = ["two_or_more_victims", "group", "repeated", "emergency_or_riots",
  "state_of_emergency_area"];
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const OFFSET_BIAS = 1024;
const MAC_BYTES = 10;
export const MAX_LENGTH = 160;

/** `value` (a BigInt or a number) in `width` base-32 characters. */
export function b32(value, width) {
  let v = BigInt(value);
  if (v < 0n) throw new RangeError("negative");
  let out = "";
  for (let i = 0; i < width; i += 1) {
    out = ALPHABET[Number(v % 32n)] + out;
    v /= 32n;
  }
  if (v !== 0n) throw new RangeError("too large for its width");
  return out;
}

function bytesToBigInt(bytes) {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** Minutes east of UTC of an ISO 8601 instant written with its offset ("Z" is 0). */
export function offsetMinutes(iso) {
  const m = /([+-])(\d{2}):?(\d{2})$/.exec(iso);
  if (!m) return 0;
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

function base64urlBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** The readable position: 5 decimals, and the accuracy in whole metres (rounded up). */
export function positionText(location) {
  if (!location || !Number.isFinite(location.lat) || !Number.isFinite(location.lon)) {
    return "NOLOC";
  }
  // toFixed(5) of -0.000001 is "-0.00000": the sign of a zero says nothing.
  const fixed = (x) => x.toFixed(5).replace(/^-(0\.0+)$/, "$1");
  let text = `${fixed(location.lat)},${fixed(location.lon)}`;
  if (Number.isFinite(location.accuracy_m) && location.accuracy_m >= 0) {
    text += `/${Math.min(99999, Math.ceil(location.accuracy_m))}M`;
  }
  return text;
}

/**
 * The message for `record` ({id, kind, aggravating, tapped_at, location}) under the
 * device's SMS credentials `key` ({key_id, key: base64url}). Resolves to a string.
 */
export async function encode(record, key) {
  let kindIndex = KINDS.indexOf(record.kind);
  if (kindIndex < 0) kindIndex = KINDS.indexOf("unspecified");
  let mask = 0;
  for (const c of record.aggravating || []) {
    const i = CIRCUMSTANCES.indexOf(c);
    if (i >= 0) mask |= 1 << i;
  }
  const ms = Date.parse(record.tapped_at);
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError("tapped_at");
  const code = [
    b32(VERSION, 1), b32(key.key_id, 7),
    b32(BigInt(`0x${String(record.id).replace(/-/g, "")}`), 26),
    b32(kindIndex, 1), b32(mask, 1), b32(ms, 9),
    b32(offsetMinutes(record.tapped_at) + OFFSET_BIAS, 3),
  ].join("");
  const position = positionText(record.location);
  const signed = `QORGAUSOS${position}${code}`;
  const cryptoKey = await crypto.subtle.importKey("raw", base64urlBytes(key.key),
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const digest = new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey,
    new TextEncoder().encode(signed)));
  const full = code + b32(bytesToBigInt(digest.slice(0, MAC_BYTES)), 16);
  const groups = full.match(/.{1,8}/g).join(" ");
  return `QORGAU SOS ${position} ${groups}`;
}

/** The `sms:` link (RFC 5724) that opens the messaging app with the message filled in. */
export function smsLink(number, body) {
  return `sms:${encodeURIComponent(number).replace(/%2B/g, "+")}?body=${encodeURIComponent(body)}`;
}
