#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test of the HTML report (tests/test_browser.py).
# Needs root (CI runs as root); elsewhere it says what to run and the test skips.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is missing: run 'sudo apt-get install -y chromium' (the browser test skips)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
