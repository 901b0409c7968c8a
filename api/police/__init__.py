"""The police posts' side: alerts routed to a post, acknowledgement, escalation."""
