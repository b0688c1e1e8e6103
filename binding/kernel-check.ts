/**
 * The kernel self-check: some LibTorch builds compute wrong results, crash or hang on some CPUs
 * (Debian 13's LibTorch 2.6 on an AVX-512 CPU that reports no cache sizes does all three: wrong
 * input-gradients of 3x3 convolutions in oneDNN's AVX-512 kernels, a SIGFPE in oneDNN setting up
 * strided convolutions, a hang in TorchScript's TensorExpr fuser). Before the addon loads into
 * the app for the first time on a LibTorch build and CPU, a child process loads it and runs
 * convolution cases (forward and input-gradient, strided, odd channel counts, both layouts)
 * against a float64 path with oneDNN off, then the engine's own path on a small network the addon
 * writes (convolutions, batch norm, a features() method): frozen and channels-last, forward() and
 * features() without gradients, then PGD through both. A crash or a hang costs
 * the child. From what failed, the next child runs with a setting changed (the fuser off, oneDNN
 * capped to AVX2, oneDNN off), until one passes. The settings that passed are cached per
 * LibTorch build and CPU in <cache>/kernel-check.json and applied at every load: slower at
 * worst, never wrong.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheRoot, type LibTorch } from '../lib/libtorch/discover.js';
import { cpuFlags } from './cpu.js';
import { PRELOAD_FLAGS } from './probe.js';

/** Bump when the cases or the rules change: cached results of older checks are then ignored. */
const CHECK_VERSION = 3;
/** Relative error allowed between float32 and the float64 reference (float32 rounding is ~1e-6). */
export const KERNEL_TOLERANCE = 1e-4;

export interface KernelSettings {
  /** TorchScript's TensorExpr fuser left on (false: the check turned it off). */
  fuser: boolean;
  /** The oneDNN instruction-set cap applied (ONEDNN_MAX_CPU_ISA), or null for none. */
  isaCap: string | null;
  /** oneDNN convolutions on. */
  mkldnn: boolean;
  /** The layouts whose convolutions passed with these settings. */
  layout: 'either' | 'channels-last' | 'standard';
  /**
   * passed: the defaults passed, nothing changed. adjusted: settings were changed until the check
   * passed. failed: nothing passed; the safest settings (fuser and oneDNN off) are used.
   * skipped: ROBUST_SYNTH_KERNEL_CHECK=0 or a CUDA LibTorch. error: the check could not run.
   */
  status: 'passed' | 'adjusted' | 'failed' | 'skipped' | 'error';
  /** One line per child run: its settings and what happened. */
  attempts: string[];
  /** The largest relative error of the convolution cases in the run that passed (null: none passed). */
  largestError: number | null;
  /** Whether this came from the cache file rather than a run in this process. */
  cached: boolean;
}

export interface Trial {
  fuser: boolean;
  isaCap: string | null;
  mkldnn: boolean;
}

export type Outcome =
  | { kind: 'ok'; worst: number }
  | { kind: 'wrong'; cases: string[]; layouts: { standard: boolean; channelsLast: boolean } }
  | { kind: 'crash'; stage: string; why: string }
  | { kind: 'hang'; stage: string }
  | { kind: 'error'; why: string };

