/**
 * Submitting work and collecting it: adding jobs under their content-derived ids (finished ones
 * are skipped, failed ones retried, lost ones re-added), following them to the end with BullMQ's
 * QueueEvents plus a periodic check of job states for anything the event stream missed, and
 * writing their results from the submission's results stream into the local output directory
 * (results.ts). `robust-synth collect` runs the same loop without adding anything.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { RobustSynthError } from '../errors.js';
import { DEFAULT_QUEUE, parseFailure, PERMANENT_CODES, type JobData, type JobResult } from './jobs.js';
import { lockKey, resultsKey, submissionKey } from './keys.js';
import type { PlannedJob } from './plan.js';
import { bullConnection, createClient } from './redis.js';
import { Collector, readManifestStrict } from './results.js';
import { isDir, mergeManifest, RedisLock, removePartials } from './storage.js';

export * from './plan.js';

export interface WorkerRate {
  worker: string;
  images: number;
  /** Images per second since this submission started. */
  rate: number;
}

export interface SubmitProgress {
  /** Images in this submission; already done before it; done since; failed; still pending. */
  total: number;
  skipped: number;
  done: number;
  failed: number;
  pending: number;
  elapsedMs: number;
  /** Images per second over all workers, and the time left at that rate. */
  rate: number;
  etaMs: number | undefined;
  workers: WorkerRate[];
}

export interface Failure {
  id: string;
  source: string;
  files: string[];
  code: string;
  message: string;
}

export interface SubmitSummary extends SubmitProgress {
  failures: Failure[];
  /** Jobs added now, found pending, retried after an earlier failure, re-added after Redis lost them. */
  added: number;
  alreadyQueued: number;
  retried: number;
  readded: number;
}

export interface SubmitOptions {
  connection: RedisOptions;
  queue?: string;
  prefix?: string;
  /** Tries per job for transient errors (default 3), with exponential backoff from `backoffMs` (default 2000). */
  attempts?: number;
  backoffMs?: number;
  /** Resolve once the jobs are queued instead of when they have finished. */
  detach?: boolean;
  /** Retry jobs that failed before on bad input too (by default they are reported as failed again). */
  retryFailed?: boolean;
  /** How often, without events, job states are read back (ms, default 5000). */
  pollMs?: number;
  onProgress?: (p: SubmitProgress) => void;
  signal?: AbortSignal;
  /**
   * The local directory the results are written into (not with `shared`: the jobs' own `out`).
   * Its manifest.json must parse, or nothing is submitted.
   */
  out?: string;
  /** Only collect: add nothing; a job whose results are gone is reported as failed (`robust-synth collect`). */
  collectOnly?: boolean;
  /** fsync each collected file before its result leaves Redis (default true). */
  fsync?: boolean;
}

