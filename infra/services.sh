#!/usr/bin/env bash
# Start the services dsar's tests and production-like runs use, where they are not running:
# PostgreSQL, MariaDB, Redis and RabbitMQ on their standard local ports.
#
# On Debian or Ubuntu, run as root, it installs what is missing from the distribution's
# packages first. Without the rights to install, it says exactly what to install.
# Exit status is non-zero if any service is still not answering at the end.
set -u

want_install=1
[ "${1:-}" = "--no-install" ] && want_install=0

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- 3<&-; }

wait_port() {  # name port seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do port_open "$2" && return 0; sleep 0.5; done
  echo "infra: $1 did not start on port $2" >&2
  return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

missing_packages=()
command -v pg_ctlcluster >/dev/null || missing_packages+=(postgresql)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing_packages+=(mariadb-server)
command -v redis-server >/dev/null || missing_packages+=(redis-server)
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || missing_packages+=(rabbitmq-server)

if [ ${#missing_packages[@]} -gt 0 ]; then
  if [ $want_install = 1 ] && command -v apt-get >/dev/null && as_root true; then
    echo "infra: installing ${missing_packages[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing_packages[@]}" >/dev/null
  else
    echo "infra: missing ${missing_packages[*]}; install them with:" >&2
    echo "  sudo apt-get install -y ${missing_packages[*]}" >&2
  fi
fi

status=0

if ! port_open 5432; then
  echo "infra: starting PostgreSQL"
  for version in $(ls /etc/postgresql 2>/dev/null); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  wait_port PostgreSQL 5432 30 || status=1
fi

if ! port_open 3306; then
  echo "infra: starting MariaDB"
  as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  wait_port MariaDB 3306 30 || status=1
fi

if ! port_open 6379; then
  echo "infra: starting Redis"
  as_root mkdir -p /var/log/redis /var/lib/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_port Redis 6379 15 || status=1
fi

if ! port_open 5672; then
  echo "infra: starting RabbitMQ"
  as_root rabbitmq-server -detached || true
  wait_port RabbitMQ 5672 90 || status=1
fi

if [ $status = 0 ]; then
  echo "infra: PostgreSQL :5432, MariaDB :3306, Redis :6379 and RabbitMQ :5672 are answering"
fi
exit $status
