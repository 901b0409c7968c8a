"""SOS: a crew member's alarm while an attack is happening (issue 16).

An SOS is an incident marked police-needed-now (it travels the same outbox,
idempotency key and sync as any logged incident) with `sos` set; this package
keeps what is live about it: the alarm's state, the newest location fixes, the
officer's "on the way", the stand-down and duress PINs. See docs/sos.md.
"""
