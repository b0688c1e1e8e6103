/**
 * A queue worker: a BullMQ Worker whose processor hands each job to a batcher, which groups
 * compatible jobs (same model, task, shape and settings) into one native PGD call.
 *
 * Why this design keeps BullMQ's guarantees: every job is fetched, locked, renewed, completed
 * and failed by BullMQ's own Worker; a job simply stays "in its processor" while it waits for
 * its batch. With `concurrency` N, the Worker holds up to N jobs at once, each under its own lock,
 * renewed by the Worker's lock manager until the processor settles. If this process dies, all of
 * them lose their locks and BullMQ's stalled-job checker (run by every other worker) returns
 * them to the queue. Nothing here takes jobs behind BullMQ's back (no getNextJob, no manual
 * moveToCompleted), so there is no lock to forget to extend and no token to mishandle.
 */
import { hostname } from 'node:os';
import { Worker, UnrecoverableError, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Classifier, Device } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import { decodeImage, encodePng } from '../images.js';
import type { SeedKind } from '../seeds.js';
import { runBatched, type TaskResult, type TaskSettings } from '../tasks/common.js';
import { defaultSeedsFor } from '../tasks/generate.js';
import { padRows, padTargets } from '../tasks/pad.js';
import { concat, type ImageBatch } from '../tensor.js';
import { Batcher, type Group, type Item } from './batcher.js';
import { jobSeeds } from './job-seeds.js';
import {
  checkJob, DEFAULT_QUEUE, failureMessage, isPermanent, jobImage, jobRows,
  type JobData, type JobLimits, type JobResult, type TranslateJobData,
} from './jobs.js';
import { lockKey, resultsKey, workersKey, type WorkerStats } from './keys.js';
import { ManifestMerger } from './manifest-merger.js';
import { ModelCache } from './model-cache.js';
import { bullConnection, createClient } from './redis.js';
import { maxPngBytes, publishResults, type Result } from './results.js';
import { checkManifest, jobOutputsDone, mergeManifest, RedisLock, setFsync, writeEntry, writeShared, type QueueEntry } from './storage.js';

export interface QueueWorkerOptions {
  connection: RedisOptions;
  queue?: string;
  /** BullMQ's key prefix (default 'bull'). */
  prefix?: string;
  device?: Device;
  /**
   * Jobs held at once, each under its own lock; a device batch takes up to `batch` rows of them.
   * 'auto' (default): twice the largest `batch` of the jobs seen (one batch computing, the next
   * filling), at most 256.
   */
  concurrency?: number | 'auto';
  /** Model directories: models are loaded by name from these and the embedded ones, and from nowhere else. */
  modelDirs?: string[];
  /** A batch that is not full runs once no compatible job has joined it for this long (ms, default 50). */
  windowMs?: number;
  /** BullMQ lockDuration (ms, default 30000): a dead worker's jobs return to the queue after about this. */
  lockMs?: number;
  /** BullMQ stalledInterval (ms, default 30000). */
  stalledMs?: number;
  /** BullMQ maxStalledCount (default 2): a job that stalls more often fails. */
  maxStalled?: number;
  limits?: Partial<JobLimits>;
  /** This worker's name in logs, results and `status` (default HOST-PID). */
  name?: string;
  log?: (line: string) => void;
  heartbeatMs?: number;
  /** Each output directory's manifest.json is merged at most once per this many ms by this worker (default 1000). */
  mergeMs?: number;
  /** fsync every file before renaming it into place (see setFsync). */
  fsync?: boolean;
}

/** No maxBatch: derived per job from its shape and this machine's memory (jobs.ts maxBatchFor). No allowOut: the worker writes nowhere. */
export const DEFAULT_LIMITS: JobLimits = { maxIterations: 10_000, maxImageBytes: 16 << 20, allowOut: [] };


export { workersKey, type WorkerStats };

export interface QueueWorker {
  readonly id: string;
  readonly stats: WorkerStats;
  /** Stops taking jobs, finishes those it holds, then disconnects. */
  close(): Promise<void>;
}