// The child: loads the addon as the loader does, runs the cases, then the model path; prints
// one JSON line per stage before entering it, so a crash or a hang names the stage.
const CHILD = `
let [bin, preload, flags, trial, model] = JSON.parse(process.argv[1]);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
for (const p of preload) { try { process.dlopen({ exports: {} }, p, flags); } catch (e) { if (!/did not self-register/.test(e.message)) throw e; } }
const m = { exports: {} }; process.dlopen(m, bin); const b = m.exports;
if (!trial.fuser) b.setTensorExprFuser(false);
if (!trial.mkldnn) b.setMkldnn(false);
say({ stage: 'loaded' });
for (let i = 0; i < b.kernelCheckCases(); i++) for (const cl of [false, true]) {
  say({ stage: 'case ' + i + (cl ? ' channels-last' : ' standard') });
  const r = b.kernelCheckRun(i, cl);
  say({ result: r.name, channelsLast: cl, forward: String(r.forward), gradient: String(r.gradient) });
}
(async () => {
  let tmp;
  if (!model && b.kernelCheckSaveNet) {
    tmp = require('fs').mkdtempSync(require('path').join(require('os').tmpdir(), 'rs-kernel-check-'));
    model = { path: tmp + '/net.pt', shape: [3, 16, 16] };
    b.kernelCheckSaveNet(model.path);
  }
  if (model) {
    say({ stage: 'model' });
    const net = await b.load(model.path, 'cpu', model.shape, { channelsLast: true, freeze: true, freezeStrict: false }).promise;
    const n = 2, size = model.shape.reduce((a, c) => a * c, 1);
    const x = { data: new Float32Array(n * size).map((_, i) => (Math.sin(i * 12.9898) + 1) / 2), shape: [n, ...model.shape] };
    // As an app runs it (the thread count included: the fuser's hang needs more than one thread):
    // forward and features() without gradients, PGD through forward(), then through features().
    await net.logits(x).promise; await net.features(x).promise; await net.features(x).promise;
    const pgd = { x0: x, targets: new Int32Array(n), constraint: '2', eps: 1, step: 0.2, iterations: 8, useBest: true,
      randomStart: false, seed: 0, targeted: true, bf16: false, penaltyWeight: 0, progressEvery: 1000 };
    await net.pgd(pgd).promise;
    say({ stage: 'model features' });
    await net.pgd({ ...pgd, useBest: false, featureIndex: 0, featureWeight: 1 }).promise;
    await net.dispose().promise;
    if (tmp) require('fs').rmSync(tmp, { recursive: true, force: true });
  }
  say({ stage: 'done' });
  b.stopJobsForExit();
  process.exit(0);
})().catch((e) => { say({ error: String(e && e.message || e) }); process.exit(3); });
`;

function describeTrial(t: Trial): string {
  return `fuser ${t.fuser ? 'on' : 'off'}, oneDNN ${t.mkldnn ? (t.isaCap ? `capped to ${t.isaCap}` : 'on') : 'off'}`;
}

function runChild(binary: string, preload: string[], trial: Trial, model: ModelProbe | undefined, timeoutMs: number): Outcome {
  const env = { ...process.env };
  if (trial.isaCap) env.ONEDNN_MAX_CPU_ISA = env.DNNL_MAX_CPU_ISA = trial.isaCap;
  const r = spawnSync(process.execPath, ['-e', CHILD, JSON.stringify([binary, preload, PRELOAD_FLAGS, trial, model])], {
    encoding: 'utf8', timeout: timeoutMs, env, stdio: ['ignore', 'pipe', 'pipe'], killSignal: 'SIGKILL',
  });
  const lines = (r.stdout ?? '').split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l) as Record<string, string | boolean>;
    } catch {
      return {};
    }
  });
  const stage = String(lines.filter((l) => l.stage).at(-1)?.stage ?? 'start');
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  if (timedOut) return stage === 'start' ? { kind: 'error', why: `the check did not start within ${timeoutMs / 1000} s` } : { kind: 'hang', stage };
  if (r.error) return { kind: 'error', why: r.error.message };
  if (r.signal) return { kind: 'crash', stage, why: r.signal };
  if (r.status !== 0 || stage !== 'done') {
    const why = String(lines.find((l) => l.error)?.error ?? (r.stderr ?? '').trim().split('\n').at(-1) ?? `exit ${r.status}`);
    // A load or an exception before the first case is not a kernel fault: report, do not adjust.
    return stage === 'start' || stage === 'loaded' ? { kind: 'error', why } : { kind: 'crash', stage, why };
  }
  const layouts = { standard: true, channelsLast: true };
  const wrong: string[] = [];
  let worst = 0;
  for (const l of lines.filter((x) => x.result)) {
    const f = Number(l.forward);
    const g = Number(l.gradient);
    worst = Math.max(worst, f, g);
    if (f <= KERNEL_TOLERANCE && g <= KERNEL_TOLERANCE) continue; // NaN fails here too
    wrong.push(`${l.result}: forward ${fmt(f)}, gradient ${fmt(g)}`);
    if (l.channelsLast) layouts.channelsLast = false;
    else layouts.standard = false;
  }
  return wrong.length ? { kind: 'wrong', cases: wrong, layouts } : { kind: 'ok', worst };
}

