#!/usr/bin/env bash
# The native tests under AddressSanitizer + LeakSanitizer (a script to run by hand or nightly,
# not on every CI run: it rebuilds the addon and takes several minutes).
#
#   scripts/asan.sh [test files...]     (default: test/engine.test.ts test/reliability.test.ts)
#
# Builds the addon with -DRS_SANITIZE=ON into build/asan (the normal build is left alone), runs
# the tests with libasan preloaded (node and LibTorch are not instrumented, so the runtime must
# come first) and ROBUST_SYNTH_BINARY pointing the loader at the sanitized addon, then reads
# every process's report: any ASan error fails; a leak fails when its stack passes through the
# addon (robust_synth.node / rs::). Leaks entirely inside node, V8, LibTorch, Python or libvips
# are counted and listed, not failed: they are not ours to fix (scripts/asan.supp hides the
# noisiest of them).
#
# Needs gcc's libasan (Debian: apt-get install libasan8; it comes with gcc-12) or clang's
# (libclang-rt-14-dev; set ASAN_LIB to its libclang_rt.asan-x86_64.so).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ASAN_LIB=${ASAN_LIB:-$(gcc -print-file-name=libasan.so 2>/dev/null || true)}
if [[ -z "$ASAN_LIB" || ! -e "$ASAN_LIB" ]]; then
  echo "asan.sh: no libasan found; apt-get install libasan8 (gcc) or libclang-rt-14-dev (clang, then set ASAN_LIB)" >&2
  exit 2
fi
ASAN_LIB=$(readlink -f "$ASAN_LIB")

OUT=build/asan
echo "== building the sanitized addon in $OUT"
npx cmake-js compile --directory native --out "$OUT" --CDRS_SANITIZE=ON --CDCMAKE_CXX_FLAGS=-g >"$OUT.log" 2>&1 || {
  tail -30 "$OUT.log"
  exit 1
}
BINARY=$ROOT/$OUT/Release/robust_synth.node
[[ $(nm -D "$BINARY" | grep -c __asan_) -gt 0 ]] || { echo "asan.sh: $BINARY is not instrumented" >&2; exit 1; }

LOGS=$(mktemp -d /tmp/rs-asan-XXXXXX)
TESTS=("$@")
[[ ${#TESTS[@]} -gt 0 ]] || TESTS=(test/engine.test.ts test/reliability.test.ts)
echo "== running ${TESTS[*]} under ASan (reports in $LOGS)"
# The Python that exports test models runs without the sanitizer (it is not ours, and its
# leaks at exit would fail its command).
cat >"$LOGS/python" <<PY
#!/bin/sh
exec env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS ${RS_PYTHON:-/usr/bin/python3} "\$@"
PY
chmod +x "$LOGS/python"
set +e
# exitcode=0 (LSan): leaks are judged from the reports below, not by failing each process.
# detect_container_overflow=0: instrumented and uninstrumented code share std containers (false positives).
# alloc_dealloc_mismatch=0, new_delete_type_mismatch=0: LibTorch and node mix allocators legitimately.
LD_PRELOAD=$ASAN_LIB \
ASAN_OPTIONS="detect_leaks=1:log_path=$LOGS/asan:detect_container_overflow=0:alloc_dealloc_mismatch=0:new_delete_type_mismatch=0:detect_odr_violation=0:verify_asan_link_order=0:fast_unwind_on_malloc=0:malloc_context_size=30:handle_segv=1" \
LSAN_OPTIONS="suppressions=$ROOT/scripts/asan.supp:print_suppressions=0:use_unaligned=1:exitcode=0" \
RS_PYTHON=$LOGS/python \
ROBUST_SYNTH_BINARY=$BINARY \
ROBUST_SYNTH_QUIET=1 \
  npx vitest run --testTimeout=900000 "${TESTS[@]}" 2>&1 | tee "$LOGS/vitest.txt" | grep -E "✓|×|Test Files|Tests |FAIL" | sed 's/\x1b\[[0-9;]*m//g'
status=${PIPESTATUS[0]}
set -e

node - "$LOGS" <<'EOF'
// Splits each report into its errors and leak records and decides whose they are.
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const dir = process.argv[2];
// Ours: an addon frame (rs::, Napi:: wrappers, robust_synth.node) comes before any frame of
// V8 or node, i.e. the addon asked for the memory, directly or through LibTorch. Memory that V8
// allocates for its own heap while serving an N-API call (slot sets, maps) is V8's.
const ours = (rec) => {
  const frames = rec.split('\n').filter((l) => /^\s*#\d+ /.test(l));
  const mine = frames.findIndex((l) => /robust_synth\.node|\brs::|\bNapi::/.test(l));
  const v8 = frames.findIndex((l) => /v8::internal|\bv8impl|\bnode::|\bnapi_[a-z_]+ /.test(l));
  return mine >= 0 && (v8 < 0 || mine < v8);
};
let errors = 0, leaksOurs = 0, leaksOther = 0, bytesOther = 0, files = 0;
const shown = [];
for (const f of readdirSync(dir).filter((f) => f.startsWith('asan.'))) {
  files++;
  const text = readFileSync(join(dir, f), 'utf8');
  for (const block of text.split(/\n(?==+\n==\d+==ERROR)/)) {
    if (/ERROR: AddressSanitizer/.test(block)) {
      errors++;
      shown.push(`${f}: ${block.split('\n').slice(0, 40).join('\n')}`);
    }
  }
  for (const rec of text.split(/\n(?=(?:Direct|Indirect) leak of )/).slice(1)) {
    const bytes = Number(/leak of (\d+)/.exec(rec)?.[1] ?? 0);
    if (ours(rec)) {
      leaksOurs++;
      shown.push(`${f}: ${rec.split('\n').slice(0, 30).join('\n')}`);
    } else {
      leaksOther++;
      bytesOther += bytes;
    }
  }
}
for (const s of shown) console.log(`\n${s}`);
console.log(`\nasan: ${files} process report(s); ${errors} ASan error(s); ${leaksOurs} leak(s) through the addon; ` +
  `${leaksOther} leak record(s) outside it (${bytesOther} bytes: node/V8/LibTorch/Python/libvips at exit)`);
process.exitCode = errors || leaksOurs ? 1 : 0;
EOF
verdict=$?
echo "== vitest exit status $status; report verdict $verdict; logs kept in $LOGS"
exit $(( status || verdict ))
