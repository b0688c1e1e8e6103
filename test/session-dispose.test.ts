// A PgdSession's native state (iterate, inputs, model reference) is freed by dispose() or
// finish() at once, not when V8 collects the session object; the playground disposes the
// session of every cancelled job, and a classifier can be disposed (its weights freed) once
// its sessions are.
//
// Counts the live CPU tensor allocations (tensorStats), so it must be set before the addon loads.
process.env.ROBUST_SYNTH_COUNT_TENSORS = '1';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBinding } from '../binding/index.js';
import { Classifier, PgdSession, setThreads, type ErrorCode, type SessionOptions } from '../lib/index.js';
import { Job, ModelSlot, Scheduler } from '../lib/serve/jobs.js';
import type { JobSpec } from '../lib/serve/run.js';
import { forceGc } from '../scripts/soak.js';
import { randomBatch } from './helpers.js';

const live = () => loadBinding().tensorStats();

/** Live tensor allocations once everything JS no longer references is collected. */
async function settled(): Promise<{ allocations: number; bytes: number }> {
  await forceGc();
  const { allocations, bytes } = live();
  return { allocations, bytes };
}

async function code(p: () => Promise<unknown>): Promise<ErrorCode | undefined> {
  return p().then(
    () => undefined,
    (e: { code?: ErrorCode }) => e.code,
  );
}

beforeAll(() => {
  setThreads(1);
  expect(live().counting).toBe(true);
});

describe('PgdSession.dispose', () => {
  let clf: Classifier;
  const opts: SessionOptions = { x0: randomBatch([4, 1, 28, 28], 7), targets: [1, 2, 3, 4], eps: 1, step: 0.2, iterations: 5 };

  beforeAll(async () => {
    clf = await Classifier.load('fashion-standard', { device: 'cpu' });
    // Warm-up: TorchScript's executor keeps a plan per input shape (a cache, not a run's memory).
    const s = await clf.session(opts);
    for (let i = 0; i < 3; i++) await s.step();
    await s.finish();
  });

  afterAll(async () => {
    await clf?.dispose();
  });

  it('frees the native state at once, while the session object is still referenced; a second call does nothing', async () => {
    const before = await settled();
    const s = await clf.session(opts);
    await s.step();
    // The session holds its run natively (x0's copy, the iterate, the best iterate, ...).
    expect((await settled()).allocations).toBeGreaterThan(before.allocations);
    await s.dispose();
    expect(s.state).toBe('disposed');
    expect(await settled()).toEqual(before);
    await s.dispose();
    await Promise.all([s.dispose(), s[Symbol.asyncDispose]()]);
    expect(await settled()).toEqual(before);
  });

  it('any use after dispose() rejects with ERR_DISPOSED; after finish(), stepping is ERR_BAD_INPUT and dispose() is a no-op', async () => {
    const s = await clf.session(opts);
    await s.step();
    await s.dispose();
    expect(await code(() => s.step())).toBe('ERR_DISPOSED');
    expect(await code(() => s.current())).toBe('ERR_DISPOSED');
    expect(await code(() => s.finish())).toBe('ERR_DISPOSED');

    const f = await clf.session(opts);
    const r = await f.finish();
    expect(r.images.shape).toEqual([4, 1, 28, 28]);
    expect(f.state).toBe('finished');
    expect(await code(() => f.step())).toBe('ERR_BAD_INPUT');
    await f.dispose();
    expect(f.state).toBe('finished');
    expect(await code(() => f.step())).toBe('ERR_BAD_INPUT');
    // The classifier is untouched.
    expect((await clf.logits(opts.x0)).shape).toEqual([4, 10]);
  });

  it('the addon itself refuses a disposed session (ERR_DISPOSED) and a finished one (ERR_BAD_INPUT)', async () => {
    const b = loadBinding();
    const model = await b.load(clf.path, 'cpu', [1, 28, 28]).promise;
    const raw = { ...opts, targets: Int32Array.from([1, 2, 3, 4]), constraint: '2' as const, useBest: true, randomStart: false, seed: 0, targeted: true, bf16: false, penaltyWeight: 0, progressEvery: 1 };
    const nativeCode = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return undefined;
    };
    const d = await model.createSession(raw).promise;
    await d.step().promise;
    await d.dispose().promise;
    await d.dispose().promise;
    expect(nativeCode(() => d.step())).toBe('ERR_DISPOSED');
    expect(nativeCode(() => d.current())).toBe('ERR_DISPOSED');
    expect(nativeCode(() => d.finish())).toBe('ERR_DISPOSED');
    const f = await model.createSession(raw).promise;
    await f.finish().promise;
    expect(nativeCode(() => f.step())).toBe('ERR_BAD_INPUT');
    await f.dispose().promise;
    expect(nativeCode(() => f.step())).toBe('ERR_DISPOSED');
    await model.dispose().promise;
  });

  it('await using disposes the session when its block ends, also when the block throws', async () => {
    const before = await settled();
    let kept: PgdSession | undefined;
    {
      await using s = await clf.session(opts);
      kept = s;
      await s.step();
      expect(s.state).toBe('open');
    }
    expect(kept.state).toBe('disposed');
    expect(await code(() => kept!.step())).toBe('ERR_DISPOSED');
    await expect(
      (async () => {
        await using s = await clf.session(opts);
        kept = s;
        await s.step();
        throw new Error('the caller failed');
      })(),
    ).rejects.toThrow('the caller failed');
    expect(kept.state).toBe('disposed');
    expect(await settled()).toEqual(before);
  });

  it('Classifier.dispose() disposes the sessions still open and frees the weights', async () => {
    const before = await settled();
    const c = await Classifier.load('fashion-robust', { device: 'cpu' });
    const open = await c.session(opts);
    await open.step();
    const finished = await c.session(opts);
    await finished.finish();
    await c.dispose();
    expect(open.state).toBe('disposed');
    expect(await code(() => open.step())).toBe('ERR_DISPOSED');
    expect(await code(() => c.session(opts))).toBe('ERR_DISPOSED');
    // Both session objects are still referenced here: neither keeps the weights alive.
    expect(await settled()).toEqual(before);
    expect([open.state, finished.state]).toEqual(['disposed', 'finished']);
  });
});

