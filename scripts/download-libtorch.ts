/**
 * LibTorch, found or fetched. One resolution order, shared by the build (lib/setup.ts,
 * scripts/prebuild.ts) and the runtime loader (binding/index.ts):
 *
 *   1. $LIBTORCH                       an unpacked LibTorch the user points at
 *   2. the download cache              what `robust-synth setup` fetched (~/.cache/robust-synth/libtorch/<version>-<build>)
 *   3. a Python `torch`                the LibTorch inside it (torch.utils.cmake_prefix_path); GPU machines with PyTorch
 *   4. the system                      Debian/Ubuntu `libtorch-dev` in /usr/lib/<triplet>
 *
 * `robust-synth setup` downloads the official LibTorch (CPU, or the CUDA build the installed
 * driver supports) at a pinned version, verifies its sha256, and unpacks it into the cache:
 * temp file -> verify -> unpack into a temp dir -> one rename, so an interrupted run never leaves
 * a half-unpacked tree where the resolver looks. Nothing here runs at install time: npm 11
 * blocks dependencies' install scripts, so setup is an explicit command.
 *
 * Run directly: `tsx scripts/download-libtorch.ts [--check] [--variant cpu|cuda]`
 * (installed: `node node_modules/robust-synth/dist/scripts/download-libtorch.js`).
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, createReadStream, createWriteStream, existsSync, mkdirSync, openSync, readdirSync, readFileSync,
  readSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, type Stats,
} from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { homedir } from 'node:os';
import { basename, delimiter, dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { RobustSynthError } from '../lib/errors.js';

// ---------------------------------------------------------------------------------------------
// What gets downloaded

/** The LibTorch release `setup` downloads. Prebuilt binaries for it must ship with the package. */
export const LIBTORCH_VERSION = '2.5.1';
export const DEFAULT_MIRROR = 'https://download.pytorch.org/libtorch';

/** Official builds of LIBTORCH_VERSION: `cpu` and CUDA builds named like PyTorch names them. */
export type Build = 'cpu' | 'cu118' | 'cu121' | 'cu124';
export const BUILDS: readonly Build[] = ['cpu', 'cu118', 'cu121', 'cu124'];

/**
 * sha256 of each official archive. Only values confirmed from independent sources are filled in;
 * null means "not pinned": setup then needs `--sha256`, or a `<archive>.sha256` file served beside
 * the archive by a mirror, or an explicit `--no-verify`.
 */
export const PINNED_SHA256: Record<Build, string | null> = {
  // libtorch-cxx11-abi-shared-with-deps-2.5.1+cpu.zip: the same value is pinned, and checked with
  // `sha256sum -c` / CMake URL_HASH, by WasmEdge's utils/wasi-nn/install-pytorch.sh and by
  // unrelated projects' FetchContent and build scripts.
  cpu: '618ca54eef82a1dca46ff1993d5807d9c0deb0bae147da4974166a147cb562fa',
  cu118: null, // TODO-verify: fill in from a trusted download (sha256sum) before relying on it.
  cu121: null, // TODO-verify
  cu124: null, // TODO-verify
};

/** Lowest NVIDIA driver each CUDA build runs on natively (CUDA release notes, "Toolkit and driver versions"). */
const CUDA_MIN_DRIVER: Array<[Build, string]> = [
  ['cu124', '550.54.14'],
  ['cu121', '530.30.02'],
  ['cu118', '520.61.05'],
];

/** `https://download.pytorch.org/libtorch/cu124/libtorch-cxx11-abi-shared-with-deps-2.5.1%2Bcu124.zip` */
export function libtorchUrl(build: Build, version = LIBTORCH_VERSION, mirror = DEFAULT_MIRROR): string {
  return `${mirror.replace(/\/+$/, '')}/${build}/libtorch-cxx11-abi-shared-with-deps-${version}%2B${build}.zip`;
}

/** The pinned sha256 of an official archive, recognised by its file name (for `--archive`). */
export function pinnedShaForArchive(file: string): string | undefined {
  const m = /libtorch-cxx11-abi-shared-with-deps-(\d+\.\d+\.\d+)(?:%2B|\+)(cpu|cu\d+)\.zip$/.exec(basename(file));
  if (!m || m[1] !== LIBTORCH_VERSION || !(BUILDS as readonly string[]).includes(m[2]!)) return undefined;
  return PINNED_SHA256[m[2] as Build] ?? undefined;
}

/** Cache entry name of an unpacked LibTorch: '2.5.1-cpu', '2.5.1-cu124'. */
export function cacheName(t: Pick<LibTorch, 'version' | 'variant' | 'cuda'>): string {
  const [v, tag] = t.version.split('+');
  return `${v}-${tag ?? (t.variant === 'cuda' ? `cu${(t.cuda ?? '').replace('.', '')}` : 'cpu')}`;
}

/** Compares dotted versions numerically (550.54.14 > 550.9). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

/** The newest CUDA build the driver runs, or undefined when it is too old (or there is none). */
export function cudaBuildForDriver(driver: string | undefined | null): Build | undefined {
  if (!driver) return undefined;
  for (const [build, min] of CUDA_MIN_DRIVER) if (compareVersions(driver, min) >= 0) return build;
  return undefined;
}

/** The NVIDIA kernel driver's version, from /proc (no process) or else nvidia-smi; undefined without one. */
export function detectNvidiaDriver(): string | undefined {
  try {
    const m = /Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)/.exec(readFileSync('/proc/driver/nvidia/version', 'utf8'));
    if (m) return m[1];
  } catch {
    // no driver loaded, or not Linux
  }
  const r = spawnSync('nvidia-smi', ['--query-gpu=driver_version', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000 });
  const v = r.status === 0 ? /(\d+\.\d+(?:\.\d+)?)/.exec(r.stdout)?.[1] : undefined;
  return v;
}