/** Starts a worker; it runs until close(). */
export async function startWorker(o: QueueWorkerOptions): Promise<QueueWorker> {
  const queue = o.queue ?? DEFAULT_QUEUE;
  const prefix = o.prefix ?? 'bull';
  const id = o.name ?? `${hostname()}-${process.pid}`;
  const log = o.log ?? ((line: string) => console.log(`[${new Date().toISOString()}] ${id}: ${line}`));
  const limits: JobLimits = { ...DEFAULT_LIMITS, ...o.limits };
  if (o.fsync !== undefined) setFsync(o.fsync);
  const auto = o.concurrency === undefined || o.concurrency === 'auto';
  let concurrency = auto ? 8 : (o.concurrency as number);
  const device = o.device ?? 'auto';
  const models = new ModelCache(device, o.modelDirs ?? [], log);
  const redis: Redis = createClient(o.connection);
  const lock = new RedisLock(redis);
  const stats: WorkerStats = {
    id, host: hostname(), pid: process.pid, device, concurrency, startedAt: Date.now(), lastSeen: Date.now(),
    jobs: 0, images: 0, failed: 0, batches: 0, rows: 0,
  };
  const warned = new Set<string>();

  /** The start rows of one job. */
  async function startRows(clf: Classifier, item: Item): Promise<{ x0: ImageBatch; target: number }> {
    const d = item.data;
    const [c, h, w] = clf.inputShape;
    if (d.task === 'translate') {
      // models.get checked that the job's shape is the model's.
      const target = clf.classIndex(d.to, 'to');
      return { x0: await item.decoded!, target };
    }
    const target = clf.classIndex(d.class, 'class');
    const kind: SeedKind = d.seed;
    const seeds = kind === 'uniform' ? undefined : defaultSeedsFor(clf.card?.dataset);
    if (kind !== 'uniform' && !seeds) {
      throw new RobustSynthError('ERR_BAD_INPUT', `seed '${kind}' needs fitted seed statistics for ${clf.name}, and this worker has none (use --seed uniform)`);
    }
    if (seeds && (seeds.shape[0] !== c || seeds.shape[1] !== h || seeds.shape[2] !== w)) {
      throw new RobustSynthError('ERR_BAD_INPUT', `the seed file is for ${seeds.shape.join('x')} images, the model takes ${c}x${h}x${w}`);
    }
    // Every seed index has its own stream: seeds start..end-1 alone, at the cost of any other
    // end - start seeds, equal to the single-machine run's images start..end-1 of this class.
    return { x0: jobSeeds(d, target, seeds), target };
  }

  async function runGroup(g: Group): Promise<void> {
    const clf = await models.get(g.items[0]!.data);
    const B = g.batch;
    if (!auto && B > concurrency && !warned.has(g.key)) {
      warned.add(g.key);
      log(`jobs ask for device batches of ${B} rows but --concurrency is ${concurrency}: batches run padded; raise --concurrency to ${2 * B} to fill them`);
    }
    const done: Array<{ item: Item; result: JobResult }> = [];
    const record = (item: Item, result: JobResult) => done.push({ item, result });
    const live: Array<{ item: Item; x0: ImageBatch; target: number }> = [];
    for (const item of g.items) {
      try {
        const out = item.data.out;
        if (out !== undefined) {
          // A manifest this worker cannot parse fails the job; it is never replaced.
          checkManifest(out);
          // A re-delivered job whose writes had all finished (its worker died before completing it).
          const had = jobOutputsDone(out, item.job.id!, item.data.files);
          if (had) {
            record(item, { worker: id, files: item.data.files, delivered: 'dir', losses: had.map((e) => e.loss), predicted: had.map((e) => e.predicted.index), rows: 0, real: 0, ms: 0, reused: true });
            continue;
          }
        }
        live.push({ item, ...(await startRows(clf, item)) });
      } catch (e) {
        item.reject(e);
      }
    }
    const write = live.length ? await compute(clf, g.batch, live) : undefined;
    // The device is free for the next batch once compute returns: the outputs of this one are
    // encoded and written meanwhile, on this thread, while the next computes on the native one.
    const finish = async () => {
      if (write) await write(record);
      // Outputs are in the results stream, or (--shared) their files and entries in place: the
      // jobs are done. A shared manifest follows within `mergeMs` (merged from the entry files,
      // so nothing is lost if this process dies first).
      for (const { item, result } of done) {
        item.resolve(result);
        if (item.data.out !== undefined) merger.request(item.data.out);
      }
    };
    const p = finish().catch((e: unknown) => g.items.forEach((it) => it.reject(e)));
    writing.add(p);
    void p.finally(() => writing.delete(p));
  }

  /** Runs one device batch; resolves with the function that writes its outputs (undefined if it failed: its jobs are rejected). */
  async function compute(
    clf: Classifier,
    B: number,
    live: Array<{ item: Item; x0: ImageBatch; target: number }>,
  ): Promise<((record: (item: Item, result: JobResult) => void) => Promise<void>) | undefined> {
    const first = live[0]!.item.data;
    const real = live.reduce((a, l) => a + l.x0.shape[0], 0);
    // Padded to exactly B rows with copies of the first, as the single-machine runBatched pads
    // (lib/tasks/pad.ts): every image is computed at batch size B, whatever else was waiting, so
    // its result does not depend on which worker or batch ran it.
    const x0 = padRows(concat(live.map((l) => l.x0)), real, B);
    const targets = padTargets(Int32Array.from(live.flatMap((l) => Array<number>(l.x0.shape[0]).fill(l.target))), B);
    const s = first.settings;
    const settings: TaskSettings = { eps: s.eps, step: s.step, iterations: s.iterations, constraint: s.constraint, useBest: s.useBest };
    log(`batch start: ${live.length} job(s), ${real} image(s) in ${B} rows, ${first.task} on ${first.model}`);
    const t0 = performance.now();
    let r;
    try {
      r = await runBatched(first.task, { classifier: clf, bf16: s.bf16, batch: B }, settings, x0, targets);
    } catch (e) {
      for (const l of live) l.item.reject(e);
      return undefined;
    }
    const ms = performance.now() - t0;
    stats.batches++;
    stats.rows += B;
    log(`batch done: ${real} image(s) in ${ms.toFixed(0)} ms`);
    return (record) => writeOutputs(clf, r, B, real, ms, settings, live, record);
  }

  async function writeOutputs(
    clf: Classifier,
    r: TaskResult,
    B: number,
    real: number,
    ms: number,
    settings: TaskSettings,
    live: Array<{ item: Item; x0: ImageBatch; target: number }>,
    record: (item: Item, result: JobResult) => void,
  ): Promise<void> {
    let row = 0;
    for (const { item, x0: rows } of live) {
      const d = item.data;
      const n = rows.shape[0];
      try {
        const results: Result[] = [];
        for (let j = 0; j < n; j++) {
          const i = row + j;
          const entry = {
            file: d.files[j]!,
            task: r.task,
            source: d.source,
            target: { index: r.targets[i]!, name: clf.classes[r.targets[i]!]! },
            loss: r.losses[i]!,
            predicted: { index: r.predictions[i]!, name: clf.classes[r.predictions[i]!]! },
            settings: { ...settings, model: clf.name },
          };
          const png = await encodePng(r.images, i);
          // What one waiting result may hold in Redis (docs/queue.md): an encoder that broke it would be a bug.
          if (png.length > maxPngBytes(d.shape)) throw new RobustSynthError('ERR_INTERNAL', `a ${d.shape.join('x')} PNG of ${png.length} bytes exceeds ${maxPngBytes(d.shape)}`);
          results.push({ job: item.job.id!, entry, png });
        }
        if (d.out === undefined) await publishResults(redis, resultsKey(prefix, queue, d.submission), results);
        else {
          checkManifest(d.out);
          for (const { job, entry, png } of results) {
            writeShared(d.out, entry.file, png, job);
            writeEntry(d.out, { ...entry, job } as QueueEntry);
          }
        }
        const delivered = d.out === undefined ? 'stream' : 'dir';
        record(item, { worker: id, files: d.files, delivered, losses: results.map((x) => x.entry.loss), predicted: results.map((x) => x.entry.predicted.index), rows: B, real, ms });
      } catch (e) {
        item.reject(e);
      }
      row += n;
    }
  }

  const writing = new Set<Promise<void>>();
  const batcher = new Batcher(o.windowMs ?? 50, (item) => models.preload(item.data), runGroup);
  const merger = new ManifestMerger((dir) => lock.with(lockKey(prefix, queue, dir), () => void mergeManifest(dir, [])), o.mergeMs ?? 1000, log);

  const decode = async (d: TranslateJobData) => decodeImage(jobImage(d), { channels: d.shape[0], height: d.shape[1], width: d.shape[2] });

  const processor = async (job: Job<JobData, JobResult>): Promise<JobResult> => {
    let data: JobData;
    try {
      data = checkJob(job.data, limits);
    } catch (e) {
      throw new UnrecoverableError(failureMessage(e));
    }
    if (auto && 2 * data.settings.batch > concurrency && concurrency < 256) {
      concurrency = Math.min(256, 2 * data.settings.batch);
      worker.concurrency = concurrency;
      stats.concurrency = concurrency;
    }
    try {
      const decoded = data.task === 'translate' ? decode(data) : undefined;
      decoded?.catch(() => {}); // its error is met (and reported) when the batch reads it
      return await new Promise<JobResult>((resolve, reject) => batcher.add({ job, data, rows: jobRows(data), decoded, resolve, reject }));
    } catch (e) {
      // Bad input fails its own job for good; anything else (device, memory, I/O, Redis, a
      // worker without the model) is retried with backoff, possibly on another worker.
      if (isPermanent(e)) throw new UnrecoverableError(failureMessage(e));
      throw new Error(failureMessage(e));
    }
  };

  const worker = new Worker<JobData, JobResult>(queue, processor, {
    connection: bullConnection(o.connection),
    prefix,
    concurrency,
    name: id,
    lockDuration: o.lockMs ?? 30_000,
    stalledInterval: o.stalledMs ?? 30_000,
    maxStalledCount: o.maxStalled ?? 2,
    autorun: false,
  });
  let lastError = 0;
  worker.on('error', (e) => {
    // ioredis reports every failed reconnect; one line every 5 s is enough.
    if (Date.now() - lastError > 5000) log(`redis: ${e.message}`);
    lastError = Date.now();
  });
  worker.on('completed', (job, result) => {
    stats.jobs++;
    stats.images += result?.files?.length ?? 0;
    // Completed jobs stay in Redis (their id makes resubmission skip them); their input does not need to.
    if (job.data?.task === 'translate' && job.data.image) job.updateData({ ...job.data, image: '' }).catch(() => {});
  });
  worker.on('failed', (job, err) => {
    stats.failed++;
    log(`job ${job?.id ?? '?'} (${job?.data?.files?.join(', ') ?? '?'}) failed: ${err.message}`);
  });

  const beat = async (extra: Partial<WorkerStats> = {}) => {
    stats.lastSeen = Date.now();
    await redis.hset(workersKey(prefix, queue), id, JSON.stringify({ ...stats, ...extra }));
  };
  await beat().catch(() => {});
  const hb = setInterval(() => void beat().catch(() => {}), o.heartbeatMs ?? 5000);
  const running = worker.run().catch((e: unknown) => log(`worker stopped: ${(e as Error).message}`));
  log(`ready: queue ${queue}, device ${device}, concurrency ${auto ? 'auto' : concurrency}, models: embedded${o.modelDirs?.length ? `, ${o.modelDirs.join(', ')}` : ''}`);

  let closing: Promise<void> | undefined;
  return {
    id,
    stats,
    close() {
      closing ??= (async () => {
        clearInterval(hb);
        await worker.close();
        await running;
        await Promise.all(writing);
        await merger.flush();
        await beat({ stopped: true }).catch(() => {});
        redis.disconnect();
        await models.dispose();
      })();
      return closing;
    },
  };
}
