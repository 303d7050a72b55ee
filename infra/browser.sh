#!/usr/bin/env bash
# The HTML report is checked in headless Chromium from the distribution's packages.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "infra: installing chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit $?
fi
echo "infra: /usr/bin/chromium is missing; install it with: sudo apt-get install -y chromium" >&2
exit 1