/** Which build `setup` downloads: `--variant` wins; otherwise CUDA when the driver supports one. */
export function chooseBuild(variant: string | undefined, driver: string | undefined | null): { build?: Build; why: string } {
  if (variant === undefined || variant === 'auto') {
    const cuda = cudaBuildForDriver(driver);
    if (cuda) return { build: cuda, why: `NVIDIA driver ${driver} supports ${cuda}` };
    return { build: 'cpu', why: driver ? `NVIDIA driver ${driver} is older than any CUDA build of ${LIBTORCH_VERSION} supports` : 'no NVIDIA driver found' };
  }
  if (variant === 'cpu') return { build: 'cpu', why: '--variant cpu' };
  if (variant === 'cuda') {
    const cuda = cudaBuildForDriver(driver);
    if (cuda) return { build: cuda, why: `--variant cuda; NVIDIA driver ${driver} supports ${cuda}` };
    return {
      why: driver
        ? `--variant cuda, but NVIDIA driver ${driver} is older than ${CUDA_MIN_DRIVER.at(-1)![1]}, the oldest any CUDA build of LibTorch ${LIBTORCH_VERSION} needs`
        : '--variant cuda, but no NVIDIA driver was found (/proc/driver/nvidia/version, nvidia-smi); name a build to download one anyway: --variant cu124',
    };
  }
  if ((BUILDS as readonly string[]).includes(variant)) return { build: variant as Build, why: `--variant ${variant}` };
  return { why: `unknown --variant '${variant}': expected cpu, cuda, ${BUILDS.filter((b) => b !== 'cpu').join(', ')}` };
}

// ---------------------------------------------------------------------------------------------
// Finding a LibTorch

export type Variant = 'cpu' | 'cuda';
export type Source = 'LIBTORCH' | 'cache' | 'python' | 'system';

export interface LibTorch {
  source: Source;
  /** The LibTorch directory (or /usr for the system one). */
  root: string;
  /** Where libtorch.so and its siblings are. */
  libDir: string;
  /** What to put in CMAKE_PREFIX_PATH (passed as $LIBTORCH) to build against it; undefined when it has no CMake config. */
  cmakePrefix?: string;
  /** As the LibTorch reports it: '2.5.1+cu124', '1.13.0a0', '1.13.0'. Compare with {@link majorMinor}. */
  version: string;
  variant: Variant;
  /** CUDA version or build tag ('12.4', 'cu124') for CUDA builds. */
  cuda?: string;
  /** true/false when its CMake config says which libstdc++ ABI it uses; undefined when unknown. */
  cxx11Abi?: boolean;
  /** Where the version was read from. */
  versionFrom: string;
  /** Anything worth telling the user (e.g. "links to the system LibTorch"). */
  note?: string;
}

export interface Candidate {
  source: Source;
  /** Human description of where this step looked. */
  where: string;
  found?: LibTorch;
  /** Why this step found nothing usable. */
  skipped?: string;
}

export interface Resolution {
  purpose: 'runtime' | 'build';
  /** The LibTorch to use: the first usable candidate. */
  chosen?: LibTorch;
  candidates: Candidate[];
  /** Set when $LIBTORCH is set but unusable: an explicit choice is never silently ignored. */
  error?: string;
}

export interface FindOptions {
  /** 'runtime' needs lib/libtorch.so; 'build' also needs a CMake config. Default 'runtime'. */
  purpose?: 'runtime' | 'build';
  env?: NodeJS.ProcessEnv;
  /** Python executables to ask for `torch` (default: $ROBUST_SYNTH_PYTHON, else python3 on PATH and /usr/bin/python3). */
  pythons?: string[];
  /** Directories searched for the system LibTorch. */
  systemLibDirs?: string[];
  /** NVIDIA driver version, to order cached builds (default: detected; null: none). */
  driver?: string | null;
}

/** ~/.cache/robust-synth (or $ROBUST_SYNTH_CACHE, or $XDG_CACHE_HOME/robust-synth). */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ROBUST_SYNTH_CACHE) return resolve(env.ROBUST_SYNTH_CACHE);
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'robust-synth');
}

export function libtorchCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'libtorch');
}

export const DEFAULT_SYSTEM_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];