/** Adds the jobs (skipping finished ones) and, unless detached, follows them until each has completed or failed. */
export async function submitJobs(planned: PlannedJob[], o: SubmitOptions): Promise<SubmitSummary> {
  const name = o.queue ?? DEFAULT_QUEUE;
  const prefix = o.prefix ?? 'bull';
  const submission = planned[0]?.submission;
  if (planned.some((p) => p.submission !== submission)) throw new RobustSynthError('ERR_INTERNAL', 'one submission per call');
  const streamed = planned.some((p) => p.out === undefined);
  if (streamed && !o.out) throw new RobustSynthError('ERR_BAD_INPUT', 'results come through Redis: an output directory to write them into is needed');
  // Read the local manifest before anything is added: one that does not parse stops us here.
  if (streamed) readManifestStrict(o.out!);
  const redis = createClient(o.connection);
  const collector = streamed && submission ? new Collector(redis, resultsKey(prefix, o.queue ?? DEFAULT_QUEUE, submission), o.out!, new Map(planned.flatMap((p) => p.files).map((f, i) => [f, i])), { fsync: o.fsync }) : undefined;
  const queue = new Queue(name, {
    connection: bullConnection(o.connection),
    prefix,
    defaultJobOptions: {
      attempts: o.attempts ?? 3,
      backoff: { type: 'exponential', delay: o.backoffMs ?? 2000 },
      // Finished jobs are kept: their ids are how a resubmission knows the work is done.
      removeOnComplete: false,
      removeOnFail: false,
    },
  });
  queue.on('error', () => {});
  const t0 = Date.now();
  const byId = new Map(planned.map((p) => [p.id, p]));
  const pending = new Set<string>();
  const failures: Failure[] = [];
  const perWorker = new Map<string, number>();
  let skipped = 0;
  let done = 0;
  let added = 0;
  let alreadyQueued = 0;
  let retried = 0;
  let readded = 0;
  let lastEvent = Date.now();
  let pendingImages = 0;
  const images = (id: string) => byId.get(id)!.files.length;
  const track = (id: string) => {
    if (!pending.has(id)) pendingImages += images(id);
    pending.add(id);
  };
  const untrack = (id: string) => {
    if (!pending.delete(id)) return false;
    pendingImages -= images(id);
    return true;
  };
  const total = planned.reduce((a, p) => a + p.files.length, 0);

  const progress = (): SubmitProgress => {
    const elapsedMs = Date.now() - t0;
    const rate = done / Math.max(1e-3, elapsedMs / 1000);
    const left = pendingImages;
    const failedImages = failures.reduce((a, f) => a + f.files.length, 0);
    return {
      total, skipped, done, failed: failedImages, pending: left, elapsedMs, rate,
      etaMs: rate > 0 ? (left / rate) * 1000 : undefined,
      workers: [...perWorker].map(([worker, n]) => ({ worker, images: n, rate: n / Math.max(1e-3, elapsedMs / 1000) })).sort((a, b) => b.images - a.images),
    };
  };
  const completed = (id: string, r: JobResult | undefined) => {
    if (!untrack(id)) return;
    done += images(id);
    if (r?.worker) perWorker.set(r.worker, (perWorker.get(r.worker) ?? 0) + images(id));
    o.onProgress?.(progress());
  };
  const failed = (id: string, reason: string | undefined) => {
    if (!untrack(id)) return;
    const p = byId.get(id)!;
    failures.push({ id, source: p.source, files: p.files, ...parseFailure(reason) });
    o.onProgress?.(progress());
  };

  let events: QueueEvents | undefined;
  try {
    if (submission && !o.collectOnly) {
      // The plan's job ids, in order, for `collect` (which learns files, sources and order from them).
      const key = submissionKey(prefix, name, submission);
      const ids = planned.map((p) => p.id);
      await redis.del(key);
      for (let i = 0; i < ids.length; i += 1000) await redis.rpush(key, ...ids.slice(i, i + 1000));
    }
    // Results already waiting (a detached submission's) are written first: a finished job whose
    // outputs are then still missing here has lost them, and is redone.
    await collector?.drain();
    // Events from now on: read the stream's last id first, so that nothing finishing while the
    // jobs are being added is missed.
    const last = (await redis.xrevrange(`${prefix}:${name}:events`, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    if (!o.detach) {
      events = new QueueEvents(name, { connection: bullConnection(o.connection), prefix, lastEventId: last });
      events.on('error', () => {});
      events.on('completed', ({ jobId: id, returnvalue }) => {
        lastEvent = Date.now();
        completed(id, returnvalue as unknown as JobResult);
      });
      events.on('failed', ({ jobId: id, failedReason }) => {
        lastEvent = Date.now();
        failed(id, failedReason);
      });
    }

    const add = async (batch: PlannedJob[]) => {
      if (!batch.length) return;
      const jobs = await Promise.all(batch.map(async (p) => ({ name: p.task, data: await p.data(), opts: { jobId: p.id } })));
      await queue.addBulk(jobs);
    };
    const CHUNK = 100;
    for (let i = 0; i < planned.length; i += CHUNK) {
      if (o.signal?.aborted) throw new RobustSynthError('ERR_ABORTED', 'submission aborted');
      const chunk = planned.slice(i, i + CHUNK);
      const states = await Promise.all(chunk.map((p) => queue.getJobState(p.id)));
      const toAdd: PlannedJob[] = [];
      for (const [k, p] of chunk.entries()) {
        const state = states[k]!;
        if (state === 'completed') {
          // Finished before; redone only if its outputs are gone from a directory this machine sees.
          const dir = p.out ?? o.out!;
          const missing = isDir(dir) ? p.files.some((f) => !existsSync(join(dir, f))) : p.out === undefined;
          if (missing && o.collectOnly) {
            track(p.id);
            failed(p.id, `ERR_REDIS: its results are no longer in Redis (collected into another directory?); submit again to redo it`);
          } else if (missing) {
            await queue.remove(p.id);
            toAdd.push(p);
            track(p.id);
            added++;
          } else if (collector && p.files.every((f) => collector.written.has(f))) {
            track(p.id);
            completed(p.id, (await queue.getJob(p.id))?.returnvalue as JobResult | undefined);
          } else skipped += p.files.length;
        } else if (state === 'failed') {
          const job = await queue.getJob(p.id);
          track(p.id);
          // The same id means the same input and settings: a job that failed for good on them
          // (bad input) would fail again, so it is reported, not retried, unless asked.
          const { code } = parseFailure(job?.failedReason);
          if (!o.retryFailed && (PERMANENT_CODES as readonly string[]).includes(code)) failed(p.id, job?.failedReason);
          else {
            await job?.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
            retried++;
          }
        } else if (state === 'unknown') {
          track(p.id);
          if (o.collectOnly) failed(p.id, 'ERR_REDIS: the job is not in Redis any more; submit again to redo it');
          else {
            toAdd.push(p);
            added++;
          }
        } else {
          track(p.id);
          alreadyQueued++;
        }
      }
      await add(toAdd);
    }
    o.onProgress?.(progress());

    if (!o.detach) {
      const pollMs = o.pollMs ?? 5000;
      while (pending.size) {
        if (o.signal?.aborted) throw new RobustSynthError('ERR_ABORTED', 'stopped following the jobs (they stay queued)');
        // Waits for results (up to a second) instead of sleeping: they are written as they come.
        if (collector) await collector.drain(Math.min(1000, pollMs));
        else await new Promise((r) => setTimeout(r, Math.min(1000, pollMs)));
        o.onProgress?.(progress());
        if (Date.now() - lastEvent < pollMs) continue;
        // No event for a while: read the states back (events can be trimmed or lost with Redis).
        lastEvent = Date.now();
        const ids = [...pending];
        for (let i = 0; i < ids.length; i += CHUNK) {
          const chunk = ids.slice(i, i + CHUNK);
          const states = await Promise.all(chunk.map((id) => queue.getJobState(id)));
          const lost: PlannedJob[] = [];
          for (const [k, id] of chunk.entries()) {
            const state = states[k]!;
            if (state === 'completed') completed(id, (await queue.getJob(id))?.returnvalue as JobResult | undefined);
            else if (state === 'failed') failed(id, (await queue.getJob(id))?.failedReason);
            else if (state === 'unknown') {
              // Redis lost the job (restarted without persistence, or flushed): add it again.
              if (o.collectOnly) failed(id, 'ERR_REDIS: the job is not in Redis any more; submit again to redo it');
              else {
                lost.push(byId.get(id)!);
                readded++;
              }
            }
          }
          await add(lost);
        }
      }
      if (collector && submission) {
        // Every job has settled, and a job's results are in the stream before it completes: the
        // last of them are written now, then the emptied stream and the plan leave Redis.
        await collector.drain();
        if ((await redis.xlen(collector.key)) === 0) await redis.del(collector.key, submissionKey(prefix, name, submission));
      }
      // --shared: the workers merged the manifest as they went; one more merge repairs any update
      // a lost lock let slip, and temp files of killed writers of these jobs are removed.
      const dirs = new Set(planned.flatMap((p) => (p.out === undefined ? [] : [p.out])));
      for (const dir of dirs) {
        if (!isDir(dir)) continue;
        await new RedisLock(redis).with(lockKey(prefix, name, dir), () => mergeManifest(dir, []));
        removePartials(dir, planned.filter((p) => p.out === dir).flatMap((p) => p.files));
      }
    }
    return { ...progress(), failures, added, alreadyQueued, retried, readded };
  } finally {
    await events?.close().catch(() => {});
    await queue.close().catch(() => {});
    redis.disconnect();
  }
}

/**
 * The jobs of a submission, as `submit` recorded them (their ids in plan order), read back from
 * Redis with their files and sources: what `robust-synth collect` follows. Jobs Redis no longer
 * has are left out.
 */
export async function submissionJobs(o: { connection: RedisOptions; queue?: string; prefix?: string; submission: string }): Promise<PlannedJob[]> {
  const name = o.queue ?? DEFAULT_QUEUE;
  const prefix = o.prefix ?? 'bull';
  const redis = createClient(o.connection);
  const queue = new Queue(name, { connection: bullConnection(o.connection), prefix });
  queue.on('error', () => {});
  try {
    const ids = await redis.lrange(submissionKey(prefix, name, o.submission), 0, -1);
    if (!ids.length) {
      throw new RobustSynthError('ERR_BAD_INPUT', `no submission '${o.submission}' waits on queue ${name} (never submitted, or already collected)`);
    }
    const jobs: PlannedJob[] = [];
    for (let i = 0; i < ids.length; i += 100) {
      for (const job of await Promise.all(ids.slice(i, i + 100).map((id) => queue.getJob(id)))) {
        const d = job?.data as JobData | undefined;
        if (!job?.id || !d) continue;
        jobs.push({ id: job.id, task: d.task, submission: o.submission, out: d.out, files: d.files, source: d.source, data: async () => d });
      }
    }
    return jobs;
  } finally {
    await queue.close().catch(() => {});
    redis.disconnect();
  }
}
