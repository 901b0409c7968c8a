"""Passkeys (WebAuthn), invitations, server-side sessions and access control."""
