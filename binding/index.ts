/**
 * The native module: where it is found, and its raw typed surface. Nothing else lives here;
 * lib/ wraps this with validation, errors and the public API.
 *
 * Loading, in order (sharp's loader and node-llama-cpp's GPU probing are the models):
 *  1. resolve the LibTorch to use (scripts/download-libtorch.ts: $LIBTORCH, the download cache,
 *     a Python torch, the system one);
 *  2. pick a binary built for it: a local `robust-synth build` in build/Release, else a prebuilt
 *     in prebuilds/<flavor>/ (one folder per LibTorch version and variant, handed to
 *     node-gyp-build, which would otherwise ignore a `cuda` tag). Each binary has a JSON record of
 *     the LibTorch it was built against beside it; a version mismatch is refused before anything
 *     is loaded, because a wrong LibTorch crashes or fails to link;
 *  3. load LibTorch's libraries from the resolved directory by absolute path, so the binary's
 *     NEEDED entries bind to them by soname (no LD_LIBRARY_PATH), probing a CUDA build in a child
 *     process first so a broken CUDA install kills the child, not the app;
 *  4. load the binary.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { RobustSynthError } from '../lib/errors.js';
import {
  defaultPythons, describeLibTorch, findLibTorch, majorMinor, noLibTorchMessage, type LibTorch,
} from '../scripts/download-libtorch.js';

export interface RawTensor {
  data: Buffer;
  shape: number[];
  dtype: 'float32' | 'int32';
}

export interface RawJob<T> {
  promise: Promise<T>;
  cancel(): void;
}

export interface RawPgdOptions {
  x0: { data: Float32Array; shape: number[] };
  targets: Int32Array;
  constraint: '2' | 'inf' | 'unconstrained';
  eps: number;
  step: number;
  iterations: number;
  useBest: boolean;
  randomStart: boolean;
  seed: number;
  targeted: boolean;
  bf16: boolean;
  penaltyWeight: number;
  mask?: { data: Float32Array; shape: number[] };
  reference?: { data: Float32Array; shape: number[] };
  featureIndex?: number;
  featureWeight?: number;
  progressEvery: number;
}

export interface RawProgress {
  step: number;
  total: number;
  loss: number;
  elapsedMs: number;
}

export interface RawPgdResult {
  images: RawTensor;
  losses: RawTensor;
  predictions: RawTensor;
  stats: { ms: number; steps: number };
}

export interface RawSession {
  step(): RawJob<RawTensor>;
  finish(): RawJob<RawPgdResult>;
}

export interface RawModel {
  info(): { numClasses: number; device: string; hasFeatures: boolean; channelsLast: boolean; frozen: boolean; inputShape: [number, number, number] };
  logits(x: { data: Float32Array; shape: number[] }): RawJob<RawTensor>;
  features(x: { data: Float32Array; shape: number[] }): RawJob<RawTensor>;
  pgd(options: RawPgdOptions, onProgress?: (p: RawProgress) => void): RawJob<RawPgdResult>;
  createSession(options: RawPgdOptions): RawJob<RawSession>;
  floor(x: { data: Float32Array; shape: number[] }, targets: Int32Array, reps: number, bf16: boolean): RawJob<number[]>;
  dispose(): RawJob<void>;
}

export interface BuildInfo {
  torchVersion: string;
  cudaAvailable: boolean;
  variant: 'cpu' | 'cuda';
  defaultThreads: number;
  parallelInfo: string;
  /** at::show_config(): compiler, oneDNN version, CPU capability, BLAS. */
  config: string;
  mkldnn: boolean;
}

export interface RawLoadConfig {
  channelsLast: boolean;
  freeze: boolean;
  /** Throw when freezing fails (else the module runs unfrozen). */
  freezeStrict: boolean;
  /** No shape known (no option, no card): probe common shapes, ignoring `inputShape`. */
  inferShape?: boolean;
}

export type JitExecutor = 'profiling' | 'simple' | 'legacy';

