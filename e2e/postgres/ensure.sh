#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the tests: DATABASE_URL when it is set,
# otherwise the machine's server on 127.0.0.1:5432, started if it is stopped and installed
# from Debian's packages if it is absent. Suites create and drop their own databases.
set -euo pipefail
log() { printf 'postgres: %s\n' "$*" >&2; }

answers() {
  if [ -n "${DATABASE_URL:-}" ]; then
    e2e/toolchain/node -e '
      const pg = (await import("pg")).default;
      const c = new pg.Client({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 3000 });
      await c.connect(); await c.end();' >/dev/null 2>&1
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}
cd "$(dirname "$0")/../.."

if answers; then exit 0; fi
if [ -n "${DATABASE_URL:-}" ]; then
  log "DATABASE_URL is set but its server does not answer"; exit 1
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  log "installing PostgreSQL from Debian's packages"
  [ "$(id -u)" = 0 ] || { log "not root: install PostgreSQL or set DATABASE_URL"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
conf="/etc/postgresql/$version/main"
# The tests connect over TCP as postgres without a password, like the machines' own set-up.
if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
fi
log "starting PostgreSQL $version"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 60); do answers && break; sleep 0.5; done
answers || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 ||
  runuser -u postgres -- createdb test
log "ready on 127.0.0.1:5432"
