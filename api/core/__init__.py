"""What belongs to no domain: health, the PWA files in the one-process run, demo data."""
