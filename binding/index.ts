/**
 * The native module: where it is found, and its raw typed surface (re-exported from the files
 * beside this one, so importers need only this module). lib/ wraps it with validation, errors
 * and the public API.
 *
 * Loading, in order (sharp's loader and node-llama-cpp's GPU probing are the models):
 *  1. resolve the LibTorch to use (lib/libtorch/discover.ts: $LIBTORCH, the download cache,
 *     a Python torch, the system one);
 *  2. pick a binary built for it (records.ts, select.ts): a local `robust-synth build` in
 *     build/Release, else a prebuilt in prebuilds/<flavor>/ (one folder per LibTorch version and
 *     variant, handed to node-gyp-build, which would otherwise ignore a `cuda` tag). Each binary
 *     has a JSON record of the LibTorch it was built against beside it; a version mismatch is
 *     refused before anything is loaded, because a wrong LibTorch crashes or fails to link;
 *  3. load LibTorch's libraries from the resolved directory by absolute path, so the binary's
 *     NEEDED entries bind to them by soname (no LD_LIBRARY_PATH), probing a CUDA build in a child
 *     process first so a broken CUDA install kills the child, not the app (probe.ts);
 *  4. load the binary.
 */
import { createRequire } from 'node:module';
import { relative } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { RobustSynthError } from '../lib/errors.js';
import {
  defaultPythons, describeLibTorch, findLibTorch, noLibTorchMessage, type LibTorch,
} from '../lib/libtorch/discover.js';
import { preferAvx512Kernels } from './cpu.js';
import { describeKernelSettings, kernelSettings, type KernelSettings } from './kernel-check.js';
import { preloadLibraries, probeBinary } from './probe.js';
import { listBinaries, type BinaryCandidate, type BinaryRecord } from './records.js';
import { packageRoot } from './root.js';
import { pickBinary, refusalText } from './select.js';
import type { NativeBinding } from './types.js';

export type {
  BuildInfo, JitExecutor, NativeBinding, RawJob, RawLoadConfig, RawModel, RawPgdOptions, RawPgdResult, RawProgress,
  RawSession, RawTensor,
} from './types.js';
export { readElfDynamic, type ElfDynamic } from './elf.js';
export { probeBinary, type ProbeResult } from './probe.js';
export { listBinaries, type BinaryCandidate, type BinaryRecord } from './records.js';
export { packageRoot } from './root.js';
export { checkBinary, explainBinary, runtimeGlibc, type BinaryCheck } from './select.js';
export { describeKernelSettings, kernelCheckFile, type KernelSettings } from './kernel-check.js';

function describeKernels(k: KernelSettings): string {
  return `${describeKernelSettings(k)}; ${k.attempts.join(' | ')}`;
}

function warn(message: string): void {
  if (!process.env.ROBUST_SYNTH_QUIET) console.warn(`robust-synth: ${message}`);
}

function libtorchError(message: string): RobustSynthError {
  return new RobustSynthError('ERR_LIBTORCH', message);
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
  /** What the kernel self-check chose (kernel-check.ts), applied before and after the load. */
  kernels?: KernelSettings;
}

let cached: NativeBinding | undefined;
let loaded: LoadedBinding | undefined;

/** What the loaded addon is and which LibTorch it runs on; undefined before the first load. */
export function bindingInfo(): LoadedBinding | undefined {
  return loaded;
}

/**
 * The kernel self-check's settings for the binary that would run on `libtorch` (cached, or run
 * now in child processes, without storing it); undefined when no binary matches. For `setup --check`.
 */
export function kernelCheckFor(libtorch: LibTorch, env: NodeJS.ProcessEnv = process.env): KernelSettings | undefined {
  const pick = pickBinary(libtorch, listBinaries(packageRoot()));
  if (!pick) return undefined;
  return kernelSettings({ libtorch, binary: pick.binary.path, preload: pick.check.preload, env, store: false });
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
  // Before LibTorch loads here: oneDNN reads its ISA cap once, at its first use.
  const kernels = kernelSettings({ libtorch: p.libtorch, binary: p.path, preload: p.preloaded });
  // Said once, when the check runs; `setup --check` and clf.preparation.kernels say it any time.
  if (!kernels.cached && (kernels.status === 'adjusted' || kernels.status === 'failed')) warn(`kernel self-check: ${describeKernels(kernels)}`);
  if (kernels.isaCap && !process.env.ONEDNN_MAX_CPU_ISA) process.env.ONEDNN_MAX_CPU_ISA = kernels.isaCap;
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
  if (!kernels.fuser) cached.setTensorExprFuser?.(false);
  if (!kernels.mkldnn) cached.setMkldnn(false);
  loaded = { ...p, kernels };
  // process.exit() and uncaught exceptions end the process with exit(), whose static destructors
  // would run under a busy compute thread (a segfault). 'exit' listeners run before it. A
  // worker's exit tears its environment down instead, which the addon handles itself.
  if (isMainThread) process.on('exit', () => cached?.stopJobsForExit());
  return cached;
}
