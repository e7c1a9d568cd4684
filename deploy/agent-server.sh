#!/usr/bin/env bash
# The GEMS graph on a self-hosted LangGraph Agent Server (langhost: PostgreSQL + Redis),
# every step from an empty PostgreSQL server to serving workers. Run it on each server
# machine from anywhere; it works from the repository root (where langgraph.json is).
#
# Set (the script stops naming the first one missing):
#   PG_ADMIN_URL      a PostgreSQL superuser's URL; used once, to create the role and the database
#                     (psql gets it as an argument: leave its password to ~/.pgpass)
#   DATABASE_URI      the server's own URL, postgresql://ROLE:PASSWORD@HOST:PORT/DATABASE;
#                     the role and the database in it are created when missing
#   REDIS_URI         redis://HOST:PORT/0
#   GEMS_SERVER_KEYS  the keys clients send, 'owner:key' entries separated by commas; needed
#                     unless HOST is loopback (see gems_graph/app/server_auth.py)
#   GEMS_HOME         where runs write images and the experience store; with workers on several
#                     machines, a shared filesystem (the state holds paths under it)
# Optional: HOST (0.0.0.0), PORT (8123), WORKERS (4), JOBS_PER_WORKER (2), OMP_NUM_THREADS (1),
#   LG_BG_JOB_HEARTBEAT (5 s), GEMS_SERVER_PYTHON (.venv-server/bin/python: `make setup-dev` builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PG_ADMIN_URL:?set PG_ADMIN_URL to a PostgreSQL superuser URL (used once, to create the role and the database)}"
: "${DATABASE_URI:?set DATABASE_URI to postgresql://ROLE:PASSWORD@HOST:PORT/DATABASE (the role and database the server uses)}"
: "${REDIS_URI:?set REDIS_URI to redis://HOST:PORT/0}"
: "${GEMS_HOME:?set GEMS_HOME to the folder runs write images and memory to (shared storage across machines)}"
PY=${GEMS_SERVER_PYTHON:-.venv-server/bin/python}
HOST=${HOST:-0.0.0.0}
PORT=${PORT:-8123}
WORKERS=${WORKERS:-4}
JOBS_PER_WORKER=${JOBS_PER_WORKER:-2}

# 1. The role and the database, when missing (the role's password goes through the environment, never argv).
mapfile -t db < <(DATABASE_URI="$DATABASE_URI" "$PY" -c 'import os, urllib.parse as u; p = u.urlsplit(os.environ["DATABASE_URI"]); print(u.unquote(p.username or "")); print(u.unquote(p.password or "")); print(p.path.lstrip("/"))')
if [[ -z "${db[0]}" || -z "${db[1]}" || -z "${db[2]}" ]]; then
    echo "error: DATABASE_URI must name a role, its password and a database" >&2
    exit 2
fi
GEMS_DB_ROLE=${db[0]} GEMS_DB_PASSWORD=${db[1]} GEMS_DB_NAME=${db[2]} psql "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 <<'SQL'
\getenv role GEMS_DB_ROLE
\getenv password GEMS_DB_PASSWORD
\getenv dbname GEMS_DB_NAME
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'dbname', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname') \gexec
SQL
unset PG_ADMIN_URL PGPASSWORD  # the workers never need the admin's credentials

# 2. What every worker runs with: one torch thread a run (workers x jobs fill the cores), a
#    heartbeat that hands a dead worker's runs to another in seconds, no telemetry.
mkdir -p "$GEMS_HOME"
export GEMS_HOME DATABASE_URI REDIS_URI
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
export LG_BG_JOB_HEARTBEAT=${LG_BG_JOB_HEARTBEAT:-5}
export LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=1 ANONYMIZED_TELEMETRY=False

# 3. The tables, once, before any worker starts (safe to run from several machines at once).
"$PY" -m gems_graph.app.agent_server

# 4. The server: checks the keys, the host and the tables, then runs langhost serve.
exec "$PY" -m gems_graph.app.agent_server serve --host "$HOST" --port "$PORT" \
    --workers "$WORKERS" --n-jobs-per-worker "$JOBS_PER_WORKER"
