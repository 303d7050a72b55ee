#!/usr/bin/env bash
# Test-only browser dependencies: headless Chromium from the distribution's packages (the HTML
# report and the portal are checked in it), and axe-core from npm for the portal's
# accessibility tests, installed into .browser-deps/ (git-ignored; nothing is vendored).
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "infra: installing chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || exit $?
  else
    echo "infra: /usr/bin/chromium is missing; install it with: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi
if [ ! -f "$here/.browser-deps/node_modules/axe-core/axe.min.js" ]; then
  if ! command -v npm >/dev/null; then
    echo "infra: npm is missing (needed for axe-core); install it with: sudo apt-get install -y npm" >&2
    exit 1
  fi
  echo "infra: installing axe-core into .browser-deps/"
  mkdir -p "$here/.browser-deps"
  npm install --silent --no-audit --no-fund --prefix "$here/.browser-deps" "axe-core@^4.10" || exit $?
fi
exit 0