const fmt = (x: number) => (Number.isNaN(x) ? 'NaN' : x.toExponential(1));

function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'ok': return `passed (largest relative error ${fmt(o.worst)})`;
    case 'wrong': return `wrong results (relative error > ${KERNEL_TOLERANCE}): ${o.cases.slice(0, 3).join('; ')}${o.cases.length > 3 ? `; and ${o.cases.length - 3} more` : ''}`;
    case 'crash': return `crashed (${o.why}) at ${o.stage}`;
    case 'hang': return `did not finish (hang) at ${o.stage}`;
    case 'error': return `could not run: ${o.why}`;
  }
}

/** What the check runs the engine's path on; default: a small network the addon writes (kernelCheckSaveNet). */
export interface ModelProbe {
  path: string;
  shape: number[];
}

export interface CheckInput {
  libtorch: LibTorch;
  binary: string;
  preload: string[];
  model?: ModelProbe;
  /** Whether the CPU runs AVX-512 (the ISA cap is worth trying only then). Default: from /proc/cpuinfo. */
  avx512?: boolean;
  timeoutMs?: number;
  /** Stands in for the child process (tests of the rules). */
  runChild?: (trial: Trial) => Outcome;
  /** Where the cache is (ROBUST_SYNTH_CACHE etc.). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Store a new result in the cache file (default true; `setup --check` changes nothing). */
  store?: boolean;
}

/** Runs children until one passes; the settings to use and what each run showed. */
export function runKernelCheck(input: CheckInput): KernelSettings {
  const avx512 = input.avx512 ?? cpuFlags().includes('avx512f');
  const userCap = process.env.ONEDNN_MAX_CPU_ISA ?? process.env.DNNL_MAX_CPU_ISA ?? null;
  let trial: Trial = { fuser: true, isaCap: userCap, mkldnn: true };
  const attempts: string[] = [];
  for (let i = 0; i < 5; i++) {
    const o = input.runChild ? input.runChild(trial) : runChild(input.binary, input.preload, trial, input.model, input.timeoutMs ?? 60_000);
    attempts.push(`${describeTrial(trial)}: ${describeOutcome(o)}`);
    if (o.kind === 'ok') {
      const layout = 'either';
      return { ...trial, layout, status: i === 0 ? 'passed' : 'adjusted', attempts, largestError: o.worst, cached: false };
    }
    if (o.kind === 'error') return { fuser: true, isaCap: userCap, mkldnn: true, layout: 'either', status: 'error', attempts, largestError: null, cached: false };
    const next: Trial = { ...trial };
    if (o.kind === 'hang' && trial.fuser) next.fuser = false;
    else if (o.kind === 'wrong' && trial.mkldnn && !trial.isaCap && avx512) next.isaCap = 'AVX2';
    else if (trial.mkldnn) {
      next.mkldnn = false;
      next.isaCap = null;
    } else if (trial.fuser) next.fuser = false;
    else break;
    trial = next;
  }
  return { fuser: false, isaCap: null, mkldnn: false, layout: 'either', status: 'failed', attempts, largestError: null, cached: false };
}

