// The native loop against the same loop written in Python from docs/algorithm.md.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, type Constraint, type ImageBatch, type Shape4 } from '../lib/index.js';
import { maxAbsDiff, python, REFERENCE_TOLERANCE, tempDir, TEST_DEVICE } from './helpers.js';

interface Case {
  constraint: Constraint;
  eps: number;
  step: number;
  iterations: number;
  useBest: boolean;
  randomStart: boolean;
  seed: number;
  penaltyWeight?: number;
  expected: number[];
}

let dir: string;
let clf: Classifier;
let fixture: { x0: number[]; shape: Shape4; targets: number[]; mask: number[]; cases: Case[] };
let x0: ImageBatch;

beforeAll(async () => {
  dir = tempDir();
  python([join(import.meta.dirname, 'fixtures/reference_pgd.py'), dir]);
  fixture = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));
  x0 = { data: Float32Array.from(fixture.x0), shape: fixture.shape };
  clf = await Classifier.load(join(dir, 'model.pt'), { device: TEST_DEVICE, inputShape: [3, 16, 16] });
});

afterAll(async () => {
  await clf?.dispose();
});

describe('native PGD matches the Python reference', () => {
  it('forward: logits and features equal torch', async () => {
    const fwd = JSON.parse(readFileSync(join(dir, 'forward.json'), 'utf8'));
    expect(maxAbsDiff((await clf.logits(x0)).data, fwd.logits)).toBeLessThanOrEqual(REFERENCE_TOLERANCE);
    expect(maxAbsDiff((await clf.features(x0)).data, fwd.features)).toBeLessThanOrEqual(REFERENCE_TOLERANCE);
  });

  it('covers both constraints, useBest on and off, random start and the penalty', () => {
    const kinds = new Set(fixture.cases.map((c) => `${c.constraint}/${c.useBest}/${c.randomStart}`));
    expect(kinds.size).toBe(8);
    expect(fixture.cases.some((c) => c.penaltyWeight)).toBe(true);
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8])('case %i', async (i) => {
    const c = fixture.cases[i]!;
    const mask: ImageBatch = { data: Float32Array.from(fixture.mask), shape: fixture.shape };
    const r = await clf.pgd({
      x0,
      targets: fixture.targets,
      constraint: c.constraint,
      eps: c.eps,
      step: c.step,
      iterations: c.iterations,
      useBest: c.useBest,
      randomStart: c.randomStart,
      seed: c.seed,
      penalty: c.penaltyWeight ? { weight: c.penaltyWeight, mask } : undefined,
    });
    expect(r.images.shape).toEqual(fixture.shape);
    expect(r.stats.steps).toBe(c.iterations);
    const diff = maxAbsDiff(r.images.data, c.expected);
    expect(diff).toBeLessThanOrEqual(REFERENCE_TOLERANCE);
    // The run must have moved the images, or the comparison above proves nothing.
    expect(maxAbsDiff(r.images.data, x0.data)).toBeGreaterThan(c.constraint === 'inf' ? 0.05 : 0.1);
  });

  it('a session stepped from JS gives the same result as the native loop', async () => {
    const opts = { x0, targets: fixture.targets, eps: 2, step: 0.3, iterations: 10, randomStart: true, seed: 3 };
    const whole = await clf.pgd(opts);
    const s = await clf.session(opts);
    const losses: number[] = [];
    for (let i = 0; i < 10; i++) losses.push(...(await s.step()));
    const stepped = await s.finish();
    expect(losses).toHaveLength(30);
    expect(maxAbsDiff(whole.images.data, stepped.images.data)).toBe(0);
    expect(Array.from(whole.predictions)).toEqual(Array.from(stepped.predictions));
    await expect(s.step()).rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
  });
});
