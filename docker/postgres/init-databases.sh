#!/bin/sh
# /docker-entrypoint-initdb.d hook of the postgres image: runs once, on an empty data volume.
# Creates tsad's records database and role next to Airflow's metadata database (databases.sql).
set -eu
psql --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --no-psqlrc \
    -v airflow_db="$POSTGRES_DB" \
    -v tsad_db="${TSAD_DB_NAME:-tsad}" \
    -v tsad_user="${TSAD_DB_USER:-tsad}" \
    -v tsad_password="$TSAD_DB_PASSWORD" \
    -f /opt/tsad-init/databases.sql
