#!/usr/bin/env bash
# The packed tarball where a Debian 13 user stands: a trixie root holding only what docs/setup.md
# tells a Debian 13 user to install (libtorch-dev, nodejs, npm: no compiler, no Python torch),
# an empty app, `npm install` of the tarball with install scripts blocked, then the README's
# library example verbatim, `generate` and `demo`. Run as root:
#
#   scripts/test-trixie-user.sh robust-synth-0.1.0.tgz [ROOT]     # ROOT default /var/tmp/trixie-user
#
# The root is made once by scripts/make-trixie-root.sh (cache ROOT between CI runs); the app
# inside it is made anew each time.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tarball=$(realpath "${1:?usage: test-trixie-user.sh TARBALL [ROOT]}")
root=${2:-/var/tmp/trixie-user}
t0=$(date +%s)
"$repo/scripts/make-trixie-root.sh" "$root" user
rm -rf "$root/app" "$root/root/.cache/robust-synth"
mkdir -p "$root/app"
cp "$tarball" "$root/app/robust-synth.tgz"
echo '{ "name": "app", "private": true, "type": "module" }' > "$root/app/package.json"
# The README's library example, verbatim, and a line that prints what it made.
node -e '
const readme = require("fs").readFileSync(process.argv[1], "utf8");
const ex = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.includes("from '"'"'robust-synth'"'"'") && b.includes("generate("));
if (!ex) { console.error("no library example in README.md"); process.exit(1); }
process.stdout.write(ex + "\nconsole.log(JSON.stringify({ shape: r.images.shape, predictions: Array.from(r.predictions) }));\n");
' "$repo/README.md" > "$root/app/readme-example.mjs"
"$repo/scripts/in-root.sh" "$root" bash -euo pipefail -c '
  cd /app
  for c in cc gcc g++ c++ cmake; do
    if command -v "$c" >/dev/null; then echo "test-trixie-user: $c is installed, the root is not a user root" >&2; exit 1; fi
  done
  echo "--- npm install (install scripts blocked)"
  npm install ./robust-synth.tgz --ignore-scripts --no-audit --no-fund
  echo "--- setup --check"
  npx --offline robust-synth setup --check
  echo "--- README library example"
  node readme-example.mjs
  echo "--- generate --class Bag"
  npx --offline robust-synth generate --class Bag --out gen
  test -s gen/manifest.json
  echo "--- demo"
  timeout 1200 npx --offline robust-synth demo --out demo
  grep -q "<img" demo/index.html
'
echo "test-trixie-user: passed in $(( $(date +%s) - t0 )) s"
