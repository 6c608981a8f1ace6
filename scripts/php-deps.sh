#!/usr/bin/env bash
# What the WooCommerce plugin's tests need, from Debian's packages: PHP's command line, PHPUnit,
# WordPress core (/usr/share/wordpress) and PHP's MySQL driver, plus a running MariaDB on
# 127.0.0.1:3306 (started here when it is installed but not running). Idempotent; `make test`
# runs it.
set -euo pipefail

packages=()
command -v php >/dev/null || packages+=(php-cli)
command -v phpunit >/dev/null || packages+=(phpunit)
[ -f /usr/share/wordpress/wp-settings.php ] || packages+=(wordpress)
php -m 2>/dev/null | grep -qx mysqli || packages+=(php-mysql)
php -m 2>/dev/null | grep -qx curl || packages+=(php-curl)
php -m 2>/dev/null | grep -qx mbstring || packages+=(php-mbstring)
php -m 2>/dev/null | grep -qx dom || packages+=(php-xml)
[ -x /usr/sbin/mariadbd ] || packages+=(mariadb-server)

if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "php-deps: ${packages[*]} missing; install with: sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

# The tests create and drop their own database on the local MariaDB: root, no password, over
# TCP at 127.0.0.1:3306. Started here when installed but not running; a fresh Debian install
# lets root in through the Unix socket only, so a passwordless root@127.0.0.1 is added for the
# tests (this server holds test databases only).
tcp_ok() { mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; }
socket_ok() { mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; }
tcp_ok && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "php-deps: MariaDB does not let root in on 127.0.0.1:3306 without a password" >&2
  exit 1
fi
if ! socket_ok; then
  install -d -o mysql -g mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 1 60); do
    socket_ok && break
    sleep 1
  done
fi
tcp_ok || mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
  GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" >/dev/null 2>&1 || true
if ! tcp_ok; then
  echo "php-deps: MariaDB did not let root in on 127.0.0.1:3306 within 60 s" >&2
  exit 1
fi
