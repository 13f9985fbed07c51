#!/usr/bin/env bash
# Browser tests drive Debian's chromium (never a downloaded browser). Install it when we can.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "WARNING: /usr/bin/chromium is missing and cannot be installed here (needs root + apt-get)." >&2
  echo "         Browser tests will be skipped; install Debian's chromium package to run them." >&2
fi
