#!/usr/bin/env bash
# Installs clavm with a desktop entry (Exec=clavm %f), its icon and a MIME
# association, so that a file manager's "Open with" offers CLAVM for C files
# (text/x-csrc). What it puts there is listed in PREFIX/share/clavm/installed,
# which scripts/uninstall.sh reads to remove exactly that.
#
#   bash scripts/install.sh [--prefix DIR] [--bin FILE]
#
# PREFIX: ~/.local by default, /usr/local as root. Without --bin it builds
# clavm in release mode first. PREFIX/bin must be on the desktop session's
# PATH (~/.local/bin is on most distributions' default PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=""
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --bin) bin="${2:?--bin needs a file}"; shift 2 ;;
    *) echo "install: unknown argument '$1' (use --prefix DIR, --bin FILE)" >&2; exit 2 ;;
  esac
done
if [ -z "$prefix" ]; then
  if [ "$(id -u)" -eq 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi
if [ -z "$bin" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
  cargo build --release -p clavm
  bin=target/release/clavm
fi
[ -x "$bin" ] || { echo "install: $bin is not an executable" >&2; exit 1; }

manifest="$prefix/share/clavm/installed"
if [ -e "$manifest" ]; then
  echo "install: CLAVM is already installed in $prefix (run scripts/uninstall.sh --prefix $prefix first)" >&2
  exit 1
fi

apps="$prefix/share/applications"
icons="$prefix/share/icons/hicolor/scalable/apps"
made=()
# Folders made here (deepest last), so that uninstall removes them again if they end up empty.
for d in "$prefix" "$prefix/bin" "$prefix/share" "$prefix/share/clavm" "$prefix/share/applications" \
         "$prefix/share/icons" "$prefix/share/icons/hicolor" "$prefix/share/icons/hicolor/scalable" "$icons"; do
  if [ ! -d "$d" ]; then mkdir -p "$d"; made+=("dir $d"); fi
done
had_cache=no
[ -e "$apps/mimeinfo.cache" ] && had_cache=yes

install -m 755 "$bin" "$prefix/bin/clavm"
sed "s|@BIN@|$prefix/bin/clavm|" assets/desktop/clavm.desktop.in > "$apps/clavm.desktop"
chmod 644 "$apps/clavm.desktop"
install -m 644 assets/desktop/clavm.svg "$icons/clavm.svg"

if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate "$apps/clavm.desktop"
fi
# The desktop database maps text/x-csrc to clavm.desktop for "Open with".
cache=""
if command -v update-desktop-database >/dev/null 2>&1; then
  update-desktop-database -q "$apps"
  [ "$had_cache" = no ] && [ -e "$apps/mimeinfo.cache" ] && cache="$apps/mimeinfo.cache"
else
  echo "install: note: update-desktop-database is missing (desktop-file-utils): file managers may not offer CLAVM until their next scan"
fi

{
  echo "file $prefix/bin/clavm"
  echo "file $apps/clavm.desktop"
  echo "file $icons/clavm.svg"
  [ -n "$cache" ] && echo "cache $cache"
  for m in "${made[@]}"; do echo "$m"; done
} > "$manifest"
echo "install: clavm, its desktop entry and icon are in $prefix (uninstall: bash scripts/uninstall.sh --prefix $prefix)"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "install: note: $prefix/bin is not on PATH: the desktop entry runs \`clavm\` from PATH" ;;
esac
