// The engine on a 224x224 ResNet50 (random weights, exported at test time), its async
// behaviour, and its errors.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInfo, Classifier, RobustSynthError, type Progress } from '../lib/index.js';
import { pgdBadInputs } from './fixtures/bad-inputs.js';
import { l2PerSample, python, randomBatch, tempDir, TEST_DEVICE } from './helpers.js';

let dir: string;
let resnet: Classifier;
let small: Classifier;

beforeAll(async () => {
  dir = tempDir();
  python(['models/export_resnet50.py', '--random', '--out', join(dir, 'resnet50.pt')]);
  python(['test/fixtures/reference_pgd.py', join(dir, 'small')]);
  resnet = await Classifier.load(join(dir, 'resnet50.pt'), { device: TEST_DEVICE });
  small = await Classifier.load(join(dir, 'small/model.pt'), { device: TEST_DEVICE, inputShape: [3, 16, 16] });
});

afterAll(async () => {
  await resnet?.dispose();
  await small?.dispose();
});

describe('ResNet50 at 224x224', () => {
  it('reads the model card: 1000 ImageNet classes, shape 3x224x224', () => {
    expect(resnet.numClasses).toBe(1000);
    expect(resnet.inputShape).toEqual([3, 224, 224]);
    expect(resnet.classes[0]).toBe('tench');
    expect(resnet.device.startsWith(TEST_DEVICE)).toBe(true);
  });

  it('runs a 60-step PGD off the event loop, reporting progress', async () => {
    const x0 = randomBatch([1, 3, 224, 224], 7);
    const progress: Progress[] = [];
    let maxLag = 0;
    let ticks = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
      ticks++;
    }, 10);
    const r = await resnet.pgd({
      x0, targets: ['golf ball'], eps: 40, step: 1, iterations: 60, onProgress: (p) => progress.push(p),
    });
    clearInterval(timer);
    // Progress arrives from the compute thread; the last report may land just after the result.
    await new Promise((res) => setTimeout(res, 50));
    expect(progress.map((p) => p.step)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(r.stats.steps).toBe(60);
    // A loop blocked by the PGD would show one lag as long as the whole run (seconds).
    expect(ticks).toBeGreaterThan(20);
    expect(maxLag).toBeLessThan(250);
    expect(l2PerSample(r.images, x0)[0]).toBeLessThanOrEqual(40 + 1e-3);
    expect(r.losses[0]).toBeLessThan(progress[0]!.loss);
    expect(r.images.data.every((v) => v >= 0 && v <= 1)).toBe(true);
  });
});

describe('aborting and disposing', () => {
  it('an aborted job rejects with ERR_ABORTED within a step and leaves the classifier usable', async () => {
    const ac = new AbortController();
    const x0 = randomBatch([2, 3, 16, 16], 3);
    let steps = 0;
    const job = small.pgd({
      x0, targets: [0, 1], eps: 2, step: 0.1, iterations: 1_000_000,
      onProgress: (p) => {
        steps = p.step;
        if (p.step === 5) ac.abort();
      },
      signal: ac.signal,
    });
    await expect(job).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(steps).toBeLessThan(1000);
    const r = await small.pgd({ x0, targets: [0, 1], eps: 2, step: 0.1, iterations: 3 });
    expect(r.stats.steps).toBe(3);
  });

  it('an already aborted signal rejects before any work', async () => {
    const x0 = randomBatch([1, 3, 16, 16]);
    await expect(small.pgd({ x0, targets: [0], eps: 1, step: 1, iterations: 1, signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    });
  });

  it('dispose rejects queued jobs with ERR_DISPOSED, and later calls too', async () => {
    const clf = await Classifier.load(join(dir, 'small/model.pt'), { device: 'cpu', inputShape: [3, 16, 16] });
    const x0 = randomBatch([1, 3, 16, 16]);
    const jobs = Array.from({ length: 4 }, () => clf.pgd({ x0, targets: [0], eps: 1, step: 0.1, iterations: 200_000 }));
    const disposed = clf.dispose();
    const settled = await Promise.allSettled(jobs);
    await disposed;
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      expect((s as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_DISPOSED' });
    }
    await expect(clf.logits(x0)).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    await clf.dispose(); // twice is fine
  });
});

describe('errors carry stable codes', () => {
  const x0 = randomBatch([1, 3, 16, 16]);
  const base = { x0, targets: [0], eps: 1, step: 0.1, iterations: 2 };
  // The shared table (test/fixtures/bad-inputs.ts), on this 3x16x16 model of 5 classes.
  it.each(pgdBadInputs([3, 16, 16], 5))('%s', async (_name, patch, code, message) => {
    const err = await small.pgd({ ...base, ...patch } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RobustSynthError);
    expect(err).toMatchObject({ code });
    if (message) expect((err as Error).message).toMatch(message);
  });

  it('stack traces point at the caller', async () => {
    const err = (await small.pgd({ ...base, eps: -1 }).catch((e: unknown) => e)) as Error;
    expect(err.stack).toContain('engine.test.ts');
  });

  it.skipIf(buildInfo().cudaAvailable)('device cuda without CUDA is ERR_DEVICE', async () => {
    await expect(Classifier.load(join(dir, 'small/model.pt'), { device: 'cuda', inputShape: [3, 16, 16] })).rejects.toMatchObject({
      code: 'ERR_DEVICE',
    });
  });

  it('missing file, not TorchScript, wrong output shape', async () => {
    await expect(Classifier.load(join(dir, 'nope.pt'))).rejects.toMatchObject({ code: 'ERR_MODEL_NOT_FOUND' });
    writeFileSync(join(dir, 'text.pt'), 'not a model');
    await expect(Classifier.load(join(dir, 'text.pt'), { device: 'cpu' })).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
    await expect(Classifier.load(join(dir, 'small/bad-output.pt'), { device: 'cpu', inputShape: [3, 16, 16] })).rejects.toMatchObject({
      code: 'ERR_MODEL_OUTPUT',
    });
    await expect(Classifier.load(dir, { device: 'cpu' })).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
  });
});
