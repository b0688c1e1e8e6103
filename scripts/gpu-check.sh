#!/usr/bin/env bash
# The CUDA path, built, tested and measured in one prepared run (docs/gpu.md).
#
#   bash scripts/gpu-check.sh [--device cuda|cpu] [--quick] [--out DIR]
#
# From a copy of the working tree with dist/ built (npm run build:ts) and node_modules present:
#   1. builds the addon against the LibTorch inside Python's torch (torch.utils.cmake_prefix_path;
#      Debian's python3-torch ships no CMake files, and is the system LibTorch: that one is used);
#   2. runs the engine, reference and task tests with RS_TEST_DEVICE=<device>;
#   3. compares the device's PGD results with the CPU's (fp32 after 20 steps <= 1e-3; bf16 reported);
#   4. benchmarks ResNet50 224 PGD steps, native against eager PyTorch, fp32 and bf16;
#   5. leaves logs, JSON and the built binary in DIR.
# --device cpu runs the same steps on the CPU (how the script itself is tested on machines
# without a GPU: test/gpu-check.test.ts). --quick: fewer tests, batches and steps.
#
# Node: $NODE, else `node` on the PATH, else the bundle scripts/gpu-bundle.sh packs into
# .gpu-carry/ (unpacked on first use). Python: $PYTHON, else python3 (it must import torch).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEVICE=cuda QUICK=0 OUTDIR=${OUT:-$ROOT/gpu-check-out}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUTDIR=$2; shift 2 ;;
    -h|--help) sed -n 2,19p "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cpu|cuda:*) ;; *) echo "gpu-check: --device must be cuda, cuda:N or cpu, got $DEVICE" >&2; exit 2 ;; esac
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rs-gpu-check.XXXXXX")
SUMMARY=()
FAILED=0
log() { echo "[gpu-check $(date +%H:%M:%S)] $*" | tee -a "$OUTDIR/gpu-check.log"; }
# step NAME CMD...: runs one step, its output to DIR/NAME.log; a failed step is recorded and the
# run goes on, so that one call on a scarce machine returns everything it could measure.
step() {
  local name=$1; shift
  local t0=$SECONDS
  log "$name: $*"
  "$@" >"$OUTDIR/$name.log" 2>&1
  local rc=$?
  SUMMARY+=("\"$name\": {\"rc\": $rc, \"seconds\": $((SECONDS - t0))}")
  if [ $rc -ne 0 ]; then FAILED=1; log "$name: FAILED (rc $rc), see $name.log"; tail -n 20 "$OUTDIR/$name.log"; else log "$name: ok ($((SECONDS - t0)) s)"; fi
  return $rc
}

# --- tools ---
if [ -z "${NODE:-}" ]; then
  if command -v node >/dev/null 2>&1; then NODE=$(command -v node)
  elif [ -f .gpu-carry/bundle.tar.xz ]; then
    mkdir -p .gpu-carry/unpacked && tar -xJf .gpu-carry/bundle.tar.xz -C .gpu-carry/unpacked
    NODE=$ROOT/.gpu-carry/unpacked/node/bin/node
    [ -d node_modules ] || ln -s "$ROOT/.gpu-carry/unpacked/node_modules" node_modules
  else echo "gpu-check: no node (set NODE, put node on the PATH, or carry .gpu-carry/ from scripts/gpu-bundle.sh)" >&2; exit 2
  fi
fi
export PATH="$(dirname "$NODE"):$PATH"   # CMakeLists asks `node` for node-addon-api's headers
PYTHON=${PYTHON:-python3}
for f in dist/lib/index.js node_modules/cmake-js/bin/cmake-js node_modules/vitest/vitest.mjs; do
  [ -e "$f" ] || { echo "gpu-check: $f is missing (npm ci && npm run build:ts first, or carry it)" >&2; exit 2; }
done
{
  echo "device: $DEVICE quick: $QUICK"
  echo "node: $("$NODE" --version)"
  "$PYTHON" -c 'import torch; print("python torch:", torch.__version__, "cuda:", torch.version.cuda, "available:", torch.cuda.is_available())'
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nproc
} >"$OUTDIR/env.txt" 2>&1
cat "$OUTDIR/env.txt"

# --- 1. build against Python's torch ---
TORCH_CMAKE=$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')
if [ -f "$TORCH_CMAKE/Torch/TorchConfig.cmake" ]; then
  export LIBTORCH=$TORCH_CMAKE
  log "building against Python's torch: $TORCH_CMAKE"
else
  unset LIBTORCH
  log "Python's torch has no CMake config at $TORCH_CMAKE (a distribution build); building against the system LibTorch it shares"
fi
BUILD=$WORK/build
step build "$NODE" node_modules/cmake-js/bin/cmake-js compile --directory native --out "$BUILD" || { echo "gpu-check: the build failed; nothing else can run" >&2; exit 1; }
export ROBUST_SYNTH_BINARY=$BUILD/Release/robust_synth.node
cp "$ROBUST_SYNTH_BINARY" "$OUTDIR/robust-synth.node"
"$NODE" -e "import('./dist/lib/index.js').then(m => { const b = m.buildInfo(); console.log(JSON.stringify({ torchVersion: b.torchVersion, variant: b.variant, cudaAvailable: b.cudaAvailable, parallelInfo: b.parallelInfo.split('\n')[0] }, null, 2)); })" >"$OUTDIR/binary.json" 2>>"$OUTDIR/gpu-check.log"

# --- 2. tests on the device ---
if [ "$QUICK" = 1 ]; then TESTS=(test/engine-reference.test.ts test/tasks.test.ts); else TESTS=(test/engine.test.ts test/engine-reference.test.ts test/tasks.test.ts); fi
NO_COLOR=1 RS_TEST_DEVICE=$DEVICE step tests "$NODE" node_modules/vitest/vitest.mjs run "${TESTS[@]}"

# --- 3. device against CPU ---
"$PYTHON" models/export_resnet50.py --random --out "$WORK/resnet50.pt" >"$OUTDIR/export.log" 2>&1 || log "export of the random ResNet50 failed (export.log)"
step compare "$NODE" scripts/gpu-check/compare.mjs --device "$DEVICE" --model "$WORK/resnet50.pt" --out "$OUTDIR/compare.json"

# --- 4. bench ---
if [ "$QUICK" = 1 ]; then BATCHES=1,2 STEPS=3; else BATCHES=1,8,64,256 STEPS=20; fi
step bench "$NODE" scripts/gpu-check/bench.mjs --device "$DEVICE" --model "$WORK/resnet50.pt" --batches "$BATCHES" --steps "$STEPS" --python "$PYTHON" --out "$OUTDIR/bench.json"

# --- 5. summary ---
( IFS=,; echo "{\"device\": \"$DEVICE\", \"quick\": $QUICK, \"ok\": $([ $FAILED = 0 ] && echo true || echo false), \"steps\": {${SUMMARY[*]}}}" ) >"$OUTDIR/summary.json"
cat "$OUTDIR/summary.json"
rm -rf "$WORK"
exit $FAILED
