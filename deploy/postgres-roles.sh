#!/bin/sh
# Run once by the postgres image on an empty volume (/docker-entrypoint-initdb.d):
# the owner role that holds the schema and runs migrations, and the server's
# role, which gets only the grants `devid-ca migrate` gives it.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$DEVID_OWNER_PASSWORD" -v server_password="$DEVID_SERVER_PASSWORD" <<'SQL'
create role devid_owner login password :'owner_password';
create role devid_server login password :'server_password';
create database devid owner devid_owner;
revoke all on database devid from public;
grant connect on database devid to devid_server;
SQL
