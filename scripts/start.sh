#!/usr/bin/env bash
# Builds the server and its plugin libraries (release) and starts it on conf/config.yml.
# Extra arguments go to `deepstream start` (e.g. --port 7000).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
exec target/release/deepstream start -c conf/config.yml "$@"