/** '1.13' of '1.13.0a0', '2.5' of '2.5.1+cu124'. */
export function majorMinor(version: string): string {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${m[2]}` : version;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** libtorch.so or a versioned libtorch.so.X.Y in dir. */
function findLib(dir: string, name: string): string | undefined {
  if (isFile(join(dir, `${name}.so`))) return join(dir, `${name}.so`);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return undefined;
  }
  const versioned = entries.filter((f) => f.startsWith(`${name}.so.`)).sort((a, b) => a.length - b.length);
  return versioned.length ? join(dir, versioned[0]!) : undefined;
}

function abiFromCMake(configPath: string): boolean | undefined {
  const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readText(configPath) ?? '');
  return m ? m[1] === '1' : undefined;
}

/** Reads version and variant of an unpacked LibTorch: an official zip, a Python torch dir, or any prefix. */
export function inspectLibTorchDir(root: string, source: Source): LibTorch {
  if (!existsSync(root)) throw new Error(`${root} does not exist`);
  const libDir = [join(root, 'lib'), root].find((d) => findLib(d, 'libtorch'));
  if (!libDir) throw new Error(`${root} has no lib/libtorch.so`);
  const cmakeConfig = join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  const hasCMake = isFile(cmakeConfig);

  let version: string | undefined;
  let versionFrom = '';
  let cuda: string | undefined;
  const buildVersion = readText(join(root, 'build-version'))?.trim();
  const versionPy = readText(join(root, 'version.py'));
  const cmakeVersion = readText(join(root, 'share', 'cmake', 'Torch', 'TorchConfigVersion.cmake'));
  const header = readText(join(root, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'));
  if (buildVersion) {
    version = buildVersion;
    versionFrom = 'build-version';
    cuda = /\+(cu\d+)/.exec(buildVersion)?.[1];
  } else if (versionPy) {
    version = /__version__\s*=\s*['"]([^'"]+)['"]/.exec(versionPy)?.[1];
    versionFrom = 'version.py';
    cuda = /^cuda\s*(?::\s*\S+\s*)?=\s*['"]([^'"]+)['"]/m.exec(versionPy)?.[1];
  }
  if (!version && cmakeVersion) {
    version = /PACKAGE_VERSION\s+"([^"]+)"/.exec(cmakeVersion)?.[1];
    versionFrom = 'TorchConfigVersion.cmake';
  }
  if (!version && header) {
    const part = (k: string) => new RegExp(`#define TORCH_VERSION_${k}\\s+(\\d+)`).exec(header)?.[1];
    if (part('MAJOR') && part('MINOR')) version = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH') ?? 0}`;
    versionFrom = 'torch/version.h';
  }
  if (!version) throw new Error(`cannot tell the version of the LibTorch in ${root} (no build-version, version.py, TorchConfigVersion.cmake or torch/version.h)`);
  if (/\+rocm/.test(version)) throw new Error(`${root} is a ROCm build (${version}); robust-synth supports CPU and CUDA builds`);

  const hasCudaLib = Boolean(findLib(libDir, 'libtorch_cuda'));
  const variant: Variant = cuda || hasCudaLib ? 'cuda' : 'cpu';
  const info: LibTorch = {
    source,
    root,
    libDir,
    cmakePrefix: hasCMake ? root : undefined,
    version,
    variant,
    cuda: variant === 'cuda' ? (cuda ?? 'unknown') : undefined,
    cxx11Abi: hasCMake ? abiFromCMake(cmakeConfig) : undefined,
    versionFrom,
  };
  const real = dirname(realpathSync(findLib(libDir, 'libtorch')!));
  if (real !== realpathSync(libDir)) info.note = `its libraries link to ${real}`;
  return info;
}

/** The system LibTorch (Debian/Ubuntu `libtorch-dev`, or one installed into /usr/local). */
export function inspectSystem(libDirs: string[] = DEFAULT_SYSTEM_LIB_DIRS): { found?: LibTorch; looked: string[] } {
  for (const libDir of libDirs) {
    const lib = findLib(libDir, 'libtorch');
    if (!lib) continue;
    const configDir = join(libDir, 'cmake', 'Torch');
    const prefix = dirname(libDir);
    const cmakeVersion = readText(join(configDir, 'TorchConfigVersion.cmake'));
    const headerPaths = [join(prefix, 'include'), '/usr/include', '/usr/local/include'].map((d) =>
      join(d, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'));
    const header = headerPaths.map(readText).find(Boolean);
    let version = cmakeVersion ? /PACKAGE_VERSION\s+"([^"]+)"/.exec(cmakeVersion)?.[1] : undefined;
    let versionFrom = 'TorchConfigVersion.cmake';
    if (!version && header) {
      const part = (k: string) => new RegExp(`#define TORCH_VERSION_${k}\\s+(\\d+)`).exec(header)?.[1];
      if (part('MAJOR') && part('MINOR')) version = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH') ?? 0}`;
      versionFrom = 'torch/version.h';
    }
    if (!version) {
      // Debian names the library by its major.minor: libtorch.so.1.13
      const m = /libtorch\.so\.(\d+\.\d+(?:\.\d+)?)/.exec(realpathSync(lib));
      if (m) version = m[1];
      versionFrom = 'library file name';
    }
    if (!version) continue;
    const variant: Variant = findLib(libDir, 'libtorch_cuda') ? 'cuda' : 'cpu';
    const hasCMake = isFile(join(configDir, 'TorchConfig.cmake'));
    return {
      looked: libDirs,
      found: {
        source: 'system',
        root: prefix,
        libDir,
        cmakePrefix: hasCMake ? join(libDir, 'cmake') : undefined,
        version,
        variant,
        cuda: variant === 'cuda' ? 'unknown' : undefined,
        cxx11Abi: hasCMake ? abiFromCMake(join(configDir, 'TorchConfig.cmake')) : undefined,
        versionFrom,
        note: existsSync('/var/lib/dpkg/info/libtorch-dev.list') ? "Debian's libtorch-dev" : undefined,
      },
    };
  }
  return { looked: libDirs };
}

