"""Tamper evidence: per-incident hash chains over the events, and signed receipts."""
