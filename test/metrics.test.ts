// Evaluation metrics on cases with known answers.
import { describe, expect, it } from 'vitest';
import { agreement, diffusionFill, diversity, frechetDistance, psnr, softmaxAt, ssim, symmetricEigen } from '../lib/eval/metrics.js';
import { rng } from '../lib/seeds.js';
import type { ImageBatch } from '../lib/index.js';
import { randomBatch } from './helpers.js';

describe('metrics', () => {
  it('PSNR: identical images are infinite; a uniform error of 0.1 gives 20 dB; a region restricts it', () => {
    const a = randomBatch([2, 1, 8, 8], 1);
    expect(psnr(a, a, 1)).toBe(Infinity);
    const b: ImageBatch = { data: a.data.map((v) => v + 0.1), shape: a.shape };
    expect(psnr(a, b, 0)).toBeCloseTo(20, 4);
    const region = new Float32Array(64);
    region[0] = 1;
    const c: ImageBatch = { data: Float32Array.from(a.data), shape: a.shape };
    c.data[5] = c.data[5]! + 0.5; // outside the region
    expect(psnr(a, c, 0, region)).toBe(Infinity);
  });

  it('SSIM: 1 for identical images, lower for noise, near 0 for an unrelated image', () => {
    const a = randomBatch([1, 3, 16, 16], 2);
    expect(ssim(a, a, 0)).toBeCloseTo(1, 10);
    const r = rng(3);
    const noisy: ImageBatch = { data: a.data.map((v) => Math.min(1, Math.max(0, v + 0.2 * r.normal()))), shape: a.shape };
    const s = ssim(a, noisy, 0);
    expect(s).toBeLessThan(0.9);
    expect(s).toBeGreaterThan(ssim(a, randomBatch([1, 3, 16, 16], 99), 0));
  });

  it('Fréchet distance: 0 for a set with itself, |shift|^2 for a shifted copy', () => {
    const r = rng(5);
    const n = 400;
    const d = 6;
    const x = new Float32Array(n * d).map(() => r.normal());
    expect(frechetDistance(x, n, x, n, d)).toBeLessThan(1e-6);
    const shifted = x.map((v, i) => v + (i % d === 2 ? 3 : 0));
    expect(frechetDistance(x, n, shifted, n, d)).toBeCloseTo(9, 4);
    const scaled = x.map((v) => 2 * v); // mean 2m, covariance 4S: |m|^2 + Tr(S + 4S - 2*2S) = |m|^2 + Tr(S)
    let expected = 0;
    for (let k = 0; k < d; k++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += x[i * d + k]! / n;
      expected += m * m;
      for (let i = 0; i < n; i++) expected += (x[i * d + k]! - m) ** 2 / (n - 1);
    }
    expect(frechetDistance(x, n, scaled, n, d)).toBeCloseTo(expected, 4);
  });

  it('eigen-decomposition reconstructs its matrix', () => {
    const m = Float64Array.from([4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2]);
    const { values, vectors } = symmetricEigen(m, 3);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += vectors[i * 3 + k]! * values[k]! * vectors[j * 3 + k]!;
      expect(s).toBeCloseTo(m[i * 3 + j]!, 9);
    }
  });

  it('agreement of a perfect judge is 1, of a judge always wrong is 0', () => {
    expect(agreement([1, 2, 3], [1, 2, 3])).toBe(1);
    expect(agreement([0, 0, 0], [1, 2, 3])).toBe(0);
    expect(agreement([1, 0], [1, 2])).toBe(0.5);
  });

  it('softmax probability and diversity', () => {
    const p = softmaxAt(Float32Array.from([0, 0, Math.log(2)]), 3, [2]);
    expect(p[0]).toBeCloseTo(0.5, 7);
    const same: ImageBatch = { data: new Float32Array(8).fill(0.3), shape: [2, 1, 2, 2] };
    expect(diversity(same)).toBe(0);
    const apart: ImageBatch = { data: Float32Array.from([0, 0, 0, 0, 1, 1, 1, 1]), shape: [2, 1, 2, 2] };
    expect(diversity(apart)).toBeCloseTo(2, 6);
  });

  it('diffusion fill keeps a constant image constant and interpolates a gradient', () => {
    const mask = new Float32Array(25);
    mask[12] = 1;
    const flat: ImageBatch = { data: new Float32Array(25).fill(0.4), shape: [1, 1, 5, 5] };
    expect(diffusionFill(flat, mask).data[12]).toBeCloseTo(0.4, 6);
    const ramp: ImageBatch = { data: Float32Array.from({ length: 25 }, (_, p) => (p % 5) / 4), shape: [1, 1, 5, 5] };
    expect(diffusionFill(ramp, mask).data[12]).toBeCloseTo(0.5, 4);
  });
});

describe('baselines', () => {
  it('bicubic upsampling of a block-constant grey image stays close to it (and is not read with the wrong stride)', async () => {
    const { bicubic } = await import('../lib/tasks/superResolve.js');
    const data = new Float32Array(28 * 28);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) data[y * 28 + x] = x < 14 ? 0.2 : 0.8;
    const up = await bicubic({ data, shape: [1, 1, 28, 28] }, 4);
    expect(up.data[5 * 28 + 2]).toBeCloseTo(0.2, 1);
    expect(up.data[20 * 28 + 25]).toBeCloseTo(0.8, 1);
    expect(psnr(up, { data, shape: [1, 1, 28, 28] }, 0)).toBeGreaterThan(15);
  });
});
