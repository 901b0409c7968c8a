// The SOS stand-down PINs, never kept in clear (api/sos/models.py SosPin).
//
// A PIN becomes a key on the phone: PBKDF2-SHA256(PIN, the person's salt,
// 100 000 rounds). The server keeps a slow hash of each key and tells them
// apart; every phone of the person keeps only the salt and SHA-256 of each
// key, sorted, so it can check a PIN with no signal without knowing, or
// showing, which of the two it is. The phone shows "cancelled" for both and
// sends the key (not the PIN); the server decides: stand down, or duress.

export const ROUNDS = 100000;
export const PIN_PATTERN = /^[0-9]{4,8}$/;

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const bytes = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));

export function newSalt() {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

/** The key a PIN stands for (64 hex digits). */
export async function deriveKey(pin, salt) {
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(pin),
    "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: bytes(salt), iterations: ROUNDS }, material, 256);
  return hex(bits);
}

/** What the phone keeps of a key: SHA-256 of its bytes. */
export async function verifierOf(key) {
  return hex(await crypto.subtle.digest("SHA-256", bytes(key)));
}

/** The key if `pin` is one of the person's two PINs (which one is not known here), else null. */
export async function checkPin(pin, kept) {
  if (!kept || !kept.salt || !PIN_PATTERN.test(pin)) return null;
  const key = await deriveKey(pin, kept.salt);
  return (kept.verifiers || []).includes(await verifierOf(key)) ? key : null;
}
