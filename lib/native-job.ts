/** Awaiting an addon job: its errors become RobustSynthErrors, an AbortSignal cancels it. */
import type { RawJob } from '../binding/index.js';
import { fromNative, RobustSynthError } from './errors.js';

/**
 * Starts `job` and awaits it. `callSite` (an Error made where the user called us) gives a
 * rejection its stack; an abort of `signal` cancels the job, which stops within a step.
 */
export async function settle<T>(job: () => RawJob<T>, callSite: Error, signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) throw new RobustSynthError('ERR_ABORTED', 'the job was aborted before it started');
  let handle: RawJob<T>;
  try {
    handle = job();
  } catch (e) {
    throw fromNative(e, callSite);
  }
  const onAbort = () => handle.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await handle.promise;
  } catch (e) {
    throw fromNative(e, callSite);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
