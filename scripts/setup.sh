#!/usr/bin/env bash
# Installs what a fresh machine lacks: Deno (pinned, from npm), nats-server (Debian package) and the
# project's npm dependencies (from deno.lock). Says what it does; does nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."

DENO_VERSION="2.9.6"
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! command -v deno >/dev/null 2>&1 || [ "$(deno --version | head -n1 | awk '{print $2}')" != "$DENO_VERSION" ]; then
  echo "==> installing Deno $DENO_VERSION from npm (npm install -g deno@$DENO_VERSION)"
  $SUDO npm install -g --silent "deno@$DENO_VERSION"
fi
echo "==> deno $(deno --version | head -n1 | awk '{print $2}')"

if ! command -v nats-server >/dev/null 2>&1; then
  echo "==> installing nats-server from the OS packages (apt-get install -y nats-server)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >/dev/null
fi
echo "==> $(nats-server --version)"

# The console's browser tests drive the system Chromium (puppeteer-core from npm, no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Chromium from the OS packages (apt-get install -y chromium)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# The Debian launcher script prints a shell error of its own on some machines; the version is what matters.
echo "==> $(chromium --version 2>/dev/null)"

echo "==> installing npm dependencies from deno.lock (deno install --frozen)"
deno install --frozen --quiet