/** Finds an executable on PATH (no shell), for naming python3 in reports and de-duplicating. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  if (name.includes('/')) return isFile(name) ? name : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isFile(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

// Locates torch without importing it (importing takes seconds; this takes milliseconds). Same
// directory as torch.utils.cmake_prefix_path minus its share/cmake suffix.
const PY_PROBE =
  'import importlib.util, json, sys\n' +
  's = importlib.util.find_spec("torch")\n' +
  'print(json.dumps({"torch": list(s.submodule_search_locations)[0] if s and s.submodule_search_locations else None, "exe": sys.executable}))';

/** Asks each Python where its `torch` package is. */
export function findPythonTorch(pythons: string[], env: NodeJS.ProcessEnv): Array<{ python: string; torch?: string; problem?: string }> {
  const out: Array<{ python: string; torch?: string; problem?: string }> = [];
  const seen = new Set<string>();
  for (const py of pythons) {
    const exe = onPath(py, env);
    if (!exe) {
      out.push({ python: py, problem: 'not found' });
      continue;
    }
    const r = spawnSync(exe, ['-c', PY_PROBE], { encoding: 'utf8', timeout: 15_000, env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) {
      out.push({ python: exe, problem: `did not run (${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').at(-1)})` });
      continue;
    }
    try {
      const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { torch: string | null; exe: string };
      const label = exe === j.exe ? exe : `${exe} (${j.exe})`;
      if (!j.torch) out.push({ python: label, problem: 'has no torch module' });
      else if (seen.has(j.torch)) continue;
      else {
        seen.add(j.torch);
        out.push({ python: label, torch: j.torch });
      }
    } catch {
      out.push({ python: exe, problem: 'printed something unexpected' });
    }
  }
  return out;
}

/** The Pythons asked for `torch`: $ROBUST_SYNTH_PYTHON, else python3 on PATH and /usr/bin/python3. */
export function defaultPythons(env: NodeJS.ProcessEnv): string[] {
  if (env.ROBUST_SYNTH_PYTHON) return [env.ROBUST_SYNTH_PYTHON];
  return ['python3', '/usr/bin/python3'];
}

/** Cached downloads, best first: the pinned version, CUDA first when a driver is present. */
function cachedEntries(dir: string, driver: string | null | undefined): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isDirectory());
  } catch {
    return [];
  }
  const rank = (n: string) => {
    const [v = '', build = ''] = n.split('-');
    const pinned = v === LIBTORCH_VERSION ? 0 : 1;
    const cudaFirst = build === 'cpu' ? (driver ? 1 : 0) : driver ? 0 : 1;
    return { pinned, cudaFirst, v };
  };
  return names.sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    return ra.pinned - rb.pinned || ra.cudaFirst - rb.cudaFirst || compareVersions(rb.v, ra.v) || a.localeCompare(b);
  });
}

/**
 * Resolves the LibTorch to use, recording what each step found or why it did not, for
 * `setup --check` and for error messages.
 */
export function findLibTorch(options: FindOptions = {}): Resolution {
  const env = options.env ?? process.env;
  const purpose = options.purpose ?? 'runtime';
  const candidates: Candidate[] = [];
  const usable = (t: LibTorch): string | undefined =>
    purpose === 'build' && !t.cmakePrefix ? 'found, but it has no CMake config (share/cmake/Torch) to build against' : undefined;
  const res: Resolution = { purpose, candidates };
  const offer = (c: Candidate) => {
    if (c.found) {
      const why = usable(c.found);
      if (why) c.skipped = why;
      else if (!res.chosen) res.chosen = c.found;
    }
    candidates.push(c);
  };

  // 1. $LIBTORCH
  const explicit = env.LIBTORCH;
  if (explicit) {
    try {
      offer({ source: 'LIBTORCH', where: `LIBTORCH=${explicit}`, found: inspectLibTorchDir(resolve(explicit), 'LIBTORCH') });
      const c = candidates.at(-1)!;
      if (c.skipped) res.error = `LIBTORCH=${explicit}: ${c.skipped}`;
    } catch (e) {
      const why = (e as Error).message;
      candidates.push({ source: 'LIBTORCH', where: `LIBTORCH=${explicit}`, skipped: why });
      res.error = `LIBTORCH is set to ${explicit}, which is not a usable LibTorch: ${why}. Point it at an unpacked LibTorch (the directory holding lib/ and include/), or unset it.`;
    }
  } else {
    candidates.push({ source: 'LIBTORCH', where: '', skipped: 'not set' });
  }

  // 2. the download cache
  const cache = libtorchCacheDir(env);
  let entries = cachedEntries(cache, null);
  if (entries.length > 1) entries = cachedEntries(cache, options.driver === undefined ? detectNvidiaDriver() : options.driver);
  if (!entries.length) candidates.push({ source: 'cache', where: cache, skipped: existsSync(cache) ? 'empty' : 'nothing downloaded yet' });
  for (const name of entries) {
    const dir = join(cache, name);
    try {
      offer({ source: 'cache', where: dir, found: inspectLibTorchDir(dir, 'cache') });
    } catch (e) {
      candidates.push({ source: 'cache', where: dir, skipped: (e as Error).message });
    }
  }

  // 3. a Python torch (skipped once something is chosen at runtime: spawning Python costs time)
  if (res.chosen && purpose === 'runtime' && !options.pythons) {
    candidates.push({ source: 'python', where: '', skipped: 'not looked at (a LibTorch was found above)' });
  } else {
    for (const p of findPythonTorch(options.pythons ?? defaultPythons(env), env)) {
      if (!p.torch) {
        candidates.push({ source: 'python', where: p.python, skipped: p.problem });
        continue;
      }
      try {
        offer({ source: 'python', where: p.python, found: inspectLibTorchDir(p.torch, 'python') });
      } catch (e) {
        candidates.push({ source: 'python', where: `${p.python}: torch at ${p.torch}`, skipped: (e as Error).message });
      }
    }
  }

  // 4. the system
  const sys = inspectSystem(options.systemLibDirs ?? DEFAULT_SYSTEM_LIB_DIRS);
  if (sys.found) offer({ source: 'system', where: sys.found.libDir, found: sys.found });
  else candidates.push({ source: 'system', where: sys.looked.join(', '), skipped: 'no libtorch.so' });

  if (res.error) res.chosen = undefined;
  return res;
}

