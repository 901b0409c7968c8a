"""The server's VAPID key pair (RFC 8292): from the environment, or made once.

Browsers bind a subscription to the public key they subscribed with, so the
key must survive restarts: a generated key is written to the instance folder
(mode 0600) and read from there ever after.
"""

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from flask import Flask
from py_vapid import Vapid02

from api.config import read_or_create_secret


class VapidConfigError(Exception):
    """PUSH_VAPID_PRIVATE_KEY or the key file cannot be read as a P-256 key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_file(app: Flask) -> Path:
    return Path(app.config.get("PUSH_VAPID_KEY_FILE")
                or os.path.join(app.instance_path, "vapid_private.pem"))


def _from_text(text: str) -> Vapid02:
    text = text.strip()
    try:
        if "-----BEGIN" in text:
            return Vapid02.from_pem(text.encode())
        return Vapid02.from_string(text)  # base64url raw 32 bytes or DER
    except Exception as err:  # py_vapid raises assorted errors for bad input
        raise VapidConfigError(f"the VAPID private key cannot be read: {err}") from err


def _new_private_pem() -> bytes:
    vapid = Vapid02()
    vapid.generate_keys()
    return vapid.private_pem()


def vapid_key(app: Flask) -> Vapid02:
    """The key pair, loaded once per app (from config, else the key file)."""
    cached = app.extensions.get("qorgau_vapid")
    if cached is not None:
        return cached
    configured = app.config.get("PUSH_VAPID_PRIVATE_KEY")
    if configured:
        key = _from_text(configured)
    else:
        key = _from_text(read_or_create_secret(key_file(app), _new_private_pem).decode())
    app.extensions["qorgau_vapid"] = key
    return key


def public_key(app: Flask) -> str:
    """The applicationServerKey a browser subscribes with: base64url, uncompressed point."""
    raw = vapid_key(app).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(raw)
