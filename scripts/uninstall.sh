#!/usr/bin/env bash
# Removes what scripts/install.sh put into PREFIX (as listed in
# PREFIX/share/clavm/installed), and the folders it made if they are empty.
#
#   bash scripts/uninstall.sh [--prefix DIR]
set -euo pipefail

prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    *) echo "uninstall: unknown argument '$1' (use --prefix DIR)" >&2; exit 2 ;;
  esac
done
if [ -z "$prefix" ]; then
  if [ "$(id -u)" -eq 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi
manifest="$prefix/share/clavm/installed"
[ -e "$manifest" ] || { echo "uninstall: CLAVM is not installed in $prefix (no $manifest)" >&2; exit 1; }

dirs=()
cache=""
while read -r kind path; do
  case "$kind" in
    file) rm -f "$path" ;;
    cache) cache="$path" ;;
    dir) dirs+=("$path") ;;
  esac
done < "$manifest"
rm -f "$manifest"

apps="$prefix/share/applications"
if [ -d "$apps" ] && command -v update-desktop-database >/dev/null 2>&1; then
  update-desktop-database -q "$apps"
fi
# The desktop database install made, once it associates nothing any more.
if [ -n "$cache" ] && [ -e "$cache" ] && ! grep -q '=' "$cache"; then
  rm -f "$cache"
fi
# Folders install made, deepest first, only if empty.
for ((i=${#dirs[@]}-1; i>=0; i--)); do
  rmdir "${dirs[$i]}" 2>/dev/null || true
done
echo "uninstall: CLAVM removed from $prefix"
