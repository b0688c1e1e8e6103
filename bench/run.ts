/**
 * `npm run bench [-- options]`: the native PGD loop against a JS-driven loop, a Python loop and
 * the floor (one bare forward + backward), then what lowers the floor. See bench/README.md.
 *
 *   --quick              a few minutes on 2 cores (fewer runs and steps, fewer ablation workloads)
 *   --only a,b           workloads whose id contains one of these (resnet50-b1, fashion-b64, ...)
 *   --no-python          skip the Python loop
 *   --no-ablation        skip the floor-lowering table
 *   --threads N          intra-op threads for every run (default: the cores this process may use)
 *   --blas B             BLAS for the main table: system (default), openblas or reference
 *   --fashion-model M    the Fashion-MNIST classifier (default models/fashion-robust.pt, else fashion-standard.pt)
 *   --peak-gflops X      the fp32 peak of this machine (default: estimated from /proc/cpuinfo)
 *   --out DIR            where results.json, results.md and chart.png go (default bench/)
 *   --no-tfjs            skip the TensorFlow.js peer (Fashion-MNIST batch 1 and 64)
 *   --no-contended       skip the contended table
 *   --contended-only     only the contended table: updates its part of results.json and results.md
 *   --contended-load L   co-runners of the contended table: spin (a 1-thread busy loop), omp
 *                        (2-thread PyTorch convolutions), or both: spin,omp (default)
 *
 * Every measurement runs in its own child process (bench/worker.ts, bench/tfjs-worker.ts,
 * bench/python_loop.py).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { TfjsCompare, TfjsJob, TfjsResult } from './tfjs-worker.js';
import type { WorkerJob, WorkerResult } from './worker.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(ROOT, 'bench');
const SCRATCH = join(BENCH, 'out');
const PYTHON = process.env.RS_PYTHON ?? '/usr/bin/python3';

const { values: args } = parseArgs({
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
  },
  strict: true,
});

const QUICK = args.quick!;
const THREADS = args.threads ? Number(args.threads) : availableParallelism();

// ---------------------------------------------------------------------------------------------
// Workloads

interface Workload {
  id: string;
  label: string;
  model: string;
  inputShape: [number, number, number];
  batch: number;
  eps: number;
  step: number;
  steps: number;
  runs: number;
  floorReps: number;
  /** Floor-lowering table in --quick mode too. */
  quickAblation: boolean;
  stepFlopsPerImage?: number;
  /** The TensorFlow.js peer runs this many steps per round beside the native loop. */
  tfjsSteps?: number;
  /** In the contended table: steps per run, and whether the JS-driven session and logits() are timed too. */
  contended?: { steps: number; extras: boolean };
}

function workloads(resnetPath: string): Workload[] {
  const q = QUICK;
  const fashion = resolve(args['fashion-model'] ?? [join(ROOT, 'models/fashion-robust.pt'), join(ROOT, 'models/fashion-standard.pt')].find(existsSync)!);
  // Generation settings (lib/tasks/common.ts): ResNet50 eps 40 step 1; Fashion eps 8 step 0.5.
  const all: Workload[] = [
    { id: 'resnet50-b1', label: 'ResNet50 224, batch 1', model: resnetPath, inputShape: [3, 224, 224], batch: 1, eps: 40, step: 1,
      steps: q ? 4 : 10, runs: q ? 4 : 6, floorReps: q ? 2 : 4, quickAblation: true, contended: { steps: q ? 3 : 6, extras: false } },
    { id: 'resnet50-b8', label: 'ResNet50 224, batch 8', model: resnetPath, inputShape: [3, 224, 224], batch: 8, eps: 40, step: 1,
      steps: q ? 2 : 4, runs: q ? 4 : 6, floorReps: q ? 1 : 2, quickAblation: false },
    { id: 'fashion-b1', label: 'Fashion-MNIST, batch 1', model: fashion, inputShape: [1, 28, 28], batch: 1, eps: 8, step: 0.5,
      steps: q ? 100 : 300, runs: q ? 6 : 8, floorReps: q ? 50 : 150, quickAblation: true,
      tfjsSteps: q ? 100 : 300, contended: { steps: q ? 50 : 150, extras: true } },
    { id: 'fashion-b64', label: 'Fashion-MNIST, batch 64', model: fashion, inputShape: [1, 28, 28], batch: 64, eps: 8, step: 0.5,
      steps: q ? 20 : 60, runs: q ? 6 : 8, floorReps: q ? 10 : 30, quickAblation: true,
      // TF.js's wasm backend takes ~0.6-1.2 s per step here (its input-gradient convolution is a plain loop): fewer steps.
      tfjsSteps: q ? 4 : 10, contended: { steps: q ? 10 : 30, extras: false } },
    { id: 'fashion-b256', label: 'Fashion-MNIST, batch 256', model: fashion, inputShape: [1, 28, 28], batch: 256, eps: 8, step: 0.5,
      steps: q ? 6 : 20, runs: q ? 6 : 8, floorReps: q ? 3 : 10, quickAblation: false },
  ];
  const only = args.only?.split(',').map((s) => s.trim()).filter(Boolean);
  return only ? all.filter((w) => only.some((o) => w.id.includes(o))) : all;
}

// ---------------------------------------------------------------------------------------------
// Processes

