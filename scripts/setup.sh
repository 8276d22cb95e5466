#!/usr/bin/env bash
# Installs what CLAVM needs to build and test on Debian (12 or later), as root
# or through sudo. Idempotent: packages already installed are not touched.
set -euo pipefail

# Build: our libtcc binding links Debian's static libtcc; `tcc` ships TinyCC's
# runtime (libtcc1.a) and headers. Tests and benchmarks: gcc (the -O2
# reference build), sox (inspecting rendered audio), spin (the protocol
# model), neovim (the editor plugin's tests). Renderer: the Vulkan loader and
# Mesa's drivers (lavapipe runs without a GPU), the validation layers (on in
# debug builds and tests), glslang-tools (the build compiles the shaders),
# ffmpeg (`clavm record`, and ffprobe in the tests). The window's tests:
# sway and weston (headless compositors), grim (screenshots), wtype (a virtual
# keyboard), wl-clipboard (another
# program on the clipboard).
# The window itself: libxkbcommon-dev (sctk links xkbcommon through pkg-config).
# Faust programs: faust (`clavm FILE.dsp` runs its compiler; its headers,
# /usr/include/faust, are what the wrapper patch includes; app/tests/faust.rs).
# Ableton Link (`--link`, the default `link` feature): rusty_link builds
# Ableton's C wrapper with cmake and generates its bindings with bindgen
# (libclang-dev); its test needs iproute2 (`ip`) for a private loopback network.
# PipeWire and Pulse: cpal's PipeWire host links libpipewire-0.3 (its bindings
# are generated from libspa's headers with bindgen), realtime priority asks
# rtkit over D-Bus (libdbus-1-dev); app/tests/pipewire.rs starts a headless
# pipewire, wireplumber and pipewire-pulse under dbus-run-session (dbus),
# records with pw-record/pw-play (pipewire-bin), makes null sinks with pactl
# (pulseaudio-utils) and plays ALSA through pipewire-alsa. The desktop entry:
# desktop-file-utils (desktop-file-validate), xdg-utils (xdg-mime).
PACKAGES=(
  build-essential pkg-config
  libtcc-dev tcc
  libasound2-dev libjack-jackd2-dev jackd2
  sox spin neovim
  libvulkan1 mesa-vulkan-drivers vulkan-validationlayers glslang-tools ffmpeg
  sway grim wtype weston wl-clipboard libxkbcommon-dev
  faust
  cmake libclang-dev iproute2
  libpipewire-0.3-dev libdbus-1-dev pipewire pipewire-bin wireplumber pipewire-pulse pipewire-alsa
  pulseaudio-utils dbus desktop-file-utils xdg-utils
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup: need root or sudo to install: ${PACKAGES[*]}" >&2; exit 1
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: Rust is not installed. Install it with rustup (https://rustup.rs), Rust 1.95 or newer." >&2
    exit 1
  fi
fi
rustc_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "$rustc_minor" -lt 95 ]; then
  echo "setup: Rust $(rustc --version) is too old; CLAVM needs 1.95 or newer (egui 0.37) (rustup update)." >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true
echo "setup: ok"
