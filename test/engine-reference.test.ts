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
  featureIndex?: number;
  featureWeight?: number;
  /** Inversion toward the fixture's target, given as its representation or as the images. */
  inversion?: 'representation' | 'images';
  /** 'fakerelu': the model whose features() passes the gradient through its last ReLU. */
  model?: 'fakerelu';
  expected: number[];
}

let dir: string;
let clf: Classifier;
let fake: Classifier;
let fixture: {
  x0: number[]; shape: Shape4; targets: number[]; mask: number[]; xTarget: number[]; targetRep: number[]; repSize: number; cases: Case[];
};
let x0: ImageBatch;

beforeAll(async () => {
  dir = tempDir();
  python([join(import.meta.dirname, 'fixtures/reference_pgd.py'), dir]);
  fixture = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));
  x0 = { data: Float32Array.from(fixture.x0), shape: fixture.shape };
  clf = await Classifier.load(join(dir, 'model.pt'), { device: TEST_DEVICE, inputShape: [3, 16, 16] });
  fake = await Classifier.load(join(dir, 'model-fakerelu.pt'), { device: TEST_DEVICE, inputShape: [3, 16, 16] });
});

afterAll(async () => {
  await clf?.dispose();
  await fake?.dispose();
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

  it('covers the feature objectives: a unit maximized, with the penalty, through a fake ReLU, and inversion', () => {
    const kinds = fixture.cases.map((c) => `${c.featureIndex !== undefined ? 'feature' : c.inversion ?? 'ce'}/${c.penaltyWeight ? 'penalty' : ''}/${c.model ?? ''}`);
    expect(kinds).toEqual(expect.arrayContaining(['feature//', 'feature/penalty/', 'feature//fakerelu', 'representation//', 'images//']));
    expect(fixture.cases).toHaveLength(14);
  });

  it.each([...Array(14).keys()])('case %i', async (i) => {
    const c = fixture.cases[i]!;
    const mask: ImageBatch = { data: Float32Array.from(fixture.mask), shape: fixture.shape };
    const target = c.inversion === 'images'
      ? { data: Float32Array.from(fixture.xTarget), shape: fixture.shape }
      : { data: Float32Array.from(fixture.targetRep), shape: [fixture.shape[0], fixture.repSize] as [number, number] };
    const r = await (c.model === 'fakerelu' ? fake : clf).pgd({
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
      feature: c.featureIndex === undefined ? undefined : { index: c.featureIndex, weight: c.featureWeight },
      inversion: c.inversion ? { target } : undefined,
    });
    expect(r.images.shape).toEqual(fixture.shape);
    expect(r.stats.steps).toBe(c.iterations);
    const diff = maxAbsDiff(r.images.data, c.expected);
    expect(diff).toBeLessThanOrEqual(REFERENCE_TOLERANCE);
    // The run must have moved the images, or the comparison above proves nothing.
    expect(maxAbsDiff(r.images.data, x0.data)).toBeGreaterThan(c.constraint === 'inf' ? 0.05 : 0.1);
    if (process.env.RS_REFERENCE_REPORT) console.log(`reference case ${i}: max |native - python| = ${diff.toExponential(2)}`);
  });

  it('the fake ReLU is what moves a unit that is zero everywhere: through a true ReLU it gets no gradient', async () => {
    const c = fixture.cases.find((k) => k.model === 'fakerelu')!;
    const dead = await Classifier.load(join(dir, 'model-deadunit.pt'), { device: TEST_DEVICE, inputShape: [3, 16, 16] });
    try {
      const opts = { x0, targets: fixture.targets, eps: c.eps, step: c.step, iterations: c.iterations, useBest: false, feature: { index: 7 } };
      const at7 = async (m: Classifier, x: ImageBatch) => {
        const f = (await m.features(x)).data;
        return Array.from({ length: fixture.shape[0] }, (_, i) => f[i * fixture.repSize + 7]!);
      };
      expect(await at7(dead, x0)).toEqual([0, 0, 0]);
      expect(await at7(fake, x0)).toEqual([0, 0, 0]);
      const stuck = await dead.pgd(opts);
      expect(maxAbsDiff(stuck.images.data, x0.data)).toBe(0);
      // The fake ReLU hands the unit's gradient on: the images move (toward raising the
      // pre-activation, which a bias of -50 keeps below zero for these 25 steps).
      const moved = await fake.pgd(opts);
      expect(maxAbsDiff(moved.images.data, x0.data)).toBeGreaterThan(0.1);
    } finally {
      await dead.dispose();
    }
  });

  it('inversion toward a representation lowers the distance, and refuses a target of the wrong size', async () => {
    const targetRep = { data: Float32Array.from(fixture.targetRep), shape: [fixture.shape[0], fixture.repSize] as [number, number] };
    const r = await clf.pgd({ x0, targets: fixture.targets, eps: 1000, step: 0.3, iterations: 10, useBest: true, inversion: { target: targetRep } });
    const dist = (x: ImageBatch) => clf.features(x).then((f) => Array.from({ length: fixture.shape[0] }, (_, i) => {
      let s = 0;
      for (let j = 0; j < fixture.repSize; j++) s += (f.data[i * fixture.repSize + j]! - targetRep.data[i * fixture.repSize + j]!) ** 2;
      return Math.sqrt(s);
    }));
    const before = await dist(x0);
    const after = await dist(r.images);
    after.forEach((d, i) => expect(d).toBeLessThan(before[i]!));
    after.forEach((d, i) => expect(Math.abs(d - r.losses[i]!)).toBeLessThan(1e-4));
    const wrong = { data: new Float32Array(fixture.shape[0] * 3), shape: [fixture.shape[0], 3] as [number, number] };
    await expect(clf.pgd({ x0, targets: fixture.targets, eps: 1, step: 0.1, iterations: 1, inversion: { target: wrong } }))
      .rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/inversion\.target/) });
    await expect(clf.pgd({ x0, targets: fixture.targets, eps: 1, step: 0.1, iterations: 1, inversion: { target: targetRep }, feature: { index: 0 } }))
      .rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
    await expect(clf.pgd({ x0, targets: fixture.targets, eps: 1, step: 0.1, iterations: 1, inversion: { target: { data: new Float32Array(2), shape: [2] } } as never }))
      .rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/inversion\.target/) });
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
