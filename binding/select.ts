/**
 * Matching binaries to a LibTorch: which one may run on it, or, when none may, an explanation
 * that names each binary and the commands that fix it. Shared by the loader and `setup --check`,
 * so the check reports exactly what a load would do.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describeLibTorch, majorMinor, type LibTorch } from '../lib/libtorch/discover.js';
import { glibcNeeded, readElfDynamic } from './elf.js';
import { describeBinary, listBinaries, type BinaryCandidate } from './records.js';
import { packageRoot } from './root.js';

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

/** The running glibc's version ('2.36'); undefined on musl or where Node does not say. */
export function runtimeGlibc(): string | undefined {
  // For tests: pretend an older system.
  if (process.env.ROBUST_SYNTH_TEST_GLIBC) return process.env.ROBUST_SYNTH_TEST_GLIBC;
  if (glibc === undefined) {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    glibc = header?.glibcVersionRuntime ?? null;
  }
  return glibc ?? undefined;
}
let glibc: string | null | undefined;

function compareDotted(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
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
  const needs = glibcNeeded(elf);
  const have = runtimeGlibc();
  if (needs && have && compareDotted(needs, have) > 0) {
    return { ok: false, why: `needs glibc ${needs} or newer; this system has glibc ${have} (a binary built on a newer distribution: use one built here, npx robust-synth build)` };
  }
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

/** A binary built for the LibTorch's own variant wins; a CPU build on a CUDA LibTorch is the fallback. */
export function pickBinary(libtorch: LibTorch, binaries: BinaryCandidate[]): { binary: BinaryCandidate; check: Extract<BinaryCheck, { ok: true }> } | undefined {
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
    return { ok: true, text: `Binary: ${describeBinary(pick.binary, root)}: matches${cpuOnCuda}${probe}.` };
  }
  return { ok: false, text: refusalText(libtorch, binaries, root) };
}

export function refusalText(libtorch: LibTorch, binaries: BinaryCandidate[], root: string): string {
  const lines = binaries.length
    ? binaries.map((b) => {
        const c = checkBinary(libtorch, b);
        return c.ok ? `  - ${describeBinary(b, root)}` : `  - ${relative(root, b.path) || b.path} (${b.kind}): ${c.why}`;
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
