import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fitSeeds, loadSeeds, sampleSeeds, saveSeeds, type LabeledImages } from '../lib/index.js';
import { blockAverage, cholesky, MAX_SEED_INDEX, rng, seedCounters, upsampleNearest } from '../lib/seeds.js';
import { jobSeeds } from '../lib/queue/job-seeds.js';
import type { GenerateJobData } from '../lib/queue/jobs.js';
import { tempDir } from './helpers.js';

/** Two classes of 1x4x4 images drawn from known distributions at 2x2 resolution (block-constant). */
function synthetic(n: number): LabeledImages {
  const r = rng(11);
  const data = new Float32Array(2 * n * 16);
  const labels = new Int32Array(2 * n);
  for (let i = 0; i < 2 * n; i++) {
    const k = i % 2;
    labels[i] = k;
    const z0 = r.normal();
    const z1 = r.normal();
    // low-res pixels: a = 0.3 + 0.1 z0, b = 0.5 + 0.1 z0 (correlated), c = 0.6 + 0.05 z1, d = 0.2 + 0.1k
    const low = Float32Array.from([0.3 + 0.1 * z0, 0.5 + 0.1 * z0, 0.6 + 0.05 * z1, 0.2 + 0.1 * k]);
    upsampleNearest(low, [1, 4, 4], 2, data.subarray(i * 16, (i + 1) * 16));
  }
  return { images: { data, shape: [2 * n, 1, 4, 4] }, labels, classes: ['a', 'b'], skipped: [] };
}

function covariance(samples: Float32Array[], d: number): number[][] {
  const n = samples.length;
  const mu = Array.from({ length: d }, (_, k) => samples.reduce((a, s) => a + s[k]!, 0) / n);
  return Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => samples.reduce((a, s) => a + (s[i]! - mu[i]!) * (s[j]! - mu[j]!), 0) / n));
}

