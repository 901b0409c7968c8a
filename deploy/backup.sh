#!/usr/bin/env bash
# Back up Qorgau's PostgreSQL database: one pg_dump custom-format file per run.
#
#   DATABASE_URL=postgresql://qorgau@db-host/qorgau deploy/backup.sh
#
# Settings (environment; /etc/qorgau/qorgau.env under systemd):
#   DATABASE_URL              the database to dump (the app's own setting)
#   QORGAU_BACKUP_DIR         where dumps go           (default /var/backups/qorgau)
#   QORGAU_BACKUP_KEEP_DAYS   dumps older are deleted  (default 14; 0 keeps all)
# Prints the path of the new dump. The dump is written under a temporary name,
# checked with pg_restore --list and only then renamed, so a file named
# qorgau-*.dump is always complete. Copy the directory off the machine.
set -euo pipefail

url=${DATABASE_URL:?DATABASE_URL must name the database to back up}
url=${url/postgresql+psycopg:/postgresql:}   # the SQLAlchemy spelling, for libpq
url=${url/postgres:/postgresql:}
dir=${QORGAU_BACKUP_DIR:-/var/backups/qorgau}
keep=${QORGAU_BACKUP_KEEP_DAYS:-14}

umask 077
mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dir/qorgau-$stamp.dump"
partial="$final.partial"
trap 'rm -f "$partial"' EXIT

pg_dump --format=custom --compress=6 --no-password --file="$partial" --dbname="$url"
pg_restore --list "$partial" >/dev/null   # readable from end to end
mv "$partial" "$final"

if [ "$keep" -gt 0 ]; then
    find "$dir" -maxdepth 1 -name 'qorgau-*.dump' -mtime "+$keep" -delete
fi
echo "$final"
