import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Device, ImageBatch, Shape4 } from '../lib/index.js';
import { rng } from '../lib/seeds.js';

/** Debian's python with torch (the pyenv python on PATH has none). */
export const PYTHON = process.env.RS_PYTHON ?? '/usr/bin/python3';

/**
 * The device the engine, reference and task tests run on: 'cpu' here, 'cuda' when
 * scripts/gpu-check.sh runs them on a GPU machine (RS_TEST_DEVICE).
 */
export const TEST_DEVICE = (process.env.RS_TEST_DEVICE ?? 'cpu') as Device;
/** How close a result must be to the CPU/Python reference: exact math on the CPU; on CUDA, cuDNN's algorithms (and TF32) differ in the last bits, which 20 steps amplify. */
export const REFERENCE_TOLERANCE = TEST_DEVICE === 'cpu' ? 1e-5 : 1e-3;

export function python(args: string[], timeout = 600_000): string {
  return execFileSync(PYTHON, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function tempDir(prefix = 'rs-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Deterministic pseudo-random batch in [0, 1] (the library's seeded generator). */
export function randomBatch(shape: Shape4, seed = 1): ImageBatch {
  const { uniform } = rng(seed);
  const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
  for (let i = 0; i < data.length; i++) data[i] = uniform();
  return { data, shape };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Per-sample L2 distances between two batches of the same shape. */
export function l2PerSample(a: ImageBatch, b: ImageBatch): number[] {
  const n = a.shape[0];
  const s = a.data.length / n;
  return Array.from({ length: n }, (_, i) => {
    let acc = 0;
    for (let j = i * s; j < (i + 1) * s; j++) acc += (a.data[j]! - b.data[j]!) ** 2;
    return Math.sqrt(acc);
  });
}
