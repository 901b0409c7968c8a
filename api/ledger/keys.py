"""The server's Ed25519 receipt-signing key: from the environment, or made once.

LEDGER_PRIVATE_KEY (env QORGAU_LEDGER_PRIVATE_KEY, PEM) wins; otherwise the key
lives in LEDGER_KEY_FILE (default instance/ledger_ed25519.pem, mode 0600),
generated on first use and read from there ever after, so receipts a phone
kept stay verifiable across restarts. The key id is the first 16 hex digits
of SHA-256 over the raw 32-byte public key.
"""

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from flask import Flask

from api.config import read_or_create_secret

ALGORITHM = "Ed25519"


class LedgerKeyError(Exception):
    """The configured key or the key file is not an Ed25519 private key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_file(app: Flask) -> Path:
    return Path(app.config.get("LEDGER_KEY_FILE")
                or os.path.join(app.instance_path, "ledger_ed25519.pem"))


def _load(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.strip(), password=None)
    except (ValueError, TypeError) as err:
        raise LedgerKeyError(f"the ledger private key cannot be read: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerKeyError("the ledger private key is not an Ed25519 key")
    return key


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


def signing_key(app: Flask) -> Ed25519PrivateKey:
    """The private key, loaded once per app."""
    cached = app.extensions.get("qorgau_ledger_key")
    if cached is not None:
        return cached
    configured = app.config.get("LEDGER_PRIVATE_KEY")
    if configured:
        key = _load(configured.encode() if isinstance(configured, str) else configured)
    else:
        key = _load(read_or_create_secret(key_file(app), _new_private_pem))
    app.extensions["qorgau_ledger_key"] = key
    return key


def public_raw(app: Flask) -> bytes:
    return signing_key(app).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


def key_id(app: Flask) -> str:
    return key_id_of(public_raw(app))


def public_key(app: Flask) -> Ed25519PublicKey:
    return signing_key(app).public_key()
