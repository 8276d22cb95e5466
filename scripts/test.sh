#!/usr/bin/env bash
# Sets up and runs the whole test suite: formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build (libclavm_submit.so, which the Neovim test loads)"
cargo build --workspace
echo "== cargo test"
cargo test --workspace