export interface NativeBinding {
  load(path: string, device: string, inputShape: number[], config?: RawLoadConfig): RawJob<RawModel>;
  /** n >= 1: a fixed count; 0: adaptive. */
  setThreads(n: number): void;
  getThreads(): number;
  threadPolicy(): { mode: 'auto' | 'fixed'; current: number; max: number };
  /** The adaptive rule, for tests: allowed cores minus other processes' busy cores, rounded, >= 1. */
  threadsForLoad(allowed: number, otherBusyCores: number): number;
  setJitExecutor(mode: JitExecutor): void;
  getJitExecutor(): JitExecutor;
  /** Process-wide: oneDNN convolutions on (default) or off. For benchmarks. */
  setMkldnn(enabled: boolean): void;
  buildInfo(): BuildInfo;
  /** Live CPU tensor allocations; counted only when ROBUST_SYNTH_COUNT_TENSORS=1 was set before the addon loaded (leak tests). */
  tensorStats(): { counting: boolean; allocations: number; bytes: number };
  /** Aborts every job and waits until no compute thread is inside one; for process exit only (irreversible). */
  stopJobsForExit(): void;
}

/** The package root: the nearest directory above this file holding our package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'robust-synth') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('robust-synth: cannot find the package root');
    dir = up;
  }
}

// ---------------------------------------------------------------------------------------------
// ELF: which libraries a binary needs, and which soname a library answers to

export interface ElfDynamic {
  needed: string[];
  soname?: string;
  runpath?: string;
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, position);
  return buf.subarray(0, n);
}

/**
 * Reads the dynamic section of a 64-bit little-endian ELF file (x64, arm64) with a few small
 * reads, so it is cheap even on a 1 GB libtorch_cuda.so. undefined for anything else.
 */
export function readElfDynamic(path: string): ElfDynamic | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return undefined;
    const shoff = Number(eh.readBigUInt64LE(0x28));
    const shentsize = eh.readUInt16LE(0x3a);
    const shnum = eh.readUInt16LE(0x3c);
    if (!shoff || !shnum || shentsize < 64) return undefined;
    const sh = readAt(fd, shoff, shnum * shentsize);
    const section = (i: number) => ({
      type: sh.readUInt32LE(i * shentsize + 4),
      offset: Number(sh.readBigUInt64LE(i * shentsize + 24)),
      size: Number(sh.readBigUInt64LE(i * shentsize + 32)),
      link: sh.readUInt32LE(i * shentsize + 40),
    });
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      if (s.type !== 6 /* SHT_DYNAMIC */) continue;
      const dyn = readAt(fd, s.offset, s.size);
      const strtab = section(s.link);
      const str = readAt(fd, strtab.offset, strtab.size);
      const cstr = (off: number) => str.toString('utf8', off, str.indexOf(0, off));
      const out: ElfDynamic = { needed: [] };
      for (let p = 0; p + 16 <= dyn.length; p += 16) {
        const tag = Number(dyn.readBigInt64LE(p));
        const val = Number(dyn.readBigUInt64LE(p + 8));
        if (tag === 0) break;
        if (tag === 1) out.needed.push(cstr(val));
        else if (tag === 14) out.soname = cstr(val);
        else if (tag === 29 || (tag === 15 && !out.runpath)) out.runpath = cstr(val);
      }
      return out;
    }
    return { needed: [] };
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// The binaries this package has, and what each was built against

/** The JSON written beside each binary (native/CMakeLists.txt; scripts/prebuild.ts adds to it). */
export interface BinaryRecord {
  torchVersion: string;
  variant: 'cpu' | 'cuda';
  cuda?: string;
  cxx11Abi?: boolean;
  /** Where the LibTorch libraries were when it was built (informational). */
  torchLibDir?: string;
  napiVersion?: number;
}

export interface BinaryCandidate {
  path: string;
  kind: 'local build' | 'prebuilt';
  record?: BinaryRecord;
  /** 'record': the JSON beside it; 'sonames': guessed from the versioned libraries it links. */
  recordFrom?: 'record' | 'sonames';
  problem?: string;
}

function readRecord(nodePath: string): BinaryRecord | undefined {
  const json = nodePath.replace(/\.node$/, '.json');
  try {
    const r = JSON.parse(readFileSync(json, 'utf8')) as Partial<BinaryRecord>;
    if (typeof r.torchVersion === 'string' && (r.variant === 'cpu' || r.variant === 'cuda')) return r as BinaryRecord;
  } catch {
    // missing or unreadable: the caller falls back to the sonames
  }
  return undefined;
}

