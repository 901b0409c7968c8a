"""Organisations: regions, ambulance stations, police posts and people."""