describe('seed distributions', () => {
  it('block average and nearest upsampling invert each other on block-constant images', () => {
    const low = Float32Array.from([0.1, 0.2, 0.3, 0.4]);
    const up = upsampleNearest(low, [1, 4, 4], 2);
    expect(Array.from(up.subarray(0, 4))).toEqual([0.1, 0.1, 0.2, 0.2].map(Math.fround));
    expect(Array.from(blockAverage(up, [1, 4, 4], 2))).toEqual(Array.from(low));
  });

  it('cholesky reproduces its matrix', () => {
    const a = Float64Array.from([4, 2, 0.4, 2, 5, 1, 0.4, 1, 3]);
    const l = cholesky(Float64Array.from(a), 3);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += l[i * 3 + k]! * l[j * 3 + k]!;
      expect(s).toBeCloseTo(a[i * 3 + j]!, 10);
    }
  });

  it('fits per-class mean and variance, and mvn samples have the fitted covariance (both samplers)', () => {
    const ds = synthetic(3000);
    for (const maxCholeskyDim of [2048, 1]) {
      const m = fitSeeds(ds, { factor: 2, maxCholeskyDim, maxRows: 3000 });
      expect(m.classes.map((k) => k.factorKind)).toEqual(maxCholeskyDim === 1 ? ['data', 'data'] : ['cholesky', 'cholesky']);
      const c1 = m.classes[1]!;
      expect(c1.lowMean[3]).toBeCloseTo(0.3, 5);
      expect(c1.lowMean[0]).toBeCloseTo(0.3, 1);
      const b = sampleSeeds(m, 'mvn', 1, 4000, 3);
      const lows = Array.from({ length: 4000 }, (_, i) => blockAverage(b.data.subarray(i * 16, (i + 1) * 16), [1, 4, 4], 2));
      const cov = covariance(lows, 4);
      expect(cov[0]![0]).toBeCloseTo(0.01 + 1e-4, 3);
      expect(cov[0]![1]).toBeCloseTo(0.01, 3); // the correlation the seeds must keep
      expect(cov[2]![2]).toBeCloseTo(0.0025 + 1e-4, 3);
      expect(cov[3]![3]).toBeCloseTo(1e-4, 4); // constant pixel: only the jitter
    }
  });

  it('univariate normal seeds follow the per-pixel fit; uniform covers [0, 1]', () => {
    const m = fitSeeds(synthetic(2000), { factor: 2 });
    const b = sampleSeeds(m, 'normal', 0, 3000, 1);
    const px = Array.from({ length: 3000 }, (_, i) => b.data[i * 16 + 15]!); // a 'd' pixel of class 0: constant 0.2
    expect(px.every((v) => Math.abs(v - 0.2) < 1e-3)).toBe(true);
    const u = sampleSeeds(undefined, 'uniform', 0, 10, 1, [1, 4, 4]);
    const mean = u.data.reduce((a, v) => a + v, 0) / u.data.length;
    expect(mean).toBeGreaterThan(0.4);
    expect(mean).toBeLessThan(0.6);
  });

  it('is deterministic for a random seed and differs across seeds', () => {
    const m = fitSeeds(synthetic(200), { factor: 2 });
    expect(sampleSeeds(m, 'mvn', 0, 2, 5).data).toEqual(sampleSeeds(m, 'mvn', 0, 2, 5).data);
    expect(sampleSeeds(m, 'mvn', 0, 2, 5).data).not.toEqual(sampleSeeds(m, 'mvn', 0, 2, 6).data);
  });

  it('seed i depends only on (class, random seed, i): a job of seeds 99,992..99,999 costs what the first job does and equals the single-machine draw there', () => {
    const job = (start: number, end: number, seed: GenerateJobData['seed']): GenerateJobData => ({
      v: 2, task: 'generate', model: 'm', modelSha256: 'a'.repeat(64), shape: [1, 4, 4], submission: 's',
      settings: { eps: 1, step: 0.1, iterations: 1, constraint: '2', useBest: true, bf16: false, batch: 8 },
      files: Array.from({ length: end - start }, (_, j) => `x-${start + j}.png`), source: 'seed:' + seed, class: 1, seed, randomSeed: 7, start, end,
    });
    const m = fitSeeds(synthetic(200), { factor: 2 });
    for (const kind of ['uniform', 'normal', 'mvn'] as const) {
      const cost = (start: number, end: number) => {
        const before = { ...seedCounters };
        const x = jobSeeds(job(start, end, kind), 1, m);
        return { x, rows: seedCounters.rows - before.rows, draws: seedCounters.draws - before.draws, bytes: x.data.byteLength };
      };
      const first = cost(0, 8);
      const last = cost(99_992, 100_000);
      expect(last.rows, kind).toBe(8);
      expect({ rows: last.rows, draws: last.draws, bytes: last.bytes }, kind).toEqual({ rows: first.rows, draws: first.draws, bytes: first.bytes });
      expect(last.bytes).toBe(8 * 16 * 4);
      expect(last.x.data, kind).not.toEqual(first.x.data);
      // The single-machine generate draws seeds 0..count-1 of a class with the same call.
      const all = sampleSeeds(m, kind, 1, 100_000, 7, [1, 4, 4]);
      expect(last.x.data, kind).toEqual(all.data.subarray(99_992 * 16, 100_000 * 16));
      expect(first.x.data, kind).toEqual(all.data.subarray(0, 8 * 16));
    }
    // A class or random seed changes every row; the index range is bounded.
    expect(sampleSeeds(m, 'mvn', 0, 4, 7, undefined, 10).data).not.toEqual(sampleSeeds(m, 'mvn', 1, 4, 7, undefined, 10).data);
    expect(() => sampleSeeds(m, 'mvn', 0, 2, 7, undefined, MAX_SEED_INDEX - 1)).toThrow(/seed indices/);
  });

  it('saves and loads a seed file exactly; rejects a corrupt one', async () => {
    const m = fitSeeds(synthetic(100), { factor: 2, source: 'synthetic' });
    const path = join(tempDir(), 'x.seeds');
    saveSeeds(path, m);
    const back = loadSeeds(path);
    expect(back.shape).toEqual(m.shape);
    expect(back.classes[1]!.factor).toEqual(m.classes[1]!.factor);
    expect(back.classes[0]!.variance).toEqual(m.classes[0]!.variance);
    const { writeFileSync, readFileSync } = await import('node:fs');
    writeFileSync(path, readFileSync(path).subarray(0, 100));
    expect(() => loadSeeds(path)).toThrow(/truncated|not a robust-synth seed file|JSON/);
  });

  it('needs a model for normal/mvn and names the fix', () => {
    expect(() => sampleSeeds(undefined, 'mvn', 0, 1, 1, [1, 4, 4])).toThrow(/fit-seeds/);
  });

  it('the shipped Fashion-MNIST seed file loads and has all ten classes', () => {
    const m = loadSeeds(join(import.meta.dirname, '../models/fashion-mnist.seeds'));
    expect(m.shape).toEqual([1, 28, 28]);
    expect(m.classes.map((k) => k.label)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