/** A build made before records existed: Debian's versioned sonames still tell major.minor. */
function recordFromSonames(nodePath: string): BinaryRecord | undefined {
  const elf = readElfDynamic(nodePath);
  const v = elf?.needed.map((n) => /^libtorch(?:_cpu)?\.so\.(\d+\.\d+)/.exec(n)?.[1]).find(Boolean);
  if (!elf || !v) return undefined;
  return { torchVersion: v, variant: elf.needed.some((n) => /^lib(torch|c10)_cuda\.so/.test(n)) ? 'cuda' : 'cpu' };
}

function describe(b: BinaryCandidate, root: string): string {
  const where = relative(root, b.path) || b.path;
  if (!b.record) return `${where} (${b.kind}): ${b.problem ?? 'no build record'}`;
  const r = b.record;
  return `${where} (${b.kind}): built against LibTorch ${r.torchVersion} (${r.variant === 'cuda' ? `CUDA ${r.cuda ?? ''}`.trim() : 'CPU'})`;
}

/** Every binary in the package: the local build first, then each prebuilt flavor. */
export function listBinaries(root: string = packageRoot()): BinaryCandidate[] {
  const out: BinaryCandidate[] = [];
  const add = (path: string, kind: BinaryCandidate['kind']) => {
    const record = readRecord(path);
    if (record) return out.push({ path, kind, record, recordFrom: 'record' });
    const guessed = recordFromSonames(path);
    if (guessed) return out.push({ path, kind, record: guessed, recordFrom: 'sonames' });
    out.push({ path, kind, problem: `no build record (${relative(root, path.replace(/\.node$/, '.json'))}); rebuild it with: npx robust-synth build` });
  };
  // ROBUST_SYNTH_BINARY: a build kept elsewhere (scripts/asan.sh's sanitized one) stands in for the local build.
  const local = process.env.ROBUST_SYNTH_BINARY ? resolve(process.env.ROBUST_SYNTH_BINARY) : join(root, 'build', 'Release', 'robust_synth.node');
  if (existsSync(local)) add(local, 'local build');
  const prebuilds = join(root, 'prebuilds');
  let flavors: string[] = [];
  try {
    flavors = readdirSync(prebuilds).filter((d) => !d.startsWith('.') && existsSync(join(prebuilds, d, 'prebuilds'))).sort();
  } catch {
    // no prebuilt binaries (a source checkout)
  }
  const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string };
  for (const flavor of flavors) {
    let path: string;
    try {
      // node-gyp-build picks the file for this platform, arch and libc inside the flavor folder.
      path = nodeGypBuild.resolve(join(prebuilds, flavor));
    } catch {
      continue; // built for another platform
    }
    add(path, 'prebuilt');
  }
  return out;
}

export type BinaryCheck =
  | { ok: true; exact: boolean; preload: string[] }
  | { ok: false; why: string };

/** The library in libDir that answers to `soname` (libtorch.so.1.13 may be reached as libtorch.so). */
function libraryFor(soname: string, libDir: string): string | undefined {
  const base = /^(.*?\.so)(?:\.[\d.]+)?$/.exec(soname)?.[1] ?? soname;
  for (const name of new Set([soname, base])) {
    const p = join(libDir, name);
    if (!existsSync(p)) continue;
    const elf = readElfDynamic(p);
    if (!elf?.soname || elf.soname === soname) return p;
  }
  return undefined;
}

