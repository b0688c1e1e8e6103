/**
 * The bench's command line (`npx tsx bench/run.ts --help`) and paths, read once at start: every
 * part of bench/run.ts reads its options from here.
 */
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BENCH = join(ROOT, 'bench');
export const SCRATCH = join(BENCH, 'out');
export const PYTHON = process.env.RS_PYTHON ?? '/usr/bin/python3';

export const USAGE = `npm run bench [-- options]: the native PGD loop against a JS-driven loop, a Python loop and
the floor (one bare forward + backward), then what lowers the floor. See bench/README.md.

  --quick              a few minutes on 2 cores (fewer runs and steps, fewer ablation workloads)
  --only a,b           workloads whose id contains one of these (resnet50-b1, fashion-b64, ...)
  --no-python          skip the Python loop
  --no-ablation        skip the floor-lowering table
  --threads N          intra-op threads for every run (default: the cores this process may use)
  --blas B             BLAS for the main table: system (default), openblas or reference
  --fashion-model M    the Fashion-MNIST classifier (default models/fashion-robust.pt, else fashion-standard.pt)
  --peak-gflops X      the fp32 peak of this machine (default: estimated from /proc/cpuinfo)
  --out DIR            where results.json, results.md and chart.png go (default bench/)
  --no-tfjs            skip the TensorFlow.js peer (Fashion-MNIST batch 1 and 64)
  --no-contended       skip the contended table
  --contended-only     only the contended table: updates its part of results.json and results.md
  --contended-load L   co-runners of the contended table: spin (a 1-thread busy loop), omp
                       (2-thread PyTorch convolutions), or both: spin,omp (default)
  --help               this text
`;

export const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-python': { type: 'boolean', default: false },
    'no-ablation': { type: 'boolean', default: false },
    threads: { type: 'string' },
    blas: { type: 'string', default: 'system' },
    'fashion-model': { type: 'string' },
    'peak-gflops': { type: 'string' },
    out: { type: 'string', default: BENCH },
    'no-tfjs': { type: 'boolean', default: false },
    'no-contended': { type: 'boolean', default: false },
    'contended-only': { type: 'boolean', default: false },
    'contended-load': { type: 'string', default: 'spin,omp' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

export const QUICK = args.quick!;
export const THREADS = args.threads ? Number(args.threads) : availableParallelism();

export function log(s: string): void {
  process.stderr.write(`${s}\n`);
}