function run(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30 * 60_000): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} ${argv.slice(0, 3).join(' ')} failed: ${err.message}\n${stderr.split('\n').slice(-15).join('\n')}`));
      else res(stdout);
    });
  });
}

function lastJson<T>(stdout: string): T {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new Error(`no JSON in output: ${stdout.slice(-500)}`);
  return JSON.parse(line) as T;
}

/** LD_LIBRARY_PATH that makes the dynamic linker pick a BLAS for libtorch's libblas.so.3. */
function blasEnv(which: string): NodeJS.ProcessEnv | undefined {
  if (which === 'system') return {};
  const dirs = which === 'reference'
    ? ['/usr/lib/x86_64-linux-gnu/blas', '/usr/lib/aarch64-linux-gnu/blas']
    : [process.env.RS_BENCH_OPENBLAS_DIR ?? '', '/usr/lib/x86_64-linux-gnu/openblas-openmp', '/usr/lib/x86_64-linux-gnu/openblas-pthread',
      '/usr/lib/aarch64-linux-gnu/openblas-openmp', '/usr/lib/aarch64-linux-gnu/openblas-pthread'];
  const dir = dirs.find((d) => d && existsSync(join(d, 'libblas.so.3')));
  if (!dir) return undefined;
  return { LD_LIBRARY_PATH: [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
}

/** CPU time (user + system, all threads) of a process so far, in ms; NaN when it cannot be read. */
function processCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

type LoadKind = 'spin' | 'omp';
const LOAD_LABELS: Record<LoadKind, string> = {
  spin: 'beside a 1-thread busy loop',
  omp: `beside ${THREADS}-thread PyTorch convolutions`,
};

interface Corunner {
  proc: ChildProcess;
  /** Resolves once the co-runner computes (Python: its first convolution done). */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Another CPU-bound process on the machine, until stopped (at most 10 minutes): 'spin' is
 * `node -e 'for(;;);'` (one thread that never sleeps), 'omp' is bench/python_loop.py load
 * (LibTorch's OpenMP convolutions on THREADS threads, like a training job).
 */
function startLoad(kind: LoadKind, env: NodeJS.ProcessEnv = {}): Corunner {
  const proc = kind === 'spin'
    ? spawn(process.execPath, ['-e', 'process.stdout.write(\'{"ready": true}\\n\'); const t = Date.now(); while (Date.now() - t < 600e3);'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'],
    })
    : spawn(PYTHON, [join(BENCH, 'python_loop.py'), 'load', '--threads', String(THREADS), '--seconds', '600'], {
      cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'],
    });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const ready = new Promise<void>((res, rej) => {
    let buf = '';
    const timer = setTimeout(() => rej(new Error(`the ${kind} co-runner did not start within 60 s`)), 60_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('"ready"')) {
        clearTimeout(timer);
        res();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`the ${kind} co-runner exited (${code}) before it was ready`));
    });
  }).then(() => new Promise<void>((r) => setTimeout(r, 200))); // its threads up to speed
  ready.catch(() => undefined);
  return {
    proc,
    ready,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

async function worker(job: WorkerJob, env: NodeJS.ProcessEnv = {}): Promise<WorkerResult> {
  const out = await run(process.execPath, ['--import', 'tsx', join(BENCH, 'worker.ts'), JSON.stringify(job)], env);
  return lastJson<WorkerResult>(out);
}

async function tfjsWorker(job: TfjsJob, env: NodeJS.ProcessEnv = {}): Promise<TfjsResult> {
  const out = await run(process.execPath, ['--import', 'tsx', join(BENCH, 'tfjs-worker.ts'), JSON.stringify(job)], env);
  return lastJson<TfjsResult>(out);
}

/** Exports a TorchScript model for the TF.js peer (bench/export_tfjs_weights.py) into bench/out/. */
async function exportForTfjs(w: Workload): Promise<string> {
  const manifest = join(SCRATCH, `${basename(w.model, '.pt')}.tfjs.json`);
  await run(PYTHON, [join(BENCH, 'export_tfjs_weights.py'), '--model', w.model, '--shape', w.inputShape.join(','), '--out', manifest]);
  return manifest;
}

interface PythonResult {
  stepMs: number[];
  finishMs: number[];
  floorMs: number[];
  maxRssKb: number;
  threads: number;
  blas: string[];
}

// ---------------------------------------------------------------------------------------------
// Statistics

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Half the min-max range, relative to the median. */
function spread(xs: number[]): number {
  if (xs.length < 2) return 0;
  return (Math.max(...xs) - Math.min(...xs)) / 2 / median(xs);
}

interface Summary {
  medianMs: number;
  spread: number;
  minMs: number;
  maxMs: number;
  n: number;
}

function summarize(xs: number[]): Summary {
  return { medianMs: median(xs), spread: spread(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs), n: xs.length };
}

// ---------------------------------------------------------------------------------------------
// Machine

function machine() {
  let flags: string[] = [];
  let mhz = NaN;
  let vendor = '';
  let family = NaN;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    flags = /^flags\s*:\s*(.*)$/m.exec(info)?.[1]?.split(/\s+/) ?? [];
    mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1]);
    vendor = /^vendor_id\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() ?? '';
    family = Number(/^cpu family\s*:\s*(\d+)/m.exec(info)?.[1]);
  } catch {
    // not Linux
  }
  const has = (f: string) => flags.includes(f);
  // fp32 FLOP per cycle per core: two FMA pipes of the widest vector the core executes natively.
  // Zen 4 (family 0x19) runs AVX-512 on 256-bit pipes: 32; Zen 5 (0x1a) and Intel AVX-512: 64.
  let perCycle = has('fma') ? 32 : 16;
  if (has('avx512f')) perCycle = vendor === 'AuthenticAMD' && family < 0x1a ? 32 : 64;
  const cores = availableParallelism();
  const estimate = (cores * perCycle * mhz) / 1000;
  const peak = args['peak-gflops'] ? Number(args['peak-gflops']) : estimate;
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    vendor,
    cores,
    mhz,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    features: ['avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_bf16'].filter(has),
    fp32PeakGflops: peak,
    fp32PeakSource: args['peak-gflops'] ? '--peak-gflops' : `${cores} cores x ${perCycle} FLOP/cycle x ${(mhz / 1000).toFixed(2)} GHz (estimate)`,
    node: process.version,
    loadavgStart: loadavg(),
  };
}

// ---------------------------------------------------------------------------------------------
// Inputs shared by the native and the Python runs

function writeInputs(w: Workload): { x0File: string; targetsFile: string } {
  const [c, h, ww] = w.inputShape;
  const n = w.batch * c * h * ww;
  const x = new Float32Array(n);
  let a = 12345;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    x[i] = (a >>> 8) / 16777216;
  }
  const t = Int32Array.from({ length: w.batch }, (_, i) => (i * 7 + 3) % (c === 3 ? 1000 : 10));
  const x0File = join(SCRATCH, `${w.id}.x0.f32`);
  const targetsFile = join(SCRATCH, `${w.id}.targets.i32`);
  writeFileSync(x0File, Buffer.from(x.buffer));
  writeFileSync(targetsFile, Buffer.from(t.buffer));
  return { x0File, targetsFile };
}

async function ensureResnet(): Promise<string> {
  const path = join(SCRATCH, 'resnet50-random.pt');
  if (!existsSync(path)) {
    log('scripting a random-weight ResNet50 (models/export_resnet50.py --random) ...');
    await run(PYTHON, [join(ROOT, 'models/export_resnet50.py'), '--random', '--seed', '0', '--out', path]);
  }
  return path;
}

async function stepFlops(w: Workload): Promise<number> {
  const out = await run(PYTHON, [join(BENCH, 'python_loop.py'), 'flops', '--model', w.model, '--shape', w.inputShape.join(',')]);
  return lastJson<{ stepFlops: number }>(out).stepFlops;
}

function readFloats(path: string): Float32Array {
  const buf = readFileSync(path);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

// ---------------------------------------------------------------------------------------------
// Main table

interface Row {
  workload: Workload;
  native: Summary;
  nativeEndToEnd: Summary;
  js: Summary;
  floor: Summary;
  python?: Summary;
  pythonFloor?: Summary;
  imageStepsPerSec: number;
  gflops?: number;
  /** Medians of the per-round ratios in pairedRatios. */
  ratios: { nativeOverFloor: number; jsOverNative: number; nativeOverPython?: number };
  /** One ratio per round, each from measurements taken back to back. */
  pairedRatios: { nativeOverFloor: number[]; jsOverNative: number[]; nativeOverPython: number[] };
  rssMb: { native: number; python?: number };
  lag: WorkerResult['lag'];
  jsMatchesNative?: boolean;
  nativeVsPythonMaxDiff?: number;
  /** The TensorFlow.js peer (bench/tfjs-worker.ts), one process per round. */
  tfjs?: TfjsRow;
  preparation: WorkerResult['preparation'];
  blas: { native: string[]; python?: string[] };
  build: WorkerResult['build'];
  loadMs: number;
}

interface TfjsRow {
  steps: number;
  /** TF.js with its own convolution gradients ('stock') and with them as XNNPACK forward convolutions ('forward-conv'). */
  ms: Summary;
  msFast: Summary;
  /** The native loop on one thread, timed in the TF.js process right after TF.js. */
  native1: Summary;
  /** Medians of the per-round ratios in pairedRatios. */
  ratios: { nativeOverTfjs: number; nativeOverTfjsFast: number; native1OverTfjsFast: number };
  pairedRatios: { nativeOverTfjs: number[]; nativeOverTfjsFast: number[]; native1OverTfjsFast: number[] };
  /** Native vs TF.js in the last round, same start, same steps (each loop's own result). */
  compare: TfjsCompare;
  backend: TfjsResult['backend'];
  exportOps: Record<string, number>;
  rssMb: number;
  loadMs: number;
}

async function measureWorkload(w: Workload, env: NodeJS.ProcessEnv): Promise<Row> {
  const { x0File, targetsFile } = writeInputs(w);
  const nativeImages = join(SCRATCH, `${w.id}.native.f32`);
  const pythonImages = join(SCRATCH, `${w.id}.python.f32`);
  const withPython = !args['no-python'];
  const withTfjs = !args['no-tfjs'] && w.tfjsSteps !== undefined;
  const manifest = withTfjs ? await exportForTfjs(w) : undefined;
  log(`[${w.id}] ${w.runs} rounds of ${w.steps} steps: native, JS-driven and floor${withPython ? ', the Python loop' : ''}`
    + `${withTfjs ? `, the TF.js peer (${w.tfjsSteps} steps)` : ''} (order alternating) ...`);
  // Rounds: each round is one native process (a native run, a JS-driven run and a floor run, back
  // to back) and one Python process, in alternating order. Every ratio is taken within a round
  // and the table shows the median over rounds, so a slow minute of a shared host moves both
  // sides of a ratio instead of one.
  const rs: WorkerResult[] = [];
  const pys: PythonResult[] = [];
  const tfs: TfjsResult[] = [];
  let capability: string | undefined;
  for (let round = 0; round < w.runs; round++) {
    const native = async () => {
      rs.push(await worker({
        kind: 'workload', model: w.model, inputShape: w.inputShape, batch: w.batch, x0File, targetsFile, threads: THREADS,
        eps: w.eps, step: w.step, steps: w.steps, runs: 1, floorReps: w.floorReps, warmup: 3, outImages: nativeImages,
        lag: round === w.runs - 1, round,
      }, env));
      // The same ATen kernels for Python as the native process got (the loader picks AVX-512 where it can).
      const cap = rs.at(-1)!.build.cpuCapability;
      capability = /AVX512/.test(cap) ? 'avx512' : /AVX2/.test(cap) ? 'avx2' : undefined;
    };
    const python = async () => {
      const prep = rs[0]!.preparation;
      const flags = [...(prep.channelsLast ? ['--channels-last'] : []), ...(prep.freeze ? ['--freeze'] : [])];
      const pyEnv = { ...env, ...(capability && !process.env.ATEN_CPU_CAPABILITY ? { ATEN_CPU_CAPABILITY: capability } : {}) };
      pys.push(lastJson<PythonResult>(await run(PYTHON, [
        join(BENCH, 'python_loop.py'), 'loop', '--model', w.model, '--shape', w.inputShape.join(','), '--batch', String(w.batch),
        '--steps', String(w.steps), '--runs', '1', '--floor-reps', String(Math.min(w.floorReps, 3)), '--warmup', '3',
        '--threads', String(THREADS), '--eps', String(w.eps), '--step', String(w.step), '--x0', x0File, '--targets', targetsFile,
        '--out-images', pythonImages, ...flags,
      ], pyEnv)));
    };
    // The TF.js peer and, after it, the same loop in the native library on one thread (wasm runs
    // on one) and the comparison of the results, all in one process.
    const tfjs = async () => {
      tfs.push(await tfjsWorker({
        model: w.model, manifest: manifest!, inputShape: w.inputShape, batch: w.batch, x0File, targetsFile, eps: w.eps, step: w.step,
        steps: w.tfjsSteps!, runs: 1, warmup: 2, compareNative: true, nativeThreads: 1, round,
      }, env));
    };
    // The first round runs native first: Python copies its preparation and kernels.
    const order = [native, ...(withPython ? [python] : []), ...(withTfjs ? [tfjs] : [])];
    if (round % 2 === 1) order.reverse();
    for (const f of order) await f();
  }
  let diff: number | undefined;
  if (withPython) {
    const a = readFloats(nativeImages);
    const b = readFloats(pythonImages);
    diff = a.length === b.length ? a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0) : NaN;
  }
  const last = rs.at(-1)!;
  const nativeMs = rs.map((r) => r.nativeStepMs[0]!);
  const floorMs = rs.map((r) => r.floorRunMs[0]!);
  const jsMs = rs.map((r) => r.jsStepMs[0]!);
  const pyMs = pys.map((p) => p.stepMs[0]!);
  const native = summarize(nativeMs);
  let tfjs: TfjsRow | undefined;
  if (tfs.length) {
    const tMs = tfs.map((t) => t.stepMs.stock![0]!);
    const fMs = tfs.map((t) => t.stepMs['forward-conv']![0]!);
    const n1Ms = tfs.map((t) => t.compare!.nativeStepMs[0]!);
    const cmp = tfs.at(-1)!.compare!;
    const paired = {
      nativeOverTfjs: nativeMs.map((x, i) => x / tMs[i]!),
      nativeOverTfjsFast: nativeMs.map((x, i) => x / fMs[i]!),
      native1OverTfjsFast: n1Ms.map((x, i) => x / fMs[i]!),
    };
    tfjs = {
      steps: w.tfjsSteps!, ms: summarize(tMs), msFast: summarize(fMs), native1: summarize(n1Ms),
      ratios: { nativeOverTfjs: median(paired.nativeOverTfjs), nativeOverTfjsFast: median(paired.nativeOverTfjsFast), native1OverTfjsFast: median(paired.native1OverTfjsFast) },
      pairedRatios: paired,
      compare: cmp, backend: tfs[0]!.backend, exportOps: tfs[0]!.exportOps, rssMb: Math.max(...tfs.map((t) => t.maxRssKb)) / 1024,
      loadMs: median(tfs.map((t) => t.loadMs)),
    };
  }
  const imageStepsPerSec = (1000 / native.medianMs) * w.batch;
  const paired = {
    nativeOverFloor: nativeMs.map((x, i) => x / floorMs[i]!),
    jsOverNative: jsMs.map((x, i) => x / nativeMs[i]!),
    nativeOverPython: pys.length ? nativeMs.map((x, i) => x / pyMs[i]!) : [],
  };
  return {
    workload: w,
    native,
    nativeEndToEnd: summarize(rs.map((r) => r.nativeEndToEndMs[0]!)),
    js: summarize(jsMs),
    floor: summarize(floorMs),
    python: pys.length ? summarize(pyMs) : undefined,
    pythonFloor: pys.length ? summarize(pys.flatMap((p) => p.floorMs)) : undefined, // per repetition
    imageStepsPerSec,
    gflops: w.stepFlopsPerImage ? (imageStepsPerSec * w.stepFlopsPerImage) / 1e9 : undefined,
    ratios: {
      nativeOverFloor: median(paired.nativeOverFloor),
      jsOverNative: median(paired.jsOverNative),
      nativeOverPython: pys.length ? median(paired.nativeOverPython) : undefined,
    },
    pairedRatios: paired,
    rssMb: { native: Math.max(...rs.map((r) => r.maxRssKb)) / 1024, python: pys.length ? Math.max(...pys.map((p) => p.maxRssKb)) / 1024 : undefined },
    lag: last.lag,
    jsMatchesNative: rs.every((r) => r.jsMatchesNative),
    nativeVsPythonMaxDiff: diff,
    tfjs,
    preparation: last.preparation,
    blas: { native: last.blas, python: pys.at(-1)?.blas },
    build: last.build,
    loadMs: median(rs.map((r) => r.loadMs)),
  };
}

// ---------------------------------------------------------------------------------------------
// Floor-lowering table

interface Variant {
  id: string;
  label: string;
  /** Cumulative chain (each row adds one change to the row above) or a side variant of the default. */
  chain: boolean;
  threads?: number;
  blas?: string;
  channelsLast?: boolean;
  freeze?: boolean;
  jit?: WorkerJob['jit'];
  mkldnn?: boolean;
  env?: NodeJS.ProcessEnv;
  bf16Check?: boolean;
  /** Measured while another process runs 2-thread convolutions (bench/python_loop.py load). */
  contended?: boolean;
  /** Side variants: the row their speed-up is relative to (default: 'default'). */
  baseId?: string;
}

const MALLOC_DEFAULT = { ROBUST_SYNTH_MALLOC: 'default' };
const LIBTORCH_ENV = { ...MALLOC_DEFAULT, ATEN_CPU_CAPABILITY: 'avx2' };

function variants(): Variant[] {
  return [
    // The chain: each row adds one change to the row above (until theirs: glibc's malloc thresholds, ATen's AVX2 kernels).
    { id: 'libtorch', label: 'LibTorch defaults: 1 thread, reference BLAS, NCHW, unfrozen', chain: true, threads: 1, blas: 'reference', channelsLast: false, freeze: false, env: LIBTORCH_ENV },
    { id: 'threads', label: `+ ${THREADS} threads (all cores)`, chain: true, blas: 'reference', channelsLast: false, freeze: false, env: LIBTORCH_ENV },
    { id: 'openblas', label: '+ OpenBLAS instead of the reference BLAS', chain: true, blas: 'openblas', channelsLast: false, freeze: false, env: LIBTORCH_ENV },
    { id: 'channels-last', label: '+ channels-last weights and inputs', chain: true, blas: 'openblas', channelsLast: true, freeze: false, env: LIBTORCH_ENV },
    { id: 'freeze', label: '+ frozen graph (BatchNorm folded into convs)', chain: true, blas: 'openblas', channelsLast: true, freeze: true, env: LIBTORCH_ENV },
    { id: 'avx512', label: "+ ATen's AVX-512 kernels where the CPU has them", chain: true, blas: 'openblas', channelsLast: true, freeze: true, env: MALLOC_DEFAULT },
    { id: 'malloc', label: '+ freed memory kept for reuse (mallopt: mmap/trim thresholds, a heap-sized top pad; no page faults per step)', chain: true, blas: 'openblas', channelsLast: true, freeze: true },
    { id: 'default', label: 'robust-synth defaults (as in the table above)', chain: false },
    { id: 'jit-simple', label: "default + 'simple' TorchScript executor", chain: false, jit: 'simple' },
    { id: 'jit-legacy', label: "default + 'legacy' TorchScript executor", chain: false, jit: 'legacy' },
    { id: 'omp-passive', label: 'default + OMP_WAIT_POLICY=PASSIVE', chain: false, env: { OMP_WAIT_POLICY: 'PASSIVE' } },
    { id: 'no-onednn', label: 'default without oneDNN (convolutions via im2col + BLAS)', chain: false, mkldnn: false },
    { id: 'bf16', label: 'default + bf16 autocast (bf16Check)', chain: false, bf16Check: true },
    { id: 'contended', label: `default, while another process runs ${THREADS}-thread convolutions`, chain: false, contended: true },
    { id: 'contended-passive', label: 'the same, with OMP_WAIT_POLICY=PASSIVE', chain: false, contended: true, env: { OMP_WAIT_POLICY: 'PASSIVE' }, baseId: 'contended' },
  ];
}

interface AblationCell {
  floor?: Summary;
  error?: string;
  blas?: string[];
  bf16?: { floor: Summary; speedup: number; maxAbsDiff: number; relL2: number[]; agree: number; fp32Loss: number[]; bf16Loss: number[]; steps: number };
}

/** Steps of the fp32-vs-bf16 comparison: Fashion-MNIST's generation setting (60), fewer for ResNet50. */
function bf16Steps(w: Workload): number {
  return w.inputShape[1] >= 100 ? Math.min(w.steps, 10) : 60;
}

async function ablation(ws: Workload[], defaultEnv: NodeJS.ProcessEnv): Promise<Record<string, Record<string, AblationCell>>> {
  const table: Record<string, Record<string, AblationCell>> = {};
  for (const w of ws) {
    const { x0File, targetsFile } = writeInputs(w);
    const reps = Math.max(1, Math.ceil(w.floorReps / 2));
    for (const v of variants()) {
      const env = v.blas ? blasEnv(v.blas) : defaultEnv;
      table[v.id] ??= {};
      if (!env) {
        table[v.id]![w.id] = { error: `no ${v.blas} BLAS found (Debian: apt-get install libopenblas0-openmp)` };
        continue;
      }
      log(`[${w.id}] floor: ${v.label} ...`);
      // Under contention a pass can be ~100x slower (spinning OpenMP threads): fewer repetitions.
      const corunner = v.contended ? startLoad('omp', env) : undefined;
      try {
        await corunner?.ready;
        const r = await worker({
          kind: 'floor', model: w.model, inputShape: w.inputShape, batch: w.batch, x0File, targetsFile,
          threads: v.threads ?? THREADS, channelsLast: v.channelsLast, freeze: v.freeze, jit: v.jit, mkldnn: v.mkldnn,
          eps: w.eps, step: w.step, steps: bf16Steps(w), runs: 3, floorReps: v.contended ? Math.max(1, Math.ceil(reps / 10)) : reps,
          warmup: 2, bf16Check: v.bf16Check,
        }, { ...env, ...v.env });
        const cell: AblationCell = { floor: summarize(r.floorRunMs), blas: r.blas };
        if (r.bf16) {
          const bf = summarize(r.bf16.floorMs);
          cell.bf16 = {
            floor: bf, speedup: cell.floor!.medianMs / bf.medianMs, maxAbsDiff: r.bf16.maxAbsDiff, relL2: r.bf16.relL2,
            agree: r.bf16.agree, fp32Loss: r.bf16.fp32Loss, bf16Loss: r.bf16.bf16Loss, steps: bf16Steps(w),
          };
        }
        table[v.id]![w.id] = cell;
      } catch (e) {
        table[v.id]![w.id] = { error: (e as Error).message.split('\n')[0]!.slice(0, 200) };
      } finally {
        await corunner?.stop();
      }
    }
  }
  return table;
}

// ---------------------------------------------------------------------------------------------
// Contended table: the same native workload on a quiet machine and beside another CPU-bound process

type ContendedPath = 'native' | 'js' | 'logits';
type Condition = 'idle' | LoadKind;

interface ContendedCondition {
  /** ms/step (logits: ms/call), one value per round; NaN where that round failed. */
  native: number[];
  js: number[];
  logits: number[];
  /** The worker's CPU time over wall time during its native run: the cores it kept busy. */
  cpuPerWall: number[];
  /** getThreads() in the worker. */
  threads: number[];
  /** The co-runner's CPU time over the worker's lifetime: the cores the co-runner got. */
  loadCores: number[];
}

interface ContendedRow {
  id: string;
  label: string;
  model: string;
  batch: number;
  steps: number;
  extras: boolean;
  conditions: Partial<Record<Condition, ContendedCondition>>;
  /** loaded/idle: the median of the per-round ratios, and the ratios. */
  ratios: Partial<Record<LoadKind, Partial<Record<ContendedPath, { median: number; rounds: number[] }>>>>;
  errors: string[];
}

interface ContendedResults {
  date: string;
  quick: boolean;
  machine: { cpu: string; cores: number; loadavgStart: number[]; loadavgEnd: number[] };
  threadPolicy: string;
  loads: LoadKind[];
  rounds: number;
  target: number;
  rows: ContendedRow[];
  seconds: number;
}

const CONTENDED_TARGET = 2.5;

function contendedLoads(): LoadKind[] {
  const loads = (args['contended-load'] ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  for (const l of loads) if (l !== 'spin' && l !== 'omp') throw new Error(`--contended-load ${l}: expected spin, omp or spin,omp`);
  return [...new Set(loads)] as LoadKind[];
}

async function measureContended(ws: Workload[], env: NodeJS.ProcessEnv, m: ReturnType<typeof machine>): Promise<ContendedResults> {
  const t0 = Date.now();
  const loads = contendedLoads();
  const rounds = QUICK ? 2 : 4;
  // The library's own thread policy is what is measured, unless --threads says otherwise.
  const threads = args.threads ? THREADS : undefined;
  const rows: ContendedRow[] = [];
  for (const w of ws.filter((x) => x.contended)) {
    const c = w.contended!;
    const { x0File, targetsFile } = writeInputs(w);
    const conditions: Condition[] = ['idle', ...loads];
    const row: ContendedRow = {
      id: w.id, label: w.label, model: basename(w.model), batch: w.batch, steps: c.steps, extras: c.extras, conditions: {}, ratios: {}, errors: [],
    };
    for (const cond of conditions) {
      row.conditions[cond] = { native: [], js: [], logits: [], cpuPerWall: [], threads: [], loadCores: [] };
    }
    log(`[${w.id}] contended: ${rounds} rounds of ${c.steps} steps, idle and ${loads.map((l) => LOAD_LABELS[l]).join(' and ')} (order alternating) ...`);
    for (let round = 0; round < rounds; round++) {
      // Paired rounds: every condition once per round, the order reversed every other round.
      const order = round % 2 === 0 ? conditions : [...conditions].reverse();
      for (const cond of order) {
        const cell = row.conditions[cond]!;
        const corunner = cond === 'idle' ? undefined : startLoad(cond, env);
        try {
          await corunner?.ready;
          const cpu0 = processCpuMs(corunner?.proc.pid);
          const tw = performance.now();
          const r = await worker({
            kind: 'contended', model: w.model, inputShape: w.inputShape, batch: w.batch, x0File, targetsFile, threads,
            eps: w.eps, step: w.step, steps: c.steps, runs: 1, floorReps: 1, warmup: 2, extras: c.extras, logitsReps: c.steps, round, lag: false,
          }, env);
          const loadCores = corunner ? (processCpuMs(corunner.proc.pid) - cpu0) / (performance.now() - tw) : 0;
          cell.native[round] = r.nativeStepMs[0] ?? NaN;
          cell.js[round] = r.jsStepMs[0] ?? NaN;
          cell.logits[round] = r.logitsMs?.[0] ?? NaN;
          cell.cpuPerWall[round] = r.nativeCpuPerWall?.[0] ?? NaN;
          cell.threads[round] = r.threads;
          cell.loadCores[round] = loadCores;
        } catch (e) {
          row.errors.push(`${cond}, round ${round + 1}: ${(e as Error).message.split('\n')[0]!.slice(0, 200)}`);
          for (const k of ['native', 'js', 'logits', 'cpuPerWall', 'threads', 'loadCores'] as const) cell[k][round] = NaN;
        } finally {
          if (corunner) {
            await corunner.stop();
            await new Promise((r) => setTimeout(r, 1000)); // the CPUs quiet again before the next measurement
          }
        }
      }
      const idle = row.conditions.idle!;
      log(`[${w.id}] round ${round + 1}: native ms/step ${conditions.map((cond) => `${cond} ${f(row.conditions[cond]!.native[round], 2)}`).join(', ')}`
        + ` (idle ${f(idle.cpuPerWall[round], 1)} cores)`);
    }
    for (const l of loads) {
      const loaded = row.conditions[l]!;
      const idle = row.conditions.idle!;
      const paths: ContendedPath[] = c.extras ? ['native', 'js', 'logits'] : ['native'];
      row.ratios[l] = {};
      for (const p of paths) {
        const rs = loaded[p].map((x, i) => x / idle[p][i]!).filter(Number.isFinite);
        row.ratios[l]![p] = { median: median(rs), rounds: rs };
      }
    }
    rows.push(row);
  }
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    quick: QUICK,
    machine: { cpu: m.cpu, cores: m.cores, loadavgStart: m.loadavgStart, loadavgEnd: loadavg() },
    threadPolicy: threads ? `--threads ${threads}` : "the library's default",
    loads,
    rounds,
    target: CONTENDED_TARGET,
    rows,
    seconds: (Date.now() - t0) / 1000,
  };
}

const CONTENDED_START = '<!-- contended:start -->';
const CONTENDED_END = '<!-- contended:end -->';

function contendedMarkdown(c: ContendedResults): string {
  const lines: string[] = [CONTENDED_START, '', '### Contention: the same loop on a quiet machine and beside another CPU-bound process', ''];
  const medianOf = (xs: number[]) => median(xs.filter(Number.isFinite));
  const cellMs = (xs: number[] | undefined) => {
    const v = (xs ?? []).filter(Number.isFinite);
    return v.length ? ms(summarize(v)) : '—';
  };
  lines.push(`Measured ${c.date} on ${c.machine.cpu} (${c.machine.cores} cores), ${c.rounds} paired rounds${c.quick ? ' (--quick)' : ''}, `
    + `thread policy: ${c.threadPolicy}. Load average at start: ${c.machine.loadavgStart.map((x) => x.toFixed(2)).join(' ')}. `
    + `Target: loaded/idle ≤ ${c.target}.`);
  lines.push('');
  const head = ['workload', 'idle'];
  for (const l of c.loads) head.push(LOAD_LABELS[l], 'loaded/idle');
  const condNames = `idle${c.loads.map((l) => ` / ${l}`).join('')}`;
  head.push(`threads (${condNames}); cores the loop used (${condNames})`, `cores the co-runner got: ${c.loads.join(' / ')}`);
  lines.push(`| ${head.join(' | ')} |`);
  lines.push(`|${head.map(() => '---').join('|')}|`);
  const names: Record<ContendedPath, string> = { native: 'native pgd, ms/step', js: 'JS-driven session, ms/step', logits: 'logits(), ms/call' };
  for (const r of c.rows) {
    const paths: ContendedPath[] = r.extras ? ['native', 'js', 'logits'] : ['native'];
    for (const p of paths) {
      const cells = [`${r.label}: ${names[p]}`, cellMs(r.conditions.idle?.[p])];
      for (const l of c.loads) {
        const ratio = r.ratios[l]?.[p];
        const ok = ratio && Number.isFinite(ratio.median) ? (ratio.median <= c.target ? ' ✓' : ' ✗') : '';
        cells.push(cellMs(r.conditions[l]?.[p]), ratio ? `${pairedRatio(ratio.median, ratio.rounds)}${ok}` : '—');
      }
      if (p === 'native') {
        const conds = ['idle', ...c.loads] as Condition[];
        const thr = conds.map((cond) => [...new Set((r.conditions[cond]?.threads ?? []).filter(Number.isFinite))].join(',') || '?').join(' / ');
        const used = conds.map((cond) => f(medianOf(r.conditions[cond]?.cpuPerWall ?? []), 1)).join(' / ');
        cells.push(`${thr}; ${used}`, c.loads.map((l) => f(medianOf(r.conditions[l]?.loadCores ?? []), 1)).join(' / '));
      } else {
        cells.push('', '');
      }
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  lines.push('');
  lines.push(`Each round runs one worker process per condition (idle, then ${c.loads.join(', ')}; the order reversed every other round), each with a fresh `
    + 'co-runner that the bench starts before the worker (and waits until it computes) and kills after it: '
    + '`spin` is a Node.js busy loop on one thread; `omp` is `bench/python_loop.py load` (LibTorch OpenMP convolutions on '
    + `${THREADS} threads, like a training job). The worker loads the model with ${c.threadPolicy === "the library's default" ? "the library's own thread policy (no setThreads call)" : c.threadPolicy}, `
    + 'warms up (2 floor passes, a 2-step run) and times one run of each path. ms/step: median over rounds (± half the min-max range); '
    + 'loaded/idle: the median of the per-round ratios (their range in brackets). Threads: `getThreads()` after the native run; '
    + 'cores used: the worker\'s CPU time over wall time during the native run; cores the co-runner got: its CPU time over the worker\'s lifetime.');
  const errs = c.rows.flatMap((r) => r.errors.map((e) => `${r.id}: ${e}`));
  if (errs.length) {
    lines.push('');
    lines.push(`Failed measurements: ${errs.join('; ')}.`);
  }
  lines.push('', CONTENDED_END, '');
  return lines.join('\n');
}

/** --contended-only: replaces the contended part of an existing results.json / results.md (or starts them). */
function writeContendedOnly(outDir: string, c: ContendedResults): void {
  const jsonPath = join(outDir, 'results.json');
  let results: Record<string, unknown> = {};
  if (existsSync(jsonPath)) {
    try {
      results = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
    } catch {
      results = {};
    }
  }
  results.contended = c;
  writeFileSync(jsonPath, JSON.stringify(results, null, 2) + '\n');
  const mdPath = join(outDir, 'results.md');
  const md = contendedMarkdown(c);
  const old = existsSync(mdPath) ? readFileSync(mdPath, 'utf8') : '';
  const start = old.indexOf(CONTENDED_START);
  const end = old.indexOf(CONTENDED_END);
  let next: string;
  if (start >= 0 && end > start) {
    const after = old.slice(end + CONTENDED_END.length).replace(/^\n+/, '');
    next = old.slice(0, start) + md + (after ? `\n${after}` : '');
  } else {
    next = old ? `${old.replace(/\n*$/, '\n\n')}${md}` : md;
  }
  writeFileSync(mdPath, next);
}

// ---------------------------------------------------------------------------------------------
// Report

const f = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
const ms = (s: Summary | undefined): string => (s ? `${f(s.medianMs, s.medianMs < 10 ? 2 : 1)} ±${f(s.spread * 100, 0)}%` : '—');
const ratio = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(3));
/** A median of per-round ratios, with their range when there are several rounds. */
const pairedRatio = (x: number | undefined, rounds: number[]) =>
  ratio(x) + (x !== undefined && rounds.length > 1 ? ` (${Math.min(...rounds).toFixed(2)}–${Math.max(...rounds).toFixed(2)})` : '');
const shortBlas = (paths: string[] | undefined) =>
  !paths?.length ? '?' : paths.some((p) => /openblas/.test(p)) ? 'OpenBLAS' : paths.some((p) => /\/blas\//.test(p)) ? 'reference BLAS' : paths.map((p) => p.split('/').pop()).join(', ');

function markdown(m: ReturnType<typeof machine>, rows: Row[], abl: Record<string, Record<string, AblationCell>> | undefined, peaks: { fp32Gflops: number; bf16Gflops: number } | undefined, date: string): string {
  const lines: string[] = [];
  const b = rows[0]?.build;
  lines.push(`Measured ${date} on ${m.cpu} (${m.cores} cores${m.features.length ? `; ${m.features.join(', ')}` : ''}), ${m.memoryGiB} GiB, `
    + `LibTorch ${b?.torchVersion ?? '?'} (${b?.onednn ?? ''}; ${b?.cpuCapability ?? ''}), BLAS: ${shortBlas(rows[0]?.blas.native)}, `
    + `${THREADS} threads, Node ${m.node}${QUICK ? ', --quick' : ''}. Load average at start: ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')}. `
    + `Models: ${[...new Set(rows.map((r) => basename(r.workload.model)))].join(', ')} (ResNet50: random weights, scripted by models/export_resnet50.py --random).`);
  lines.push('');
  lines.push('| workload | native ms/step | JS-driven | Python | floor | image-steps/s | GFLOP/s (% of fp32 peak) | native/floor | JS/native | native/Python | peak RSS native / Python | event-loop lag p99 / max |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const pct = r.gflops !== undefined ? ` (${f((100 * r.gflops) / m.fp32PeakGflops, 0)}%)` : '';
    lines.push(`| ${r.workload.label} | ${ms(r.native)} | ${ms(r.js)} | ${ms(r.python)} | ${ms(r.floor)} | ${f(r.imageStepsPerSec, r.imageStepsPerSec < 100 ? 2 : 0)} | ${f(r.gflops)}${pct} | `
      + `${pairedRatio(r.ratios.nativeOverFloor, r.pairedRatios.nativeOverFloor)} | ${pairedRatio(r.ratios.jsOverNative, r.pairedRatios.jsOverNative)} | `
      + `${pairedRatio(r.ratios.nativeOverPython, r.pairedRatios.nativeOverPython)} | ${f(r.rssMb.native, 0)} / ${f(r.rssMb.python, 0)} MB | ${f(r.lag.p99Ms)} / ${f(r.lag.maxMs)} ms |`);
  }
  lines.push('');
  lines.push(`Rounds: each workload runs in ${rows.map((r) => r.workload.runs).filter((v, i, a) => a.indexOf(v) === i).join(' or ')} rounds; a round is one native process `
    + `(a floor run, an untimed 2-step run, the native and the JS-driven run, a floor run, back to back) and one Python process. `
    + `The native and JS-driven runs take turns going first, and so do the two processes, over an even number of rounds: whichever ran first in a process was 2-6 % slower. `
    + `ms/step: each round's mean, median over rounds (± half the min-max range). Ratios: the median of the ratios taken within each round (their range in brackets). Native and Python: the loop's steps `
    + `without the final useBest forward; JS-driven: awaited \`session.step()\` calls; floor: bare forward + backward w.r.t. the input, timed in C++; `
    + `event-loop lag: a 10 ms setInterval during a separate, untimed native run of about a second. `
    + `fp32 peak: ${f(m.fp32PeakGflops, 0)} GFLOP/s (${m.fp32PeakSource})`
    + (peaks ? `; a large oneDNN 1x1 convolution reaches ${f(peaks.fp32Gflops, 0)} GFLOP/s fp32 and ${f(peaks.bf16Gflops, 0)} bf16 here` : '')
    + `. Step FLOPs: twice the forward's convolution and linear FLOPs (ResNet50 at 224: ${f((rows.find((r) => r.workload.id.startsWith('resnet'))?.workload.stepFlopsPerImage ?? NaN) / 1e9, 2)} GFLOP per image).`);
  const prep = rows[0]?.preparation;
  if (prep) {
    lines.push('');
    lines.push(`Model preparation (library defaults): channels-last ${prep.channelsLast ? 'on' : 'off'}, freeze ${prep.freeze ? 'on' : 'off'}; Python ran with the same preparation and the same ATen kernels (${rows[0]?.build.cpuCapability ?? '?'}). `
      + `Results: JS-driven = native bit for bit in ${rows.filter((r) => r.jsMatchesNative).length}/${rows.length} workloads; native vs Python max abs difference of the final images: `
      + rows.map((r) => `${r.workload.id} ${r.nativeVsPythonMaxDiff === undefined ? '—' : r.nativeVsPythonMaxDiff.toExponential(1)}`).join(', ') + '.');
  }
  const tf = rows.filter((r) => r.tfjs);
  if (tf.length) {
    const b0 = tf[0]!.tfjs!.backend;
    lines.push('');
    lines.push(`### TensorFlow.js peer: the same classifier and PGD loop in TF.js ${b0.version} (${b0.backend} backend${b0.simd ? ', SIMD' : ''}, ${b0.threads === 1 ? '1 thread' : 'multi-threaded'})`);
    lines.push('');
    lines.push(`| workload | native ms/step (${THREADS} threads) | TF.js ms/step | native/TF.js | TF.js, conv gradients as forward convs | native/that | `
      + 'native on 1 thread | native 1-thread/that | same predictions | max abs image diff (steps) | logits max diff at x0 | peak RSS TF.js |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of tf) {
      const t = r.tfjs!;
      lines.push(`| ${r.workload.label} | ${ms(r.native)} | ${ms(t.ms)} | ${pairedRatio(t.ratios.nativeOverTfjs, t.pairedRatios.nativeOverTfjs)} | `
        + `${ms(t.msFast)} | ${pairedRatio(t.ratios.nativeOverTfjsFast, t.pairedRatios.nativeOverTfjsFast)} | ${ms(t.native1)} | `
        + `${pairedRatio(t.ratios.native1OverTfjsFast, t.pairedRatios.native1OverTfjsFast)} | ${f(t.compare.predictionsAgree * 100, 0)}% | `
        + `${t.compare.imagesMaxDiff.toExponential(1)} (${t.compare.steps}) | ${t.compare.logitsMaxDiff.toExponential(1)} | ${f(t.rssMb, 0)} MB |`);
    }
    lines.push('');
    lines.push('The classifier is exported from its TorchScript file at bench time (`bench/export_tfjs_weights.py`: the frozen graph, op by op, weights to NHWC) and runs as '
      + 'TF.js ops; the loop is the same (targeted, cross-entropy, L2 step and projection, clamp, useBest) from the same start. One TF.js process per round, in the '
      + 'same paired rounds as the native process (order alternating); TF.js runs fewer steps where its steps are slow, so the ratios compare ms per step (< 1: native is faster). '
      + '"TF.js ms/step": `tf.grad` with TF.js\'s own gradients, whose convolution input gradient (Conv2DBackpropInput) is a plain loop in the wasm backend, 60-85 % of a step; '
      + '"conv gradients as forward convs": the same gradient written with `tf.customGrad` as a forward convolution of the stride-dilated output gradient with the '
      + `flipped kernel, which XNNPACK runs (the same values: the two TF.js results differ by ${rows.filter((r) => r.tfjs).map((r) => { const d = r.tfjs!.compare.convGradsMaxDiff; return d === undefined ? '—' : d === 0 ? '0' : d.toExponential(1); }).join(', ')}). `
      + '"native on 1 thread": the native loop timed in the TF.js process right after TF.js, on one thread as the wasm backend runs in Node.js. Results are compared '
      + 'after the TF.js step count (each loop\'s useBest result, last round); a long trajectory amplifies ulp-level differences, so a max abs image difference '
      + 'near 1 after hundreds of steps with the same predictions means diverged paths, not a different loop.');
  }
  const families = [...new Set(rows.map((r) => r.workload.model))];
  const batching = families.map((fam) => {
    const rs = rows.filter((r) => r.workload.model === fam).sort((a, b) => a.workload.batch - b.workload.batch);
    if (rs.length < 2) return '';
    return rs.slice(1).map((r) => `${rs[0]!.workload.label} → batch ${r.workload.batch}: ×${f(r.imageStepsPerSec / rs[0]!.imageStepsPerSec, 2)} image-steps/s`).join('; ');
  }).filter(Boolean);
  if (batching.length) {
    lines.push('');
    lines.push(`Batching: ${batching.join('; ')}.`);
  }
  lines.push('');
  lines.push(`Model load (with the default preparation): ${rows.map((r) => `${r.workload.id} ${f(r.loadMs, 0)} ms`).join(', ')}; `
    + `warm-up before timing: 3 passes (the TorchScript profiling executor optimizes after its first runs).`);
  if (abl) {
    const ids = [...new Set(Object.values(abl).flatMap((c) => Object.keys(c)))];
    const labels = Object.fromEntries(rows.map((r) => [r.workload.id, r.workload.label]));
    lines.push('');
    lines.push('### Lowering the floor (ms per forward + backward; × = speed-up over the row above; side variants: over the defaults row, PASSIVE under contention: over the contended row)');
    lines.push('');
    lines.push(`| change | ${ids.map((id) => labels[id] ?? id).join(' | ')} |`);
    lines.push(`|---|${ids.map(() => '---').join('|')}|`);
    const vs = variants();
    let prev: Record<string, number> = {};
    for (const v of vs) {
      const cells = abl[v.id];
      if (!cells) continue;
      const base = v.chain ? prev : Object.fromEntries(ids.map((id) => [id, abl[v.baseId ?? 'default']?.[id]?.floor?.medianMs ?? NaN]));
      const txt = ids.map((id) => {
        const c = cells[id];
        if (!c) return '—';
        if (c.error) return `n/a (${c.error.slice(0, 60)})`;
        if (v.bf16Check && c.bf16) return `${ms(c.bf16.floor)} (×${f(c.bf16.speedup, 2)})`;
        const x = c.floor!.medianMs;
        const g = v.id === 'default' || base[id] === undefined || !Number.isFinite(base[id]!) ? '' : ` (×${f(base[id]! / x, 2)})`;
        return `${ms(c.floor)}${g}`;
      });
      lines.push(`| ${v.bf16Check ? 'default + bf16 autocast' : v.label} | ${txt.join(' | ')} |`);
      if (v.chain) prev = Object.fromEntries(ids.map((id) => [id, cells[id]?.floor?.medianMs ?? NaN]));
    }
    const bf = abl.bf16;
    if (bf) {
      lines.push('');
      lines.push('bf16 autocast against fp32, same start, same steps: distance between the two results relative to how far the fp32 run moved (per image), '
        + 'agreement of the predicted classes, and the final losses:');
      lines.push('');
      lines.push('| workload | steps | bf16 speed-up (floor) | result distance / fp32 move (median, max) | max abs pixel diff | same prediction | loss fp32 → bf16 (mean) |');
      lines.push('|---|---|---|---|---|---|---|');
      for (const id of ids) {
        const c = bf[id]?.bf16;
        if (!c) continue;
        const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
        const e = (x: number) => x.toExponential(2);
        lines.push(`| ${labels[id] ?? id} | ${c.steps} | ×${f(c.speedup, 2)} | ${f(median(c.relL2), 3)}, ${f(Math.max(...c.relL2), 3)} | ${f(c.maxAbsDiff, 3)} | ${f(c.agree * 100, 0)}% | ${e(mean(c.fp32Loss))} → ${e(mean(c.bf16Loss))} |`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Chart: relative ms/step per workload (native = 1), and the floor-lowering speed-ups.

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function chartSvg(rows: Row[], abl: Record<string, Record<string, AblationCell>> | undefined): string {
  const W = 1000;
  const colors = { floor: '#999999', native: '#2f6db5', js: '#6fa8dc', python: '#e69138' };
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="20" y="26" font-size="18" font-family="DejaVu Sans, sans-serif" font-weight="bold">ms per step relative to native (native = 1.0); lower is better</text>`);
  const x0 = 230;
  const scaleMax = Math.max(1.2, ...rows.flatMap((r) => [r.floor.medianMs / r.native.medianMs, r.ratios.jsOverNative, r.python ? r.python.medianMs / r.native.medianMs : 0]));
  const px = (v: number) => ((W - x0 - 90) * v) / scaleMax;
  for (const r of rows) {
    const bars: [string, string, number][] = [
      ['floor', colors.floor, r.floor.medianMs / r.native.medianMs],
      ['native', colors.native, 1],
      ['JS-driven', colors.js, r.ratios.jsOverNative],
    ];
    if (r.python) bars.push(['Python', colors.python, r.python.medianMs / r.native.medianMs]);
    parts.push(`<text x="20" y="${y + 14}" font-size="13" font-family="DejaVu Sans, sans-serif">${esc(r.workload.label)}</text>`);
    parts.push(`<text x="20" y="${y + 30}" font-size="11" fill="#555" font-family="DejaVu Sans, sans-serif">native ${esc(f(r.native.medianMs, r.native.medianMs < 10 ? 2 : 1))} ms/step</text>`);
    for (const [name, color, v] of bars) {
      parts.push(`<rect x="${x0}" y="${y}" width="${px(v).toFixed(1)}" height="10" fill="${color}"/>`);
      parts.push(`<text x="${(x0 + px(v) + 6).toFixed(1)}" y="${y + 9}" font-size="10" font-family="DejaVu Sans, sans-serif">${name} ${v.toFixed(2)}</text>`);
      y += 12;
    }
    y += 14;
  }
  // 1.0 line
  parts.push(`<line x1="${x0 + px(1)}" y1="34" x2="${x0 + px(1)}" y2="${y - 10}" stroke="#000" stroke-dasharray="3,3"/>`);
  if (abl) {
    y += 20;
    const chain = variants().filter((v) => v.chain && abl[v.id]);
    const ids = rows.map((r) => r.workload.id).filter((id) => chain.some((v) => abl[v.id]?.[id]?.floor));
    parts.push(`<text x="20" y="${y}" font-size="18" font-family="DejaVu Sans, sans-serif" font-weight="bold">floor speed-up over LibTorch defaults (log scale)</text>`);
    y += 14;
    const palette = ['#cccccc', '#9fc5e8', '#6fa8dc', '#3d85c6', '#0b5394', '#073763', '#20124d'];
    const speedups = ids.flatMap((id) => chain.map((v) => (abl.libtorch?.[id]?.floor?.medianMs ?? NaN) / (abl[v.id]?.[id]?.floor?.medianMs ?? NaN)));
    const maxS = Math.max(2, ...speedups.filter(Number.isFinite));
    const lx = (v: number) => ((W - x0 - 120) * Math.log(Math.max(1, v))) / Math.log(maxS);
    for (const id of ids) {
      const label = rows.find((r) => r.workload.id === id)?.workload.label ?? id;
      parts.push(`<text x="20" y="${y + 14}" font-size="13" font-family="DejaVu Sans, sans-serif">${esc(label)}</text>`);
      chain.forEach((v, i) => {
        const s = (abl.libtorch?.[id]?.floor?.medianMs ?? NaN) / (abl[v.id]?.[id]?.floor?.medianMs ?? NaN);
        if (!Number.isFinite(s)) return;
        parts.push(`<rect x="${x0}" y="${y}" width="${Math.max(1, lx(s)).toFixed(1)}" height="10" fill="${palette[i % palette.length]}"/>`);
        parts.push(`<text x="${(x0 + Math.max(1, lx(s)) + 6).toFixed(1)}" y="${y + 9}" font-size="10" font-family="DejaVu Sans, sans-serif">${esc(v.id)} ×${s.toFixed(2)}</text>`);
        y += 12;
      });
      y += 14;
    }
  }
  const H = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect width="${W}" height="${H}" fill="white"/>${parts.join('')}</svg>`;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = Date.now();
  mkdirSync(SCRATCH, { recursive: true });
  const outDir = resolve(args.out!);
  mkdirSync(outDir, { recursive: true });
  const m = machine();
  const defaultEnv = blasEnv(args.blas!);
  if (!defaultEnv) throw new Error(`--blas ${args.blas}: no such BLAS found`);
  if (m.loadavgStart[0]! > 0.5 * m.cores) {
    log(`warning: load average ${m.loadavgStart[0]!.toFixed(2)} on ${m.cores} cores: other processes are running, timings will be noisy`);
  }
  contendedLoads(); // check the option before anything runs
  if (args['contended-only']) {
    const needResnet = workloads('').some((w) => w.contended && w.id.startsWith('resnet'));
    const ws = workloads(needResnet ? await ensureResnet() : '');
    const cont = await measureContended(ws, defaultEnv, m);
    writeContendedOnly(outDir, cont);
    process.stdout.write(`\n${contendedMarkdown(cont)}\nwrote the contended part of ${join(outDir, 'results.json')} and results.md in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    return;
  }
  const resnet = await ensureResnet();
  const ws = workloads(resnet);
  const flopsCache = new Map<string, number>();
  for (const w of ws) {
    if (!flopsCache.has(w.model)) flopsCache.set(w.model, await stepFlops(w));
    w.stepFlopsPerImage = flopsCache.get(w.model);
  }
  let peaks: { fp32Gflops: number; bf16Gflops: number } | undefined;
  if (!args['no-python']) {
    peaks = lastJson(await run(PYTHON, [join(BENCH, 'python_loop.py'), 'peak', '--threads', String(THREADS), '--reps', QUICK ? '3' : '8'], defaultEnv));
  }
  const rows: Row[] = [];
  for (const w of ws) rows.push(await measureWorkload(w, defaultEnv));
  const abl = args['no-ablation'] ? undefined : await ablation(ws.filter((w) => !QUICK || w.quickAblation), defaultEnv);
  const cont = args['no-contended'] ? undefined : await measureContended(ws, defaultEnv, m);
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  const md = markdown(m, rows, abl, peaks, date) + (cont ? `\n${contendedMarkdown(cont)}` : '');
  const results = {
    date, quick: QUICK, threads: THREADS, blas: args.blas, machine: { ...m, loadavgEnd: loadavg() }, peaks, workloads: rows, floorLowering: abl,
    contended: cont, seconds: (Date.now() - t0) / 1000,
  };
  writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(outDir, 'results.md'), md);
  await sharp(Buffer.from(chartSvg(rows, abl))).png().toFile(join(outDir, 'chart.png'));
  process.stdout.write(`\n${md}\nwrote ${join(outDir, 'results.json')}, results.md and chart.png in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
