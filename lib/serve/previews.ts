/**
 * Intermediate images for the playground's live previews.
 *
 * The run goes through a PgdSession (the engine's JS-stepped form of the very same loop:
 * test/engine-reference.test.ts checks that a stepped session ends bit-identical to pgd()),
 * and at each scheduled step the session's current iterate is read (`session.current()`, one
 * copy). So a preview costs a copy, not a replay, and the result is a plain run's.
 */
import type { Classifier, PgdOptions, PgdResult } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import type { ImageBatch } from '../tensor.js';

export interface Preview {
  /** Steps done: 0 for the start x0, then each scheduled step before the last. */
  step: number;
  total: number;
  /** Each sample's current iterate at `step` (under useBest the result may be an earlier one). */
  images: ImageBatch;
  /** Per-sample loss of the iterate the last step started from; absent for the start. */
  losses?: Float32Array;
}

/**
 * The steps at which to show a preview for a run of `iterations`, ending with `iterations`
 * itself (not a preview: the result). `previews` evenly spaced steps strictly between 0 and
 * `iterations`, fewer when the run is shorter.
 */
export function previewSchedule(iterations: number, previews: number): number[] {
  const out: number[] = [];
  const m = Math.max(0, Math.min(Math.floor(previews), iterations - 1));
  for (let j = 1; j <= m; j++) {
    const t = Math.round((j * iterations) / (m + 1));
    if (t > 0 && t < iterations && t !== out[out.length - 1]) out.push(t);
  }
  out.push(iterations);
  return out;
}

export interface PreviewOptions {
  /** Previews per pgd() call besides its start (0: a plain run, with only the start shown). */
  previews: number;
  /** Called with the start and each preview, in order; awaited before the run goes on. */
  onPreview: (p: Preview) => void | Promise<void>;
}

/**
 * The classifier as the tasks see it, with pgd() run as a session that shows its current
 * iterate at the scheduled steps. Everything else is the classifier itself, bound to it (its
 * private state stays reachable). Progress and abort behave as in pgd(): `onProgress` every
 * `progressEvery` steps, and an aborted `signal` stops the run within a step with ERR_ABORTED.
 */
export function withPreviews(clf: Classifier, o: PreviewOptions): Classifier {
  const pgd = async (options: PgdOptions): Promise<PgdResult> => {
    const { onProgress, progressEvery = 1, signal, ...rest } = options;
    const total = options.iterations;
    const shows = new Set(Number.isInteger(total) && total > 0 ? previewSchedule(total, o.previews).slice(0, -1) : []);
    const aborted = () => new RobustSynthError('ERR_ABORTED', 'the job was aborted');
    if (signal?.aborted) throw aborted();
    await o.onPreview({ step: 0, total, images: options.x0 });
    const session = await clf.session(rest);
    try {
      const t0 = performance.now();
      for (let t = 1; t <= total; t++) {
        if (signal?.aborted) throw aborted();
        const losses = await session.step();
        if (onProgress && (t % progressEvery === 0 || t === total)) {
          onProgress({ step: t, total, loss: losses.reduce((a, b) => a + b, 0) / losses.length, elapsedMs: performance.now() - t0 });
        }
        if (shows.has(t)) await o.onPreview({ step: t, total, images: await session.current(), losses });
      }
      if (signal?.aborted) throw aborted();
      return await session.finish();
    } finally {
      // Cancelled, timed out or failed: free the run now, not at garbage collection (a no-op after finish()).
      await session.dispose();
    }
  };
  return new Proxy(clf, {
    get(target, prop) {
      if (prop === 'pgd') return pgd;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
