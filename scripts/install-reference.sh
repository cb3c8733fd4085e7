#!/usr/bin/env bash
# Install the ORIGINAL deepstream server (@deepstream/server 7.0.2 from npm) into a scratch
# folder so tests/compat can be validated against it.
#
# Usage: scripts/install-reference.sh [DIR]     (default: <repo>/scratch/reference)
#
# @deepstream/server 7.0.2 depends on uWebSockets.js straight from GitHub, which cannot be
# fetched here. Its default (node) HTTP service never loads it, so an npm `overrides` entry
# points that dependency at a local empty package instead.
#
# Idempotent: re-running with an installed, matching version only prints the CLI path.
# Prints the reference CLI path as the last line of output.
set -euo pipefail

SERVER_VERSION=7.0.2
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$REPO_ROOT/scratch/reference}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
CLI="$DIR/node_modules/.bin/deepstream"

installed_version() {
  node -p "require('$DIR/node_modules/@deepstream/server/package.json').version" 2>/dev/null || true
}

if [[ -x "$CLI" && "$(installed_version)" == "$SERVER_VERSION" ]]; then
  echo "reference deepstream $SERVER_VERSION already installed" >&2
  echo "$CLI"
  exit 0
fi

# Stand-in for uWebSockets.js: requiring it fails loudly, so any accidental use of the uws
# http service is obvious instead of silently broken.
mkdir -p "$DIR/uws-stub"
cat > "$DIR/uws-stub/package.json" <<'JSON'
{
  "name": "uWebSockets.js",
  "version": "20.19.0",
  "description": "empty stand-in; the reference server's default node http service never loads it",
  "main": "index.js"
}
JSON
cat > "$DIR/uws-stub/index.js" <<'JS'
throw new Error('uWebSockets.js is stubbed out in this reference install; use httpServer type: default')
JS

cat > "$DIR/package.json" <<JSON
{
  "name": "deepstream-reference",
  "private": true,
  "description": "scratch install of the original deepstream server for wire-compatibility checks",
  "dependencies": {
    "@deepstream/server": "$SERVER_VERSION"
  },
  "overrides": {
    "uWebSockets.js": "file:./uws-stub"
  }
}
JSON

(cd "$DIR" && npm install --no-audit --no-fund --loglevel=error >&2)

if [[ ! -x "$CLI" ]]; then
  echo "install finished but $CLI is missing" >&2
  exit 1
fi
echo "reference deepstream $(installed_version) installed" >&2
echo "$CLI"
