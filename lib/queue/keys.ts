/**
 * The Redis keys robust-synth keeps beside BullMQ's own, under the same prefix and queue name.
 * One module, so that `status` or `collect` need not load the worker to know a key's name.
 */

/** The hash of worker heartbeats of a queue (what `status` lists as workers seen): worker id to a WorkerStats JSON. */
export const workersKey = (prefix: string, queue: string) => `${prefix}:${queue}:rs-workers`;

/** A worker's heartbeat record. */
export interface WorkerStats {
  id: string;
  host: string;
  pid: number;
  device: string;
  concurrency: number;
  startedAt: number;
  lastSeen: number;
  jobs: number;
  images: number;
  failed: number;
  batches: number;
  rows: number;
  stopped?: boolean;
}

/** The lock a shared output directory's manifest merge holds (--shared only). */
export const lockKey = (prefix: string, queue: string, dir: string) => `${prefix}:${queue}:rs-lock:${dir}`;

/** The stream a submission's results wait in until its collector has written them (PNG bytes and manifest entries). */
export const resultsKey = (prefix: string, queue: string, submission: string) => `${prefix}:${queue}:rs-results:${submission}`;

/** The list of a submission's job ids in plan order (what `collect` follows, and the manifest's order). */
export const submissionKey = (prefix: string, queue: string, submission: string) => `${prefix}:${queue}:rs-submission:${submission}`;

/** A submission id: what `submit` prints and `collect --submission` takes. */
export const SUBMISSION_ID = /^[A-Za-z0-9._-]{1,100}$/;
