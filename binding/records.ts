/**
 * The binaries this package has, and what each was built against. The record beside each binary
 * is what lets the loader refuse a mismatched LibTorch before loading anything, since a mismatch
 * crashes or fails to link rather than erroring cleanly.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { readElfDynamic } from './elf.js';
import { packageRoot } from './root.js';

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

/** One line per binary, for setup --check and refusals. */
export function describeBinary(b: BinaryCandidate, root: string): string {
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
