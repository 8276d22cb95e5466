#!/usr/bin/env bash
# Sets up, builds, and runs CLAVM with the default patch (arguments go to `clavm`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p clavm
exec ./target/release/clavm "$@"
