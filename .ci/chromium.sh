#!/usr/bin/env bash
# Install the Debian chromium package for the test that renders `dlsp report` pages (it skips without one).
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "chromium: installing the Debian package" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "chromium: could not install it; the report rendering test will skip" >&2
fi
exit 0
