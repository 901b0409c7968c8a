"""Keyset pagination cursors: the sort values of a page's last row, as an opaque
URL-safe token (base64url of a JSON list, unpadded)."""

import base64
import binascii
import json


def encode(values: list) -> str:
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> list:
    """The values encode() was given; ValueError for anything else."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError) as err:
        raise ValueError("not a cursor") from err
    if not isinstance(values, list):
        raise ValueError("not a cursor")
    return values
