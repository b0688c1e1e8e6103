#!/usr/bin/env bash
# Build the Debian 13 (LibTorch 2.6) flavor of the addon in a trixie root, and copy its prebuilt
# binary into this checkout's prebuilds/ (beside the flavor built here), for `npm pack`:
#
#   scripts/build-in-trixie.sh [ROOT] [--test]     # ROOT default /var/tmp/trixie-build
#
# The root is made (or reused) by scripts/make-trixie-root.sh; the checkout's working tree
# (tracked and untracked files git does not ignore) is copied to ROOT/src, where `npm ci`, the
# TypeScript build, the native build and `npm run prebuildify` run. With --test, `npm test`
# runs there too. Run as root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=/var/tmp/trixie-build
run_tests=0
for a in "$@"; do
  case "$a" in --test) run_tests=1 ;; *) root=$a ;; esac
done
t0=$(date +%s)
"$repo/scripts/make-trixie-root.sh" "$root" build
mkdir -p "$root/src"
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$root/src" -xf -
# ALLOW_TS_ERRORS=1: a type error elsewhere in the tree does not stop the native build and prebuild.
# A kept root skips what has not changed: npm ci when package-lock.json is the one installed, and
# the compile when prebuildify's record shows the same sources and LibTorch (scripts/prebuild.ts).
# build/ (the addon the tests load) is built only with --test.
native=true
(( run_tests )) && native="npm run build:native"
"$repo/scripts/in-root.sh" "$root" bash -c "cd /src && \
  { cmp -s package-lock.json node_modules/.robust-synth-lock || { npm ci --no-audit --no-fund && cp package-lock.json node_modules/.robust-synth-lock; }; } && \
  $native && { npm run build:ts || [ -n '${ALLOW_TS_ERRORS:-}' ]; } && npm run prebuildify"
flavor=$(cd "$root/src/prebuilds" && ls -d torch2.*-cpu | sort -V | tail -n1)
mkdir -p "$repo/prebuilds"
rm -rf "$repo/prebuilds/.$flavor.next"
cp -a "$root/src/prebuilds/$flavor" "$repo/prebuilds/.$flavor.next"
rm -rf "$repo/prebuilds/$flavor"
mv "$repo/prebuilds/.$flavor.next" "$repo/prebuilds/$flavor"
echo "build-in-trixie: prebuilds/$flavor from $root after $(( $(date +%s) - t0 )) s"
if (( run_tests )); then
  "$repo/scripts/in-root.sh" "$root" bash -c 'cd /src && npm test'
fi