export function describeLibTorch(t: LibTorch): string {
  const kind = t.variant === 'cuda' ? `CUDA ${t.cuda}` : 'CPU';
  return `LibTorch ${t.version} (${kind}) at ${t.root}`;
}

const SOURCE_TITLE: Record<Source, string> = {
  LIBTORCH: '$LIBTORCH',
  cache: 'download cache',
  python: 'Python torch',
  system: 'system',
};

/** The resolution, step by step, as `setup --check` prints it. */
export function formatResolution(res: Resolution): string {
  const lines = [`LibTorch for ${res.purpose === 'build' ? 'building' : 'loading'}, in the order robust-synth looks:`];
  const order: Source[] = ['LIBTORCH', 'cache', 'python', 'system'];
  order.forEach((source, i) => {
    const steps = res.candidates.filter((c) => c.source === source);
    steps.forEach((c, j) => {
      const head = j === 0 ? `  ${i + 1}. ${SOURCE_TITLE[source].padEnd(16)}` : ' '.repeat(21);
      const where = c.where ? `${c.where}: ` : '';
      let body: string;
      if (c.found && !c.skipped) {
        body = `${where}${describeLibTorch(c.found)}, version from ${c.found.versionFrom}`;
        if (c.found.note) body += `; ${c.found.note}`;
        if (c.found === res.chosen) body += '   <- used';
      } else {
        body = `${where}${c.skipped}`;
      }
      lines.push(head + body);
    });
  });
  if (res.error) lines.push(`Error: ${res.error}`);
  return lines.join('\n');
}

/** Every way to get a LibTorch, for the one error shown when none is found. */
export function fixesText(env: NodeJS.ProcessEnv = process.env): string {
  return [
    'Fixes (any one):',
    '  - Debian/Ubuntu: sudo apt-get install libtorch-dev',
    '  - point LIBTORCH at an unpacked LibTorch: export LIBTORCH=/path/to/libtorch',
    `  - with a network: npx robust-synth setup  (downloads LibTorch ${LIBTORCH_VERSION} into ${libtorchCacheDir(env)})`,
    `  - offline: download ${libtorchUrl('cpu')} elsewhere, copy it here, and run npx robust-synth setup --archive <file>`,
    '  - a Python with PyTorch: robust-synth uses the LibTorch inside it (python3 -c "import torch")',
  ].join('\n');
}

export function noLibTorchMessage(res: Resolution, env: NodeJS.ProcessEnv = process.env): string {
  if (res.error) return `robust-synth: ${res.error}\n\n${formatResolution(res)}`;
  return `robust-synth: no LibTorch found.\n\n${formatResolution(res)}\n\n${fixesText(env)}`;
}

// ---------------------------------------------------------------------------------------------
// Downloading, verifying, unpacking

export interface InstallOptions {
  /** Where the archive is: an http(s) URL. Ignored when `archive` is given. */
  url?: string;
  /** A local archive, for offline machines. */
  archive?: string;
  /** Expected sha256 (hex). When absent, `${url}.sha256` is tried, then `verify: false` is required. */
  sha256?: string | null;
  /** false: skip verification (the computed sha256 is still reported). Default true. */
  verify?: boolean;
  /** The cache entry name ('<version>-<build>'); for archives it defaults to what the archive holds. */
  name?: string;
  /** The libtorch cache directory (default ~/.cache/robust-synth/libtorch). */
  cacheDir?: string;
  log?: (line: string) => void;
  /** Stalled-connection timeout in ms (default 60 s). */
  timeoutMs?: number;
}

export interface InstallResult {
  dir: string;
  sha256: string;
  /** 'pinned' | 'option' | 'sidecar <url>' | 'not verified' | 'already installed' */
  verifiedBy: string;
  libtorch: LibTorch;
  alreadyInstalled: boolean;
}

function setupError(message: string): RobustSynthError {
  return new RobustSynthError('ERR_LIBTORCH', message);
}

