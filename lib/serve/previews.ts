/**
 * Intermediate images for the playground's live previews, without touching the engine.
 *
 * The native engine reports a step's loss as it goes but not its image, and a PgdSession keeps
 * its iterate native until finish() ends it. A run cut into chunks that restart from the last
 * iterate would change the result: the engine projects onto the eps ball around the x0 it was
 * given, so a restart would move the ball's centre. What the library does offer is determinism:
 * the same pgd() options give the same computation, so a run of t iterations returns exactly
 * what the full run would return if it stopped at step t (each sample's best iterate so far
 * under useBest, else the step-t iterate).
 *
 * So a preview at step t is a *replay*: pgd() with `iterations: t` and otherwise the very options
 * the task passed. The last replay of the schedule runs the task's own iteration count and is
 * what the task receives: the result is a plain run's, computed by the same call. The price is
 * compute: with m evenly spaced previews a run costs about (1 + m/2) times a plain one
 * (`previewCost`), which is small on the embedded 28x28 models (milliseconds a step) and why
 * the playground caps m. A native accessor for a session's current iterate would make previews
 * free; until there is one, this keeps results identical.
 */
import type { Classifier, PgdOptions, PgdResult } from '../classifier.js';
import type { ImageBatch } from '../tensor.js';

export interface Preview {
  /** Steps done: 0 for the start x0, then each scheduled step before the last. */
  step: number;
  total: number;
  /** Each sample's image at `step` (its best so far under useBest). */
  images: ImageBatch;
  /** Per-sample loss of those images; absent for the start. */
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

/** Steps a run with this schedule computes, relative to a plain run (1 = no overhead). */
export function previewCost(iterations: number, previews: number): number {
  if (iterations <= 0) return 1;
  return previewSchedule(iterations, previews).reduce((a, b) => a + b, 0) / iterations;
}

export interface PreviewOptions {
  /** Previews per pgd() call besides its start (0: a plain run, with only the start shown). */
  previews: number;
  /** Called with the start and each preview, in order; awaited before the run goes on. */
  onPreview: (p: Preview) => void | Promise<void>;
}

/**
 * The classifier as the tasks see it, with pgd() run as a schedule of replays (see above).
 * Everything else is the classifier itself, bound to it (its private state stays reachable).
 * Progress is forwarded only for steps past the last preview, so the step count the caller
 * sees only moves forward; `total` is the task's iteration count.
 */
export function withPreviews(clf: Classifier, o: PreviewOptions): Classifier {
  const pgd = async (options: PgdOptions): Promise<PgdResult> => {
    const total = options.iterations;
    const schedule = Number.isInteger(total) && total > 0 ? previewSchedule(total, o.previews) : [total];
    await o.onPreview({ step: 0, total, images: options.x0 });
    const t0 = performance.now();
    let shown = 0;
    const onProgress = options.onProgress;
    for (let k = 0; ; k++) {
      const t = schedule[k]!;
      const r = await clf.pgd({
        ...options,
        iterations: t,
        onProgress: onProgress && ((p) => {
          if (p.step > shown) onProgress({ ...p, total, elapsedMs: performance.now() - t0 });
        }),
      });
      if (k === schedule.length - 1) return r;
      shown = t;
      await o.onPreview({ step: t, total, images: r.images, losses: r.losses });
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
