"""Check-in timers (issue 16): the server's timer is the one that counts."""