describe('playground: 200 jobs cancelled mid-run, then one completed', () => {
  const MODELS = ['fashion-robust', 'fashion-standard'];
  const ITERATIONS = 12; // previews after steps 3, 6 and 9
  /** Every session the jobs opened, held here as if the garbage collector had not run yet. */
  const opened: PgdSession[] = [];
  const scheduler = new Scheduler({ maxQueue: 8, jobTimeoutMs: 10 * 60_000, keepJobs: 2 });
  const slots = MODELS.map(
    (name) =>
      new ModelSlot(name, name, async () => {
        const c = await Classifier.load(name, { device: 'cpu' });
        const session = c.session.bind(c);
        c.session = async (o) => {
          const s = await session(o);
          opened.push(s);
          return s;
        };
        return c;
      }),
  );
  const spec = (i: number): JobSpec => ({
    model: MODELS[i % 2]!, task: 'generate', classIndex: i % 10, seed: 'uniform', randomSeed: i, count: 2, iterations: ITERATIONS, previews: 3,
  });

  /** Runs one job through the queue; cancels it once its progress reaches `cancelAt`. */
  async function run(i: number, cancelAt?: number): Promise<Job> {
    const slot = slots[i % 2]!;
    const job = new Job(spec(i), 'test-client', undefined);
    const over = new Promise<void>((resolve) => {
      job.watch((e) => {
        if (e.type === 'progress' && cancelAt !== undefined && e.data.step >= cancelAt) scheduler.cancel(slot, job);
        if (e.type === 'status' && job.finished) resolve();
      });
    });
    scheduler.submit(slot, job);
    await over;
    return job;
  }

  /** Live allocations with no finished job kept by the scheduler. */
  async function baseline(): Promise<{ allocations: number; bytes: number }> {
    scheduler.jobs.clear();
    return settled();
  }

  it('leaves no tensor behind, keeps RSS flat, and lets both models be disposed', async () => {
    const unloaded = await baseline();
    // Warm-up: load both models and complete two jobs on each.
    for (let i = 0; i < 4; i++) expect((await run(i)).state).toBe('done');
    const warm = await baseline();
    expect(warm.allocations).toBeGreaterThan(unloaded.allocations); // the weights
    const rssWarm = process.memoryUsage.rss();
    const sessionsBefore = opened.length;

    for (let i = 0; i < 200; i++) {
      const job = await run(i, 1 + (i % (ITERATIONS - 1)));
      expect(job.state, `job ${i}: ${JSON.stringify(job.error)}`).toBe('cancelled');
      expect(job.error?.code).toBe('ERR_ABORTED');
    }
    const last = await run(200);
    expect(last.state).toBe('done');
    expect(last.output?.entries).toHaveLength(2);

    // Every job got as far as its session.
    expect(opened.length - sessionsBefore).toBe(201);
    expect(await baseline()).toEqual(warm);
    expect(process.memoryUsage.rss()).toBeLessThanOrEqual(rssWarm * 1.1);
    expect(opened.filter((s) => s.state === 'open')).toHaveLength(0);
    expect(opened.slice(-1)[0]!.state).toBe('finished');

    for (const slot of slots) await (await slot.loaded!).dispose();
    expect(await baseline()).toEqual(unloaded);
  });
});