function request(url: string, timeoutMs: number, redirects = 5): Promise<IncomingMessage> {
  return new Promise((resolvePromise, reject) => {
    const get = url.startsWith('https:') ? httpsGet : url.startsWith('http:') ? httpGet : undefined;
    if (!get) return reject(setupError(`unsupported URL ${url}: use http(s), or --archive for a local file`));
    const req = get(url, { headers: { 'user-agent': 'robust-synth-setup' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects <= 0) return reject(setupError(`too many redirects fetching ${url}`));
        return resolvePromise(request(new URL(res.headers.location, url).toString(), timeoutMs, redirects - 1));
      }
      if (status !== 200) {
        res.resume();
        return reject(Object.assign(setupError(`${url} answered HTTP ${status}`), { status }));
      }
      resolvePromise(res);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no data from ${url} for ${timeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}

/** Fetches `<url>.sha256` (a mirror may serve one); undefined when there is none. */
export async function fetchSidecarSha256(url: string, timeoutMs = 30_000): Promise<string | undefined> {
  let res: IncomingMessage;
  try {
    res = await request(`${url}.sha256`, timeoutMs);
  } catch (e) {
    if ((e as { status?: number }).status) return undefined; // 404 and friends: no sidecar
    throw e;
  }
  let text = '';
  for await (const chunk of res) {
    text += String(chunk);
    if (text.length > 4096) break;
  }
  res.destroy();
  return /\b([0-9a-f]{64})\b/i.exec(text)?.[1]?.toLowerCase();
}

/** Streams `url` into `dest`, returning its sha256. Throws (leaving `dest` to the caller) when the body ends early. */
export async function downloadTo(url: string, dest: string, options: { timeoutMs?: number; log?: (s: string) => void } = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let res: IncomingMessage;
  try {
    res = await request(url, timeoutMs);
  } catch (e) {
    if (e instanceof RobustSynthError) throw e;
    throw setupError(`could not download ${url}: ${(e as Error).message} (is this machine offline?)`);
  }
  const total = Number(res.headers['content-length'] ?? 0);
  const hash = createHash('sha256');
  let received = 0;
  let nextReport = 0.1;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      received += chunk.length;
      if (total && options.log && received / total >= nextReport) {
        options.log(`  ${Math.floor((received / total) * 100)}% of ${(total / 1e6).toFixed(0)} MB`);
        nextReport += 0.1;
      }
      cb(null, chunk);
    },
  });
  res.socket?.setTimeout(timeoutMs, () => res.destroy(new Error(`download of ${url} stalled for ${timeoutMs / 1000} s`)));
  try {
    await pipeline(res, meter, createWriteStream(dest));
  } catch (e) {
    throw setupError(`download of ${url} failed after ${received} bytes: ${(e as Error).message}`);
  }
  // A server that closes the connection early can end the stream without an error.
  if (!res.complete || (total && received !== total)) {
    throw setupError(`download of ${url} was cut off: got ${received} of ${total || 'unknown'} bytes`);
  }
  return hash.digest('hex');
}

async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Downloads (or takes a local archive), verifies and unpacks a LibTorch into the cache. Nothing
 * appears under its final name until the archive is verified and fully unpacked: the last step
 * is one rename, so an interrupted run leaves only dot-named temp files, which the resolver ignores.
 */
export async function installLibTorch(options: InstallOptions): Promise<InstallResult> {
  const log = options.log ?? (() => {});
  const cacheDir = options.cacheDir ?? libtorchCacheDir();
  if (!options.name && !options.archive) throw setupError('installLibTorch: a download needs a cache entry name');
  if (options.name && existsSync(join(cacheDir, options.name))) {
    const dir = join(cacheDir, options.name);
    return { dir, sha256: '', verifiedBy: 'already installed', libtorch: inspectLibTorchDir(dir, 'cache'), alreadyInstalled: true };
  }
  mkdirSync(cacheDir, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const partial = join(cacheDir, `.download.${tag}.zip.part`);
  const staging = join(cacheDir, `.unpacking.${tag}`);
  const verify = options.verify ?? true;
  try {
    // The expected checksum is settled before the big download, so a refusal costs nothing.
    let expected = options.sha256?.toLowerCase() ?? undefined;
    let verifiedBy = expected ? 'pinned' : '';
    if (!expected && verify && options.url && !options.archive) {
      expected = await fetchSidecarSha256(options.url, options.timeoutMs);
      if (expected) verifiedBy = `sidecar ${options.url}.sha256`;
    }
    if (!expected && verify) {
      throw setupError(
        `no sha256 is pinned for ${options.name ?? basename(options.archive ?? '')} and none is published beside the archive, so it cannot be verified. ` +
          'Pass the checksum you trust with --sha256 <hex>, or --no-verify to install it unverified (its sha256 is printed).',
      );
    }
    if (expected && !/^[0-9a-f]{64}$/.test(expected)) throw setupError(`--sha256 must be 64 hex digits, got '${expected}'`);

    let archive: string;
    let actual: string;
    if (options.archive) {
      archive = resolve(options.archive);
      log(`Hashing ${archive}`);
      actual = await sha256OfFile(archive);
    } else {
      if (!options.url) throw setupError('nothing to install: give a URL or an archive');
      log(`Downloading ${options.url}`);
      actual = await downloadTo(options.url, partial, { timeoutMs: options.timeoutMs, log });
      archive = partial;
    }
    if (expected && actual !== expected) {
      throw setupError(
        `checksum mismatch for ${options.archive ?? options.url}: expected sha256 ${expected}, got ${actual}. ` +
          'The file is corrupt or not the official archive; nothing was installed.',
      );
    }
    if (!expected) {
      verifiedBy = 'not verified';
      log(`Not verified (--no-verify); its sha256 is ${actual}`);
    }

    log('Unpacking');
    mkdirSync(staging);
    await extractZip(archive, staging);
    // Official archives hold one top-level libtorch/ directory.
    const top = readdirSync(staging);
    const root = top.length === 1 && statSync(join(staging, top[0]!)).isDirectory() ? join(staging, top[0]!) : staging;
    let unpacked: LibTorch;
    try {
      unpacked = inspectLibTorchDir(root, 'cache');
    } catch (e) {
      throw setupError(`${options.archive ?? options.url} is not a LibTorch archive: ${(e as Error).message}`);
    }
    const dest = join(cacheDir, options.name ?? cacheName(unpacked));
    writeFileSync(
      join(root, 'robust-synth-install.json'),
      JSON.stringify({ source: options.archive ? `file ${archive}` : options.url, sha256: actual, verifiedBy, installedAt: new Date().toISOString() }, null, 2),
    );
    try {
      renameSync(root, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Another setup finished first: keep its copy.
      if (!((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(dest))) throw e;
    }
    return { dir: dest, sha256: actual, verifiedBy, libtorch: inspectLibTorchDir(dest, 'cache'), alreadyInstalled: false };
  } finally {
    rmSync(partial, { force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// A dependency-free zip reader (stored and deflated entries, zip64), streaming each entry to disk.

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  mode: number;
  crc: number;
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

function zipEntries(fd: number, size: number): ZipEntry[] {
  const tailLen = Math.min(size, 65_557);
  const tail = readAt(fd, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw setupError('not a zip archive (no end of central directory)');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || tail.readUInt32LE(loc) !== 0x07064b50) throw setupError('zip64 archive without a zip64 locator');
    const z64 = readAt(fd, Number(tail.readBigUInt64LE(loc + 8)), 56);
    if (z64.readUInt32LE(0) !== 0x06064b50) throw setupError('bad zip64 end of central directory');
    count = Number(z64.readBigUInt64LE(32));
    cdSize = Number(z64.readBigUInt64LE(40));
    cdOffset = Number(z64.readBigUInt64LE(48));
  }
  const cd = readAt(fd, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (cd.readUInt32LE(p) !== 0x02014b50) throw setupError('corrupt zip central directory');
    const madeBy = cd.readUInt16LE(p + 4) >> 8;
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const external = cd.readUInt32LE(p + 38);
    let localOffset = cd.readUInt32LE(p + 42);
    const name = cd.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) (size = Number(cd.readBigUInt64LE(q))), (q += 8);
        if (compressedSize === 0xffffffff) (compressedSize = Number(cd.readBigUInt64LE(q))), (q += 8);
        if (localOffset === 0xffffffff) localOffset = Number(cd.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    const mode = madeBy === 3 ? external >>> 16 : 0;
    entries.push({ name, method, flags, compressedSize, size, localOffset, mode, crc });
    p = extraEnd + commentLen;
  }
  return entries;
}

/** Refuses names that would land outside the target directory. */
function safeJoin(root: string, name: string): string {
  const clean = normalize(name);
  if (isAbsolute(clean) || clean === '..' || clean.startsWith(`..${sep}`) || name.includes('\0')) {
    throw setupError(`zip entry '${name}' points outside the target directory`);
  }
  return join(root, clean);
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Unpacks a zip into `dest` (which must exist). */
export async function extractZip(zipPath: string, dest: string): Promise<void> {
  const fd = openSync(zipPath, 'r');
  try {
    const size = statSync(zipPath).size;
    const entries = zipEntries(fd, size);
    for (const entry of entries) {
      const target = safeJoin(dest, entry.name);
      if (entry.name.endsWith('/')) {
        mkdirSync(target, { recursive: true });
        continue;
      }
      if (entry.flags & 1) throw setupError(`zip entry ${entry.name} is encrypted`);
      if (entry.method !== 0 && entry.method !== 8) throw setupError(`zip entry ${entry.name} uses unsupported compression method ${entry.method}`);
      mkdirSync(dirname(target), { recursive: true });
      const local = readAt(fd, entry.localOffset, 30);
      if (local.readUInt32LE(0) !== 0x04034b50) throw setupError(`corrupt zip: bad local header for ${entry.name}`);
      const dataStart = entry.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if ((entry.mode & S_IFMT) === S_IFLNK) {
        const raw = readAt(fd, dataStart, entry.compressedSize);
        const linkTarget = (entry.method === 8 ? zlib.inflateRawSync(raw) : raw).toString('utf8');
        // A link must not lead out of the tree either (libtorch's own links are sibling sonames).
        const lands = resolve(dirname(target), linkTarget);
        if (isAbsolute(linkTarget) || !lands.startsWith(resolve(dest) + sep)) {
          throw setupError(`zip entry ${entry.name} is a link to ${linkTarget}, outside the target directory`);
        }
        symlinkSync(linkTarget, target);
        continue;
      }
      const fileMode = entry.mode & 0o777 ? entry.mode & 0o777 : 0o644;
      const out = createWriteStream(target, { mode: fileMode });
      if (entry.compressedSize === 0) {
        await new Promise<void>((ok, fail) => out.end((err?: Error | null) => (err ? fail(err) : ok())));
      } else {
        const input = createReadStream(zipPath, { start: dataStart, end: dataStart + entry.compressedSize - 1 });
        const crc = typeof zlib.crc32 === 'function' ? crcMeter() : undefined;
        const stages: NodeJS.ReadWriteStream[] = [];
        if (entry.method === 8) stages.push(zlib.createInflateRaw());
        if (crc) stages.push(crc.stream);
        await pipeline(input, ...(stages as [NodeJS.ReadWriteStream]), out);
        if (crc && crc.value() !== entry.crc) throw setupError(`zip entry ${entry.name} fails its CRC check`);
      }
      const written: Stats = statSync(target);
      if (written.size !== entry.size) throw setupError(`zip entry ${entry.name} unpacked to ${written.size} bytes, expected ${entry.size}`);
    }
  } finally {
    closeSync(fd);
  }
}

function crcMeter(): { stream: Transform; value(): number } {
  let crc = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      crc = zlib.crc32(chunk, crc);
      cb(null, chunk);
    },
  });
  return { stream, value: () => crc >>> 0 };
}

// ---------------------------------------------------------------------------------------------
// `robust-synth setup`

const SETUP_HELP = `Usage: robust-synth setup [options]

Finds the LibTorch robust-synth will use and, when none fits, downloads the official LibTorch
${LIBTORCH_VERSION} (CPU, or the CUDA build your NVIDIA driver supports) into the cache.

  --check            print what would be used and why; change nothing
  --variant <v>      cpu | cuda | ${BUILDS.filter((b) => b !== 'cpu').join(' | ')}  (default: CUDA when a driver supports it, else cpu)
  --force            download even when a usable LibTorch is already found
  --archive <zip>    install from a LibTorch zip copied onto this machine (offline)
  --mirror <url>     download from a mirror of ${DEFAULT_MIRROR}
  --sha256 <hex>     the archive's expected sha256 (needed where none is pinned)
  --no-verify        install without a checksum (prints the sha256 it got)
  -h, --help         this text

Environment: LIBTORCH (use this LibTorch), ROBUST_SYNTH_CACHE (cache directory),
ROBUST_SYNTH_PYTHON (the Python whose torch to use), ROBUST_SYNTH_LIBTORCH_MIRROR (as --mirror).`;

interface BindingReport {
  ok: boolean;
  text: string;
}

/** What the loader would do with this LibTorch; binding/ is imported lazily (it imports this file). */
async function bindingReport(libtorch: LibTorch | undefined): Promise<BindingReport> {
  if (!libtorch) return { ok: false, text: '' };
  try {
    const binding = await import('../binding/index.js');
    return binding.explainBinary(libtorch);
  } catch (e) {
    return { ok: false, text: `Binary: could not inspect the package's binaries (${(e as Error).message})` };
  }
}

/**
 * `robust-synth setup [--check] [--variant cpu|cuda] ...`; resolves with the exit code.
 *
 * @example
 * process.exitCode = await runSetupCommand(process.argv.slice(2));
 */
export async function runSetupCommand(argv: string[], io: { out?: (s: string) => void; err?: (s: string) => void; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const out = io.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const err = io.err ?? ((s: string) => process.stderr.write(`${s}\n`));
  const env = io.env ?? process.env;
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        check: { type: 'boolean' },
        variant: { type: 'string' },
        force: { type: 'boolean' },
        archive: { type: 'string' },
        mirror: { type: 'string' },
        sha256: { type: 'string' },
        'no-verify': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    err(`robust-synth setup: ${(e as Error).message}\n\n${SETUP_HELP}`);
    return 2;
  }
  if (args.help) {
    out(SETUP_HELP);
    return 0;
  }

  const res = findLibTorch({ purpose: 'runtime', env, ...(args.check ? { pythons: defaultPythons(env) } : {}) });
  const report = await bindingReport(res.chosen);
  if (args.check) {
    out(formatResolution(res));
    if (res.chosen) {
      out('');
      out(`Using: ${describeLibTorch(res.chosen)} (from ${SOURCE_TITLE[res.chosen.source]})`);
      if (res.chosen.libDir !== join(res.chosen.root, 'lib')) out(`       libraries in ${res.chosen.libDir}`);
      out(report.text);
      if (res.chosen.versionFrom !== 'build-version')
        out('Note: versions are compared as major.minor (Debian\'s 1.13.1 packages report 1.13.0, Python builds add suffixes).');
    } else {
      out('');
      out(res.error ? `Error: ${res.error}` : fixesText(env));
    }
    const driver = detectNvidiaDriver();
    const pick = chooseBuild(args.variant, driver);
    out(`\nsetup would download: ${pick.build ? `${libtorchUrl(pick.build, LIBTORCH_VERSION, args.mirror ?? env.ROBUST_SYNTH_LIBTORCH_MIRROR)} (${pick.why})` : `nothing (${pick.why})`}` +
      (res.chosen && report.ok && !args.force && !args.variant ? ', but it does not need to: the LibTorch above works' : ''));
    return res.chosen && report.ok ? 0 : 1;
  }

  if (res.error && !args.archive && !args.variant && !args.force) {
    err(noLibTorchMessage(res, env));
    return 1;
  }
  if (res.chosen && report.ok && !args.force && !args.variant && !args.archive) {
    out(`robust-synth is ready: ${describeLibTorch(res.chosen)} (from ${SOURCE_TITLE[res.chosen.source]}).`);
    out(report.text);
    out('Nothing to download (use --force or --variant to download the official LibTorch anyway).');
    return 0;
  }

  const driver = detectNvidiaDriver();
  const pick = chooseBuild(args.variant, driver);
  if (!pick.build) {
    err(`robust-synth setup: ${pick.why}`);
    return 2;
  }
  const mirror = args.mirror ?? env.ROBUST_SYNTH_LIBTORCH_MIRROR ?? DEFAULT_MIRROR;
  const url = libtorchUrl(pick.build, LIBTORCH_VERSION, mirror);
  // A mirror serves the same official files, so the pinned checksums hold for it too.
  const pinned = args.archive ? pinnedShaForArchive(args.archive) : (PINNED_SHA256[pick.build] ?? undefined);
  const sha256 = args['no-verify'] ? undefined : (args.sha256 ?? pinned);
  if (!args.archive) out(`Downloading LibTorch ${LIBTORCH_VERSION} (${pick.build}: ${pick.why}).`);
  try {
    const r = await installLibTorch({
      url,
      archive: args.archive,
      sha256,
      verify: !args['no-verify'],
      name: args.archive ? undefined : `${LIBTORCH_VERSION}-${pick.build}`,
      cacheDir: libtorchCacheDir(env),
      log: out,
    });
    out(r.alreadyInstalled ? `Already installed: ${r.dir}` : `Installed ${describeLibTorch(r.libtorch)} (sha256 ${r.sha256}, ${r.verifiedBy}).`);
    const after = await bindingReport(r.libtorch);
    out(after.text);
    if (!after.ok) out('To use it now, compile the addon for it (needs cmake and a C++17 compiler): npx robust-synth build');
    return 0;
  } catch (e) {
    err(`robust-synth setup: ${(e as Error).message}`);
    if (res.chosen) {
      err(`\nThis machine already has ${describeLibTorch(res.chosen)}; robust-synth uses it.`);
      err(report.text);
    } else {
      err(`\n${formatResolution(res)}\n\n${fixesText(env)}`);
    }
    return 1;
  }
}

function isMain(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return pathToFileURL(process.argv[1]).href === import.meta.url;
  }
}

if (isMain()) {
  runSetupCommand(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}

