"""Hazard flags: places where crews were threatened or attacked, so the next crew
sent there is warned before it enters (see docs/hazards.md)."""