/** The cache key: the check's version, the LibTorch build (its library file), the binary, the CPU. */
export function kernelCheckKey(libtorch: LibTorch, binary: string): string {
  const lib = join(libtorch.libDir, 'libtorch_cpu.so');
  const file = (p: string) => {
    try {
      const real = realpathSync(p);
      const s = statSync(real);
      return `${real}:${s.size}:${Math.round(s.mtimeMs)}`;
    } catch {
      return p;
    }
  };
  let model = '';
  try {
    model = /^model name\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '';
  } catch {
    // not Linux
  }
  const h = createHash('sha256');
  h.update(JSON.stringify([CHECK_VERSION, libtorch.version, file(existsSync(lib) ? lib : join(libtorch.libDir, 'libtorch.so')), file(binary), model, [...cpuFlags()].sort().join(' '),
    process.env.ONEDNN_MAX_CPU_ISA ?? process.env.DNNL_MAX_CPU_ISA ?? '']));
  return h.digest('hex').slice(0, 32);
}

export function kernelCheckFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'kernel-check.json');
}

type CacheFile = Record<string, Omit<KernelSettings, 'cached'> & { libtorch: string; at: string }>;

function readCache(file: string): CacheFile {
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return j && typeof j === 'object' && !Array.isArray(j) ? (j as CacheFile) : {};
  } catch {
    return {};
  }
}

/** The cached result for this LibTorch, binary and CPU, or a new check (then cached; errors are not). */
export function kernelSettings(input: CheckInput): KernelSettings {
  const env = input.env ?? process.env;
  if (env.ROBUST_SYNTH_KERNEL_CHECK === '0') {
    return { fuser: true, isaCap: null, mkldnn: true, layout: 'either', status: 'skipped', attempts: ['ROBUST_SYNTH_KERNEL_CHECK=0'], largestError: null, cached: false };
  }
  if (input.libtorch.variant === 'cuda') {
    return { fuser: true, isaCap: null, mkldnn: true, layout: 'either', status: 'skipped', attempts: ['a CUDA LibTorch: the check covers CPU kernels'], largestError: null, cached: false };
  }
  const file = kernelCheckFile(env);
  const key = kernelCheckKey(input.libtorch, input.binary);
  const hit = readCache(file)[key];
  if (hit && ['passed', 'adjusted', 'failed'].includes(hit.status)) {
    const { libtorch: _l, at: _a, ...settings } = hit;
    return { ...settings, cached: true };
  }
  const result = runKernelCheck(input);
  if (result.status !== 'error' && input.store !== false) {
    try {
      mkdirSync(dirname(file), { recursive: true });
      const all = readCache(file);
      const { cached: _c, ...stored } = result;
      all[key] = { ...stored, libtorch: `${input.libtorch.version} at ${input.libtorch.libDir}`, at: new Date().toISOString() };
      // Rebuilt binaries and upgraded LibTorches leave old keys: keep the 20 newest.
      for (const old of Object.keys(all).sort((a, b) => String(all[b]!.at).localeCompare(String(all[a]!.at))).slice(20)) delete all[old];
      const tmp = `${file}.${process.pid}.partial`;
      writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`);
      renameSync(tmp, file);
    } catch {
      // a read-only cache: the check runs again next time
    }
  }
  return result;
}

/** One line for `setup --check` and warnings. */
export function describeKernelSettings(s: KernelSettings): string {
  const what = `fuser ${s.fuser ? 'on' : 'off'}, oneDNN ${s.mkldnn ? (s.isaCap ? `capped to ${s.isaCap}` : 'on') : 'off'}, layout ${s.layout}`;
  const how = {
    passed: 'passed with the defaults',
    adjusted: 'settings changed until the check passed',
    failed: 'no settings passed; using the safest',
    skipped: 'not run',
    error: 'could not run; using the defaults',
  }[s.status];
  return `${what} (${how}${s.cached ? ', cached' : ''})`;
}
