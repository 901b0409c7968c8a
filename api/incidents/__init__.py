"""Incidents: the crew's records, their sync, case numbers and history."""
