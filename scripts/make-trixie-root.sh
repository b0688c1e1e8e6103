#!/usr/bin/env bash
# Make a Debian 13 (trixie) root with debootstrap, for building the LibTorch 2.6 binary and for
# testing the package where a Debian 13 user stands. Run as root on a Debian/Ubuntu machine.
#
#   scripts/make-trixie-root.sh DIR build   # to build and test: what scripts/setup-debian.sh
#                                           # installs on Debian 12, plus Node and npm
#   scripts/make-trixie-root.sh DIR user    # what docs/setup.md tells a Debian 13 user to install:
#                                           # libtorch-dev, nodejs, npm; no compiler
#
# The Debian mirror is taken from $MIRROR, else from this machine's apt sources, else
# deb.debian.org. If DIR already holds a finished root of that profile (DIR/.robust-synth-root),
# nothing is done, so CI can cache DIR. This machine's npm configuration (/etc/npmrc, ~/.npmrc)
# and CA bundle are copied in, so npm inside reaches the registry the same way as outside.
# Enter the root with scripts/in-root.sh DIR CMD..., which mounts /proc, /sys and /dev.
set -euo pipefail
dir=${1:?usage: make-trixie-root.sh DIR build|user}
profile=${2:-build}
case "$profile" in build|user) ;; *) echo "profile must be build or user" >&2; exit 2 ;; esac
stamp="$dir/.robust-synth-root"
if [[ -f "$stamp" ]] && grep -qx "trixie $profile" "$stamp"; then
  echo "make-trixie-root: $dir is ready ($(cat "$stamp"))"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
here=$(cd "$(dirname "$0")" && pwd)

if [[ -z "${MIRROR:-}" ]]; then
  MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ { print $2 }' | grep -E '/debian/?$' | head -n1 || true)
  [[ -n "$MIRROR" ]] || MIRROR=$(grep -hE '^deb +[a-z]+://\S+/debian/? ' /etc/apt/sources.list 2>/dev/null \
    | awk '{ print $2 }' | head -n1 || true)
  [[ -n "$MIRROR" ]] || MIRROR=http://deb.debian.org/debian
fi
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap

t0=$(date +%s)
# One debootstrap serves both profiles: the bare root is kept beside DIR (in trixie-base, or
# $TRIXIE_BASE) and copied, which takes seconds where debootstrap takes minutes.
base=${TRIXIE_BASE:-$(dirname "$dir")/trixie-base}
if [[ ! -x "$dir/usr/bin/apt-get" ]]; then
  if [[ ! -f "$base/.robust-synth-base" ]]; then
    echo "make-trixie-root: debootstrap trixie from $MIRROR into $base"
    rm -rf "$base"
    debootstrap --variant=minbase --include=ca-certificates trixie "$base" "$MIRROR"
    echo "trixie minbase from $MIRROR" > "$base/.robust-synth-base"
  fi
  rm -rf "$dir"
  cp -a "$base" "$dir"
  rm -f "$dir/.robust-synth-base"
fi

# npm inside reaches the registry as npm outside does (a proxy CA, a registry mirror).
mkdir -p "$dir/etc/robust-synth-host"
cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/robust-synth-host/ca-certificates.crt"
{
  [[ -f /etc/npmrc ]] && grep -v '^cafile' /etc/npmrc || true
  [[ -f "$HOME/.npmrc" ]] && grep -v -E '^(cafile|nodedir)' "$HOME/.npmrc" || true
  echo "cafile=/etc/robust-synth-host/ca-certificates.crt"
} > "$dir/etc/npmrc"
cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true

pkgs=(libtorch-dev nodejs npm)
if [[ "$profile" == build ]]; then
  # As scripts/setup-debian.sh on Debian 12, plus Node and npm (which Debian 12 users took from
  # elsewhere), git and xz for the tests.
  pkgs+=(python3-torch python3-torchvision python3-dill dataset-fashion-mnist
    libopenblas0-openmp fonts-dejavu-core redis-server chromium
    cmake ninja-build g++ make git xz-utils procps)
fi
"$here/in-root.sh" "$dir" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends ${pkgs[*]} && apt-get clean"
echo "trixie $profile" > "$stamp"
echo "make-trixie-root: $profile root ready in $dir after $(( $(date +%s) - t0 )) s"
