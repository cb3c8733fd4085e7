#!/usr/bin/env bash
# The whole test suite: Rust unit and black-box tests (real plugin libraries, real PostgreSQL
# and Redis), then the wire-compatibility suite driving the official JavaScript client.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build the server and every plugin library once; the tests use these files.
cargo build --workspace --all-targets

cargo test --workspace --no-fail-fast

target_dir="$(pwd)/target/debug"
(
  cd tests/compat
  npm ci --no-audit --no-fund --loglevel=error
  DEEPSTREAM_BIN="$target_dir/deepstream" DEEPSTREAM_PLUGIN_DIR="$target_dir" npm test
)