/** Whether `binary` can run on `libtorch`, and which of its libraries to load first. */
export function checkBinary(libtorch: LibTorch, binary: BinaryCandidate): BinaryCheck {
  const r = binary.record;
  if (!r) return { ok: false, why: binary.problem ?? 'no build record' };
  if (majorMinor(r.torchVersion) !== majorMinor(libtorch.version)) {
    return { ok: false, why: `built for LibTorch ${majorMinor(r.torchVersion)}.x (${r.torchVersion}); this one is ${libtorch.version}` };
  }
  if (r.variant === 'cuda' && libtorch.variant === 'cpu') return { ok: false, why: `a CUDA build (LibTorch ${r.torchVersion}); this LibTorch is CPU-only` };
  if (r.cxx11Abi !== undefined && libtorch.cxx11Abi !== undefined && r.cxx11Abi !== libtorch.cxx11Abi) {
    return { ok: false, why: `built for the ${r.cxx11Abi ? 'C++11' : 'pre-C++11'} libstdc++ ABI; this LibTorch uses the other one` };
  }
  const elf = readElfDynamic(binary.path);
  const preload: string[] = [];
  for (const soname of elf?.needed ?? []) {
    if (!/^lib(torch|c10|shm|caffe2)/.test(soname)) continue;
    const lib = libraryFor(soname, libtorch.libDir);
    if (!lib) {
      return { ok: false, why: `links ${soname}, which ${libtorch.libDir} does not provide (a LibTorch packaged with other library names)` };
    }
    preload.push(lib);
  }
  return { ok: true, exact: r.variant === libtorch.variant, preload };
}

function pickBinary(libtorch: LibTorch, binaries: BinaryCandidate[]): { binary: BinaryCandidate; check: Extract<BinaryCheck, { ok: true }> } | undefined {
  let fallback: { binary: BinaryCandidate; check: Extract<BinaryCheck, { ok: true }> } | undefined;
  for (const binary of binaries) {
    const check = checkBinary(libtorch, binary);
    if (!check.ok) continue;
    if (check.exact) return { binary, check };
    fallback ??= { binary, check };
  }
  return fallback;
}

/** For `setup --check`: which binary would run on `libtorch`, or why none would. */
export function explainBinary(libtorch: LibTorch, root: string = packageRoot()): { ok: boolean; text: string } {
  const binaries = listBinaries(root);
  const pick = pickBinary(libtorch, binaries);
  if (pick) {
    const cpuOnCuda = !pick.check.exact ? ' (a CPU build: the GPU will not be used)' : '';
    const probe = libtorch.variant === 'cuda' ? '; a CUDA LibTorch is probed in a child process before loading' : '';
    return { ok: true, text: `Binary: ${describe(pick.binary, root)}: matches${cpuOnCuda}${probe}.` };
  }
  return { ok: false, text: refusalText(libtorch, binaries, root) };
}

function refusalText(libtorch: LibTorch, binaries: BinaryCandidate[], root: string): string {
  const lines = binaries.length
    ? binaries.map((b) => {
        const c = checkBinary(libtorch, b);
        return c.ok ? `  - ${describe(b, root)}` : `  - ${relative(root, b.path) || b.path} (${b.kind}): ${c.why}`;
      })
    : ['  - none (no build/Release and no prebuilds/ in the package)'];
  return [
    `No robust-synth binary here is built for ${describeLibTorch(libtorch)} (found via ${libtorch.source}):`,
    ...lines,
    'Loading a binary against a different LibTorch fails to link or crashes, so robust-synth refuses.',
    'Fixes (any one):',
    '  - compile the addon for this LibTorch (needs cmake and a C++17 compiler): npx robust-synth build',
    `  - use a LibTorch these binaries were built for: ${libtorch.source === 'LIBTORCH' ? 'unset LIBTORCH or point it at one' : 'set LIBTORCH to one'}` +
      (binaries.some((b) => b.record && majorMinor(b.record.torchVersion) === '1.13') ? ' (Debian/Ubuntu: apt-get install libtorch-dev)' : ''),
    '  - see what was found, and why: npx robust-synth setup --check',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Loading

// RTLD_NOW | RTLD_NODELETE: Node dlcloses a library that is not an addon; NODELETE keeps it
// mapped, so the addon's NEEDED entries bind to it by soname.
const PRELOAD_FLAGS = 0x2 | 0x1000;

function preloadLibraries(paths: string[]): void {
  for (const p of paths) {
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, p, PRELOAD_FLAGS);
    } catch (e) {
      if (!/did not self-register/.test((e as Error).message)) throw e;
    }
  }
}

export type ProbeResult = { ok: true; info: BuildInfo } | { ok: false; why: string };

