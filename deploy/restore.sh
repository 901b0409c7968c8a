#!/usr/bin/env bash
# Restore a dump made by backup.sh into a NEW (or empty) database.
#
#   deploy/restore.sh /var/backups/qorgau/qorgau-20250101T020000Z.dump \
#       postgresql://qorgau@db-host/qorgau_restored
#
# The target database is created when it does not exist (the role in the URL
# needs CREATEDB then) and must hold no tables: a restore never overwrites a
# live database. Objects are owned by the role in the URL. The whole restore is
# one transaction: it succeeds completely or leaves nothing behind. Then check
# it (docs/deploy.md, "Restore") and point DATABASE_URL at it.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 DUMP_FILE TARGET_DATABASE_URL" >&2; exit 2; }
dump=$1
url=${2/postgresql+psycopg:/postgresql:}
url=${url/postgres:/postgresql:}
[ -r "$dump" ] || { echo "restore: cannot read $dump" >&2; exit 1; }

# postgresql://user@host:port/NAME?params -> NAME, and the same URL on "postgres".
rest=${url#*://}; path=${rest#*/}; name=${path%%\?*}
[ "$rest" != "$path" ] && [ -n "$name" ] || { echo "restore: no database name in $url" >&2; exit 1; }
query=; [ "$path" != "$name" ] && query="?${path#*\?}"
admin_url="${url%%://*}://${rest%%/*}/postgres$query"

# (psql interpolates :'name' as a quoted literal only in a script, not in -c.)
exists=$(psql --no-password -X -tAq --dbname="$admin_url" -v name="$name" \
    <<<"SELECT 1 FROM pg_database WHERE datname = :'name'")
if [ -z "$exists" ]; then
    # createdb quotes the name itself.
    createdb --no-password --maintenance-db="$admin_url" "$name"
    echo "restore: created database $name" >&2
else
    tables=$(psql --no-password -X -tAq --dbname="$url" -c \
        "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    if [ "$tables" != 0 ]; then
        echo "restore: database $name already has $tables tables; restore into a new one" >&2
        exit 1
    fi
fi

pg_restore --no-password --no-owner --no-privileges --exit-on-error --single-transaction \
    --dbname="$url" "$dump"
echo "restore: $dump restored into $name" >&2
