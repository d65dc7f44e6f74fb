#!/usr/bin/env bash
# Installs the system packages the test suite needs and that pip cannot provide:
# Debian's chromium for the console's browser tests. Idempotent and quiet when done.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: /usr/bin/chromium is missing; install Debian's chromium package (needs root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null
