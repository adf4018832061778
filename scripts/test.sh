#!/usr/bin/env bash
# Runs what CI runs, on a fresh Debian machine with Rust: installs and starts the services the tests
# talk to (PostgreSQL, MariaDB, Redis on loopback) and the tools they use (prometheus, alertmanager,
# the Nagios monitoring-plugins),
# then rustfmt, clippy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Waits (bounded) until "$@" succeeds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$what did not become ready"; return 1
}

install_missing_packages() {
  local pkgs=()
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || pkgs+=(postgresql)
  command -v psql >/dev/null || pkgs+=(postgresql-client)
  [ -x /usr/sbin/mariadbd ] || pkgs+=(mariadb-server)
  command -v mariadb >/dev/null || pkgs+=(mariadb-client)
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  command -v redis-cli >/dev/null || pkgs+=(redis-tools)
  # promtool checks the daemon's /metrics exposition in the tests.
  command -v promtool >/dev/null || pkgs+=(prometheus)
  # tests/probe_exec.rs runs real Nagios plugins (check_tcp, check_http, check_dummy).
  [ -x /usr/lib/nagios/plugins/check_tcp ] || pkgs+=(monitoring-plugins)
  # The email receiver tests run a real SMTP server (aiosmtpd) with python3 (or /usr/bin/python3).
  python3 -c 'import aiosmtpd' >/dev/null 2>&1 || /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 \
    || pkgs+=(python3-aiosmtpd)
  # A real Alertmanager receives the alertmanager receiver's pushes in tests/notify_http.rs.
  # (Debian names the binary prometheus-alertmanager, upstream alertmanager.)
  command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null \
    || pkgs+=(prometheus-alertmanager)
  # tests/status_page.rs loads the daemon's status page in a headless Chromium through chromedriver.
  [ -x /usr/bin/chromium ] || pkgs+=(chromium)
  [ -x /usr/bin/chromedriver ] || pkgs+=(chromium-driver)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}"
  fi
}

pg_ok() { psql "postgres://postgres@127.0.0.1:5432/test" -Atqc 'select 1' >/dev/null 2>&1; }

start_postgres() {
  if pg_ok; then return 0; fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  pg_lsclusters -h 2>/dev/null | grep -q "^$version main" || as_root pg_createcluster "$version" main
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for "PostgreSQL" as_root su postgres -c "psql -Atqc 'select 1'"
  # Tests connect as postgres over TCP without a password, to a database named test.
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  as_root su postgres -c "psql -Atqc \"select 1 from pg_database where datname='test'\"" | grep -q 1 \
    || as_root su postgres -c "createdb test"
  wait_for "PostgreSQL on 127.0.0.1:5432" pg_ok
}

mariadb_ok() { mariadb -h 127.0.0.1 -P 3306 -u root -e 'select 1' test >/dev/null 2>&1; }

start_mariadb() {
  if mariadb_ok; then return 0; fi
  log "starting MariaDB"
  as_root mkdir -p /run/mysqld
  as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  [ -d /var/lib/mysql/mysql ] || as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1
  wait_for "MariaDB socket" as_root mariadb -u root -e 'select 1'
  # Tests connect as root over TCP with an empty password, to a database named test.
  as_root mariadb -u root -e "CREATE DATABASE IF NOT EXISTS test; \
    ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; \
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; \
    GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
  wait_for "MariaDB on 127.0.0.1:3306" mariadb_ok
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return 0; fi
  log "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for "Redis on 127.0.0.1:6379" sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
}

install_missing_packages
start_postgres
start_mariadb
start_redis

log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doctests; run them first so the suite's summary is the last word.
  cargo test --doc
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi
