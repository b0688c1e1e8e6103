/**
 * Finding the LibTorch to use. The loader runs this at every load, and the build, the prebuild
 * step and `setup --check` run the same order, so what gets built against is what gets loaded:
 *
 *   1. $LIBTORCH                       an unpacked LibTorch the user points at
 *   2. the download cache              what `robust-synth setup` fetched (~/.cache/robust-synth/libtorch/<version>-<build>)
 *   3. a Python `torch`                the LibTorch inside it (torch.utils.cmake_prefix_path); GPU machines with PyTorch
 *   4. the system                      Debian/Ubuntu `libtorch-dev` in /usr/lib/<triplet>
 *
 * Each step records what it found or why it found nothing, because the one error a user sees
 * when nothing fits has to say where robust-synth looked. Nothing here downloads or writes.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { RobustSynthError } from '../errors.js';
import { LIBTORCH_VERSION, libtorchUrl } from './constants.js';
import { defaultPythons, findPythonTorch } from './python.js';
import { compareVersions, detectNvidiaDriver } from './versions.js';

export { defaultPythons, findPythonTorch } from './python.js';
export { compareVersions, detectNvidiaDriver } from './versions.js';

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
  if (!existsSync(root)) throw new RobustSynthError('ERR_LIBTORCH', `${root} does not exist`);
  const libDir = [join(root, 'lib'), root].find((d) => findLib(d, 'libtorch'));
  if (!libDir) throw new RobustSynthError('ERR_LIBTORCH', `${root} has no lib/libtorch.so`);
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
  if (!version) throw new RobustSynthError('ERR_LIBTORCH', `cannot tell the version of the LibTorch in ${root} (no build-version, version.py, TorchConfigVersion.cmake or torch/version.h)`);
  if (/\+rocm/.test(version)) throw new RobustSynthError('ERR_LIBTORCH', `${root} is a ROCm build (${version}); robust-synth supports CPU and CUDA builds`);

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

/** How `setup` and the resolution report name each step. */
export const SOURCE_TITLE: Record<Source, string> = {
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