/**
 * Loads `binary` in a child process and asks it for buildInfo(): a CUDA LibTorch with a broken
 * link or driver kills the child, not the caller.
 */
export function probeBinary(binary: string, preload: string[], timeoutMs = 120_000): ProbeResult {
  const script =
    'const [bin, preload, flags] = JSON.parse(process.argv[1]);' +
    'for (const p of preload) { try { process.dlopen({ exports: {} }, p, flags); } catch (e) { if (!/did not self-register/.test(e.message)) throw e; } }' +
    'const m = { exports: {} }; process.dlopen(m, bin);' +
    'process.stdout.write(JSON.stringify(m.exports.buildInfo()));';
  const r = spawnSync(process.execPath, ['-e', script, JSON.stringify([binary, preload, PRELOAD_FLAGS])], {
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) return { ok: false, why: r.error.message };
  if (r.signal) return { ok: false, why: `the probe process died with ${r.signal}${r.stderr ? `: ${lastLine(r.stderr)}` : ''}` };
  if (r.status !== 0) return { ok: false, why: lastLine(r.stderr) || `the probe process exited with ${r.status}` };
  try {
    return { ok: true, info: JSON.parse(r.stdout) as BuildInfo };
  } catch {
    return { ok: false, why: `the probe printed something unexpected: ${r.stdout.slice(0, 200)}` };
  }
}

/** The error's own line in a child's stderr ("Error: ...: invalid ELF header"), else its last line. */
function lastLine(s: string): string {
  const lines = s.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /^[\w.]*Error\b.*?: /.test(l)) ?? lines.filter((l) => !/^at |^Node\.js v|^[{}]/.test(l)).at(-1) ?? '';
}

function warn(message: string): void {
  if (!process.env.ROBUST_SYNTH_QUIET) console.warn(`robust-synth: ${message}`);
}

function libtorchError(message: string): RobustSynthError {
  return new RobustSynthError('ERR_LIBTORCH', message);
}

/**
 * LibTorch 1.13 runs ATen's AVX2 kernels even where its AVX-512 ones would run; those were
 * measured 20-30 % faster on batched Fashion-MNIST steps and level on ResNet50 (bench/README.md).
 * ATen reads ATEN_CPU_CAPABILITY once, at its first kernel, so this is set before LibTorch
 * loads, and only where the CPU has the AVX-512 subsets ATen needs and the user chose nothing.
 */
function preferAvx512Kernels(): void {
  if (process.env.ATEN_CPU_CAPABILITY !== undefined || process.arch !== 'x64') return;
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'fma'].every((f) => flags.includes(f))) {
      process.env.ATEN_CPU_CAPABILITY = 'avx512';
    }
  } catch {
    // no /proc/cpuinfo (not Linux): leave LibTorch's choice
  }
}

/** What loadBinding() loaded, and why. */
export interface LoadedBinding {
  path: string;
  kind: BinaryCandidate['kind'];
  record: BinaryRecord;
  libtorch: LibTorch;
  preloaded: string[];
  /** Each fallback taken (CUDA probe failures), as logged. */
  fallbacks: string[];
}

let cached: NativeBinding | undefined;
let loaded: LoadedBinding | undefined;

/** What the loaded addon is and which LibTorch it runs on; undefined before the first load. */
export function bindingInfo(): LoadedBinding | undefined {
  return loaded;
}

