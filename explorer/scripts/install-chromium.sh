#!/bin/sh
# The browser tests drive Debian's chromium with playwright-core; install it when it is missing.
set -e
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  echo "chromium: $(command -v chromium || echo /usr/bin/chromium)"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "chromium is missing; run as root: apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium ||
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
