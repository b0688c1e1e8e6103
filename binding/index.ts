/**
 * The native module: where it is found, and its raw typed surface. Nothing else lives here;
 * lib/ wraps this with validation, errors and the public API.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  info(): { numClasses: number; device: string; hasFeatures: boolean };
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
}

export interface NativeBinding {
  load(path: string, device: string, inputShape: number[]): RawJob<RawModel>;
  setThreads(n: number): void;
  getThreads(): number;
  buildInfo(): BuildInfo;
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

let cached: NativeBinding | undefined;

/** Loads (once) the native addon: a local build first, then the prebuilt binary. */
export function loadBinding(): NativeBinding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
  try {
    cached = nodeGypBuild(root);
  } catch (e) {
    const err = new Error(
      `robust-synth: could not load the native addon (${(e as Error).message.split('\n')[0]}).\n` +
        'Fixes: run `npx robust-synth setup --check` to see which LibTorch is found; ' +
        'install one (Debian: `apt-get install libtorch-dev`; elsewhere `npx robust-synth setup`); ' +
        'or build from source with `npx robust-synth build`.',
    ) as Error & { code: string };
    err.code = 'ERR_BINDING';
    throw err;
  }
  return cached;
}