/** Decides what to load, probing CUDA candidates; throws ERR_LIBTORCH when nothing fits. */
function plan(): LoadedBinding {
  const root = packageRoot();
  const res = findLibTorch({ purpose: 'runtime' });
  if (!res.chosen) throw libtorchError(noLibTorchMessage(res));
  const binaries = listBinaries(root);
  const primary = res.chosen;
  const pick = pickBinary(primary, binaries);
  if (!pick) throw libtorchError(`robust-synth: refusing to load.\n${refusalText(primary, binaries, root)}`);
  const fallbacks: string[] = [];
  if (!pick.check.exact) {
    const line = `no CUDA build for ${describeLibTorch(primary)}; using the CPU build ${relative(root, pick.binary.path)} (the GPU will not be used)`;
    warn(line);
    fallbacks.push(line);
  }
  const chosen = { libtorch: primary, ...pick };
  if (primary.variant === 'cuda') {
    const probe = probeBinary(pick.binary.path, pick.check.preload);
    if (!probe.ok) {
      const line = `the CUDA LibTorch ${primary.version} at ${primary.root} failed its probe (${probe.why}); falling back to the CPU`;
      warn(line);
      fallbacks.push(line);
      // Look again, Pythons included (skipped above once a LibTorch was found), for a CPU LibTorch after this one.
      const all = findLibTorch({ purpose: 'runtime', pythons: defaultPythons(process.env) });
      const at = all.candidates.findIndex((c) => c.found?.root === primary.root && c.source === primary.source);
      const after = all.candidates.slice(at + 1);
      const cpu = after
        .map((c) => c.found)
        .filter((t): t is LibTorch => Boolean(t) && t!.variant === 'cpu')
        .map((t) => ({ libtorch: t, pick: pickBinary(t, binaries) }))
        .find((x) => x.pick);
      if (!cpu?.pick) {
        throw libtorchError(
          `robust-synth: the CUDA LibTorch ${primary.version} at ${primary.root} fails to load (${probe.why}), and there is no CPU LibTorch ` +
            'with a matching binary to fall back to. Fixes: repair the CUDA install (driver, libraries), or install a CPU LibTorch ' +
            '(npx robust-synth setup --variant cpu; Debian/Ubuntu: apt-get install libtorch-dev), or see: npx robust-synth setup --check',
        );
      }
      const line2 = `using ${describeLibTorch(cpu.libtorch)} (${cpu.libtorch.source}) with ${relative(root, cpu.pick.binary.path)}`;
      warn(line2);
      fallbacks.push(line2);
      return { path: cpu.pick.binary.path, kind: cpu.pick.binary.kind, record: cpu.pick.binary.record!, libtorch: cpu.libtorch, preloaded: cpu.pick.check.preload, fallbacks };
    }
    if (!probe.info.cudaAvailable) {
      const line = `${describeLibTorch(primary)} loaded, but it sees no GPU; models will run on the CPU`;
      warn(line);
      fallbacks.push(line);
    }
  }
  return {
    path: chosen.binary.path,
    kind: chosen.binary.kind,
    record: chosen.binary.record!,
    libtorch: chosen.libtorch,
    preloaded: chosen.check.preload,
    fallbacks,
  };
}

/**
 * Loads (once) the native addon built for the LibTorch this machine has. Throws a
 * RobustSynthError: ERR_LIBTORCH when no LibTorch is found or none of the binaries was built for
 * it (with the commands that fix it), ERR_BINDING when the binary itself fails to load.
 */
export function loadBinding(): NativeBinding {
  if (cached) return cached;
  const p = plan();
  preferAvx512Kernels();
  try {
    preloadLibraries(p.preloaded);
  } catch (e) {
    throw libtorchError(
      `robust-synth: could not load LibTorch's libraries from ${p.libtorch.libDir} (${(e as Error).message.split('\n')[0]}).\n` +
        'Fixes: check that LibTorch is complete (npx robust-synth setup --check); re-download it (npx robust-synth setup --force); ' +
        'or install one (Debian: apt-get install libtorch-dev).',
    );
  }
  try {
    cached = createRequire(import.meta.url)(p.path) as NativeBinding;
  } catch (e) {
    throw new RobustSynthError(
      'ERR_BINDING',
      `robust-synth: could not load the native addon ${p.path} (${(e as Error).message.split('\n')[0]}) on ${describeLibTorch(p.libtorch)}.\n` +
        'Fixes: run `npx robust-synth setup --check` to see which LibTorch is found; ' +
        'install one (Debian: `apt-get install libtorch-dev`; elsewhere `npx robust-synth setup`); ' +
        'or build from source with `npx robust-synth build`.',
    );
  }
  loaded = p;
  // process.exit() and uncaught exceptions end the process with exit(), whose static destructors
  // would run under a busy compute thread (a segfault). 'exit' listeners run before it. A
  // worker's exit tears its environment down instead, which the addon handles itself.
  if (isMainThread) process.on('exit', () => cached?.stopJobsForExit());
  return cached;
}

