"""A software passkey authenticator, so tests can send real WebAuthn responses.

It does what a phone does for navigator.credentials.create() and .get(): an
EC P-256 key, clientDataJSON, authenticatorData (flags, sign count, attested
credential data with a COSE key), a "none" attestation object, and ES256
signatures over authenticatorData || SHA-256(clientDataJSON). The output is
the PublicKeyCredential JSON a browser's toJSON() gives, so py_webauthn
verifies it exactly as it verifies a real phone's.
"""

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes.fromhex("00112233445566778899aabbccddeeff")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class SoftCredential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1,  # kty EC2, alg ES256, crv P-256
                            -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})


@dataclass
class SoftAuthenticator:
    """One phone: it can hold several discoverable credentials."""

    origin: str
    backup_eligible: bool = True
    user_verifying: bool = True
    credentials: list[SoftCredential] = field(default_factory=list)

    def _flags(self, *extra: int) -> int:
        flags = UP | (UV if self.user_verifying else 0)
        if self.backup_eligible:
            flags |= BE | BS
        for f in extra:
            flags |= f
        return flags

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin,
                           "crossOrigin": False}, separators=(",", ":")).encode()

    def create(self, options: dict, *, origin: str | None = None,
               challenge: str | None = None) -> dict:
        """navigator.credentials.create(): a new credential and its attestation."""
        rp_id = options["rp"]["id"]
        cred = SoftCredential(credential_id=os.urandom(32),
                              private_key=ec.generate_private_key(ec.SECP256R1()),
                              rp_id=rp_id, user_handle=b64url_decode(options["user"]["id"]))
        client_data = self.client_data("webauthn.create", challenge or options["challenge"],
                                       origin or self.origin)
        attested = (AAGUID + struct.pack(">H", len(cred.credential_id)) + cred.credential_id
                    + cred.cose_public_key())
        auth_data = (hashlib.sha256(rp_id.encode()).digest()
                     + bytes([self._flags(AT)]) + struct.pack(">I", cred.sign_count) + attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.credentials.append(cred)
        return {
            "id": b64url(cred.credential_id), "rawId": b64url(cred.credential_id),
            "type": "public-key", "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data),
                         "attestationObject": b64url(attestation),
                         "transports": ["internal", "hybrid"]},
        }

    def get(self, options: dict, *, credential: SoftCredential | None = None,
            origin: str | None = None, sign_count: int | None = None,
            challenge: str | None = None) -> dict:
        """navigator.credentials.get(): an assertion by a discoverable credential."""
        cred = credential or next(c for c in self.credentials if c.rp_id == options["rpId"])
        cred.sign_count = cred.sign_count + 1 if sign_count is None else sign_count
        client_data = self.client_data("webauthn.get", challenge or options["challenge"],
                                       origin or self.origin)
        auth_data = (hashlib.sha256(cred.rp_id.encode()).digest() + bytes([self._flags()])
                     + struct.pack(">I", cred.sign_count))
        signature = cred.private_key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                          ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(cred.credential_id), "rawId": b64url(cred.credential_id),
            "type": "public-key", "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data),
                         "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature),
                         "userHandle": b64url(cred.user_handle)},
        }
