// The CPU thread policy: adaptive by default (the allowed cores minus those other processes keep
// busy), fixed on request. Speed is measured in the bench's contended table, not here.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBinding } from '../binding/index.js';
import { Classifier, getThreads, setThreads, threadPolicy } from '../lib/index.js';
import { randomBatch } from './helpers.js';

let clf: Classifier;
beforeAll(async () => {
  clf = await Classifier.load('fashion-robust', { device: 'cpu' });
});
afterAll(async () => {
  setThreads('auto');
  await clf?.dispose();
});

describe('the adaptive rule', () => {
  it.each([
    [2, 0, 2],
    [2, 0.3, 2],
    [2, 0.7, 1],
    [2, 1, 1],
    [2, 5, 1],
    [16, 3.2, 13],
    [1, 0, 1],
  ])('%i allowed cores, %f busy elsewhere -> %i threads', (allowed, busy, want) => {
    expect(loadBinding().threadsForLoad(allowed, busy)).toBe(want);
  });
});

describe('setThreads', () => {
  it('is adaptive by default, with the allowed cores as its ceiling', () => {
    const p = threadPolicy();
    expect(p.mode).toBe('auto');
    expect(p.max).toBe(availableParallelism());
    expect(p.current).toBeGreaterThanOrEqual(1);
    expect(p.current).toBeLessThanOrEqual(p.max);
  });

  it('fixes a count, and returns to auto', async () => {
    setThreads(1);
    await clf.logits(randomBatch([1, 1, 28, 28]));
    expect(threadPolicy()).toEqual({ mode: 'fixed', current: 1, max: 1 });
    expect(getThreads()).toBe(1);
    setThreads('auto');
    await clf.logits(randomBatch([1, 1, 28, 28]));
    expect(threadPolicy().mode).toBe('auto');
  });

  it('reports a fixed count at once, before a job has run with it', async () => {
    setThreads(1);
    await clf.logits(randomBatch([1, 1, 28, 28]));
    setThreads(2);
    expect(threadPolicy()).toEqual({ mode: 'fixed', current: 2, max: 2 });
    expect(getThreads()).toBe(2);
    await clf.logits(randomBatch([1, 1, 28, 28]));
    expect(threadPolicy()).toEqual({ mode: 'fixed', current: 2, max: 2 });
    setThreads(1);
    expect(threadPolicy()).toEqual({ mode: 'fixed', current: 1, max: 1 });
    setThreads('auto');
  });

  it.each([0, -1, 1.5, NaN, 'two'])('refuses %s with ERR_BAD_INPUT', (n) => {
    expect(() => setThreads(n as number)).toThrow(expect.objectContaining({ code: 'ERR_BAD_INPUT' }));
  });
});

// Needs two cores at least: beside as many busy processes as there are cores, the policy must
// leave cores to them within a long PGD run (it re-reads the load every 250 ms).
describe.skipIf(availableParallelism() < 2)('beside busy processes', () => {
  const busy: ChildProcess[] = [];
  afterAll(() => busy.forEach((p) => p.kill('SIGKILL')));

  it('drops below the ceiling during a run, and a fixed count stays fixed', async () => {
    setThreads('auto');
    for (let i = 0; i < availableParallelism(); i++) {
      busy.push(spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' }));
    }
    await new Promise((r) => setTimeout(r, 300));
    const x0 = randomBatch([2, 1, 28, 28]);
    const seen = new Set<number>();
    const t0 = performance.now();
    // Until the policy reacts (a fraction of a second), or 30 s as a hang guard.
    while (performance.now() - t0 < 30_000) {
      await clf.pgd({ x0, targets: [1, 2], eps: 10, step: 0.5, iterations: 20, onProgress: () => seen.add(getThreads()) });
      seen.add(getThreads());
      if (Math.min(...seen) < availableParallelism()) break;
    }
    expect(Math.min(...seen)).toBeLessThan(availableParallelism());

    setThreads(availableParallelism());
    await clf.pgd({ x0, targets: [1, 2], eps: 10, step: 0.5, iterations: 20 });
    expect(threadPolicy()).toEqual({ mode: 'fixed', current: availableParallelism(), max: availableParallelism() });
  });
});
