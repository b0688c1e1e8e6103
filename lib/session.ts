/**
 * PgdSession: one PGD run whose state stays native between calls, stepped from JS (the
 * playground's previews are built on it). Its native state (the iterate, the best iterate,
 * the inputs, a reference to the model) is freed by finish() or dispose(), not left to V8's
 * garbage collector, which does not know how large it is.
 */
import type { RawSession } from '../binding/index.js';
import { RobustSynthError } from './errors.js';
import { settle } from './native-job.js';
import { toResult, type PgdResult } from './pgd-options.js';
import { floatView, type ImageBatch, type Shape4 } from './tensor.js';

/**
 * One PGD run whose state stays native between calls: the primitive a JS-driven loop is built on.
 * End it with finish(), or with dispose() (in a `finally`, or through `await using`) when it is
 * abandoned: both free its native state at once. After dispose(), every call rejects with ERR_DISPOSED.
 *
 * @example
 * await using s = await clf.session({ x0, targets: [1], eps: 4, step: 0.5, iterations: 40 });
 * for (let i = 0; i < 40; i++) await s.step();
 * const r = await s.finish();
 */
export class PgdSession implements AsyncDisposable {
  #raw: RawSession;
  #state: 'open' | 'finished' | 'disposed' = 'open';
  #disposing: Promise<void> | undefined;
  #onClose: ((s: PgdSession) => void) | undefined;

  /** Made by Classifier.session(); `onClose` is told once the session holds nothing native. */
  constructor(raw: RawSession, onClose?: (s: PgdSession) => void) {
    this.#raw = raw;
    this.#onClose = onClose;
  }

  /** 'open', 'finished' (by finish()) or 'disposed' (by dispose()). */
  get state(): 'open' | 'finished' | 'disposed' {
    return this.#state;
  }

  #open(): RawSession {
    if (this.#state === 'disposed') throw new RobustSynthError('ERR_DISPOSED', 'the session was disposed');
    if (this.#state === 'finished') throw new RobustSynthError('ERR_BAD_INPUT', 'the session is finished');
    return this.#raw;
  }

  #closed(): void {
    const f = this.#onClose;
    this.#onClose = undefined;
    f?.(this);
  }

  /** One forward + backward + update; resolves with each sample's loss before the update. */
  async step(): Promise<Float32Array> {
    const raw = this.#open();
    const t = await settle(() => raw.step(), new Error());
    return floatView(t.data);
  }

  /**
   * The current iterate (before the useBest pick that finish() makes): a live preview costs one
   * copy, not a second run. Reading it changes nothing in the run.
   */
  async current(): Promise<ImageBatch> {
    const raw = this.#open();
    const t = await settle(() => raw.current(), new Error());
    return { data: floatView(t.data), shape: t.shape as Shape4 };
  }

  /**
   * The final useBest comparison; resolves with the result. The session then holds nothing
   * native and cannot step again (ERR_BAD_INPUT); dispose() afterwards does nothing.
   */
  async finish(): Promise<PgdResult> {
    const raw = this.#open();
    this.#state = 'finished';
    try {
      return toResult(await settle(() => raw.finish(), new Error()));
    } finally {
      this.#closed();
    }
  }

  /**
   * Frees the session's native state now (after its calls already queued; a step already
   * running ends first). Later calls of step(), current() and finish() throw ERR_DISPOSED.
   * Safe to call any number of times, never rejects; after finish() it does nothing.
   */
  dispose(): Promise<void> {
    if (this.#state === 'finished') return Promise.resolve(); // finish() let go of everything
    if (!this.#disposing) {
      this.#state = 'disposed';
      const raw = this.#raw;
      // Never rejects, so that it is safe in a `finally`: the job lets go of the references
      // whether it runs or fails (an environment torn down, the process exiting).
      this.#disposing = settle(() => raw.dispose(), new Error())
        .catch(() => undefined)
        .finally(() => this.#closed());
    }
    return this.#disposing;
  }

  /** `await using s = await clf.session(...)` disposes the session when the block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
