/**
 * Submitting work: planning jobs (one per source image for translate, one per small run of
 * seeds for generate), adding them under their content-derived ids (finished ones are skipped,
 * failed ones retried, lost ones re-added), and following them to the end with BullMQ's
 * QueueEvents, plus a periodic check of job states for anything the event stream missed.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { slug } from '../cli/task-command.js';
import { RobustSynthError } from '../errors.js';
import { modelsDir, readCard, resolveModel, sha256File, type ModelCard } from '../models.js';
import type { SeedKind } from '../seeds.js';
import { defaultSettings, type TaskName } from '../tasks/common.js';
import * as is from '../validate.js';
import {
  checkModelName, DEFAULT_QUEUE, JOB_VERSION, jobId, parseFailure, PERMANENT_CODES, sha256Hex,
  type GenerateJobData, type JobData, type JobResult, type JobSettings, type QueueTask, type TranslateJobData,
} from './jobs.js';
import { bullConnection, createClient } from './redis.js';
import { isDir, lockKey, mergeManifest, RedisLock, removePartials } from './storage.js';

/** A model as the submitter knows it: by name, with the hash and shape jobs carry. */
export interface ModelRef {
  name: string;
  sha256: string;
  shape: [number, number, number];
  classes: string[];
  card?: ModelCard;
}

/**
 * Resolves a model name the way workers will (the embedded models, then `modelDirs`), for its
 * card: hash, shape, classes. A card without sha256 means hashing the file here.
 */
export async function resolveModelRef(name: string, o: { modelDirs?: string[]; inputShape?: [number, number, number] } = {}): Promise<ModelRef> {
  checkModelName(name, '--model');
  const resolved = resolveModel(name, o.modelDirs ?? []);
  const card = resolved.card ?? readCard(resolved.path);
  const shape = o.inputShape ?? card?.inputShape;
  if (!shape) throw new RobustSynthError('ERR_BAD_INPUT', `${name} has no model card: give its input shape (--input-shape C,H,W)`);
  return { name, sha256: card?.sha256 ?? (await sha256File(resolved.path)), shape, classes: card?.classes ?? [], card };
}

/** A class name or index, against the model card's class list (as Classifier.classIndex reads it). */
export function classIndex(m: ModelRef, ref: string | number, name: string): number {
  if (typeof ref === 'string') {
    const i = m.classes.findIndex((c) => c.toLowerCase() === ref.toLowerCase());
    if (i >= 0) return i;
    if (/^\d+$/.test(ref)) return classIndex(m, Number(ref), name);
    throw new RobustSynthError('ERR_BAD_INPUT', `Unknown class '${ref}' for ${name}; ${m.name} knows: ${m.classes.join(', ')}`);
  }
  return is.integer(name, ref, { min: 0, max: m.classes.length ? m.classes.length - 1 : 1e6 });
}

export interface SettingsOverrides {
  eps?: number;
  step?: number;
  iterations?: number;
  batch?: number;
  bf16?: boolean;
}

/** The task's settings at the model's shape with the overrides, all resolved now (as the single-machine commands resolve them). */
export function resolveJobSettings(task: QueueTask, shape: [number, number, number], o: SettingsOverrides): JobSettings {
  const s = defaultSettings(task as TaskName, shape);
  const [, h, w] = shape;
  return {
    eps: o.eps === undefined ? s.eps : is.finiteNumber('eps', o.eps, { min: 0 }),
    step: o.step === undefined ? s.step : is.finiteNumber('step', o.step, { min: 0 }),
    iterations: o.iterations === undefined ? s.iterations : is.integer('iterations', o.iterations, { min: 0, max: 1e7 }),
    constraint: s.constraint,
    useBest: s.useBest,
    bf16: o.bf16 ?? false,
    batch: is.integer('batch', o.batch ?? (h * w <= 64 * 64 ? 64 : 8), { min: 1, max: 1 << 20 }),
  };
}

/** One job to submit: its id and outputs now, its data (image bytes included) when it is added. */
export interface PlannedJob {
  id: string;
  task: QueueTask;
  out: string;
  files: string[];
  source: string;
  data(): Promise<JobData>;
}

export const IMAGE_FILE = /\.(png|jpe?g|webp|gif|tiff?|avif)$/i;

/** The source files of --image FILE|DIR, as the translate command lists them. */
export function listImages(src: string): { files: string[]; single: boolean } {
  if (!existsSync(src)) throw new RobustSynthError('ERR_BAD_IMAGE', `not found: ${src}`);
  const single = !statSync(src).isDirectory();
  if (single) return { files: [src], single };
  const files = readdirSync(src).filter((f) => IMAGE_FILE.test(f)).sort().map((f) => join(src, f));
  return { files, single };
}

/**
 * One translate job per source file. Files that cannot be read, or are larger than
 * `maxImageBytes`, are skipped with a reason; files that read but do not decode become jobs
 * and fail on the worker with ERR_BAD_IMAGE, alone.
 */
export function planTranslate(o: {
  model: ModelRef;
  files: string[];
  to: number;
  settings: JobSettings;
  out: string;
  maxImageBytes?: number;
}): { jobs: PlannedJob[]; skipped: Array<{ path: string; reason: string }> } {
  const max = o.maxImageBytes ?? 16 << 20;
  const className = o.model.classes[o.to] ?? String(o.to);
  const jobs: PlannedJob[] = [];
  const skipped: Array<{ path: string; reason: string }> = [];
  const names = new Set<string>();
  for (const path of o.files) {
    let bytes: Buffer;
    try {
      if (statSync(path).size > max) throw new Error(`larger than ${max} bytes`);
      bytes = readFileSync(path);
    } catch (e) {
      skipped.push({ path, reason: (e as Error).message });
      continue;
    }
    const file = `${basename(path, extname(path))}-to-${slug(className)}.png`;
    if (names.has(file)) {
      skipped.push({ path, reason: `another source also makes ${file}` });
      continue;
    }
    names.add(file);
    const base: Omit<TranslateJobData, 'image'> = {
      v: JOB_VERSION, task: 'translate', model: o.model.name, modelSha256: o.model.sha256, shape: o.model.shape,
      settings: o.settings, out: o.out, files: [file], source: path, to: o.to, imageSha256: sha256Hex(bytes),
    };
    const id = jobId({ ...base, image: '' });
    jobs.push({
      id, task: 'translate', out: o.out, files: [file], source: path,
      async data() {
        const now = readFileSync(path);
        if (sha256Hex(now) !== base.imageSha256) throw new RobustSynthError('ERR_BAD_IMAGE', `${path} changed while it was being submitted`);
        return { ...base, image: now.toString('base64') };
      },
    });
  }
  return { jobs, skipped };
}

/**
 * Generation jobs: per class, its `count` seeds in runs of `perJob`. Output names and seeds are
 * those of the single-machine generate command (`CLASS-SEED-i.png`, i counting over all classes).
 */
export function planGenerate(o: {
  model: ModelRef;
  classes: number[];
  count: number;
  seed: SeedKind;
  randomSeed: number;
  perJob: number;
  settings: JobSettings;
  out: string;
}): PlannedJob[] {
  const count = is.integer('count', o.count, { min: 1, max: 100_000 });
  const perJob = is.integer('perJob', o.perJob, { min: 1, max: o.settings.batch });
  const randomSeed = is.integer('randomSeed', o.randomSeed, { min: 0, max: 2 ** 31 });
  if (o.seed !== 'uniform') {
    const dataset = o.model.card?.dataset;
    if (!dataset || !existsSync(join(modelsDir(), `${dataset}.seeds`))) {
      throw new RobustSynthError('ERR_BAD_INPUT', `seed '${o.seed}' needs fitted seed statistics for ${o.model.name}, which workers find only for the embedded models; use --seed uniform`);
    }
  }
  const classes = Array.from(new Set(o.classes));
  const jobs: PlannedJob[] = [];
  classes.forEach((k, ci) => {
    for (let start = 0; start < count; start += perJob) {
      const end = Math.min(count, start + perJob);
      const files = Array.from({ length: end - start }, (_, j) => `${slug(o.model.classes[k] ?? String(k))}-${o.seed}-${ci * count + start + j}.png`);
      const data: GenerateJobData = {
        v: JOB_VERSION, task: 'generate', model: o.model.name, modelSha256: o.model.sha256, shape: o.model.shape,
        settings: o.settings, out: o.out, files, source: `seed:${o.seed}`, class: k, seed: o.seed, randomSeed, start, end,
      };
      jobs.push({ id: jobId(data), task: 'generate', out: o.out, files, source: data.source, data: async () => data });
    }
  });
  return jobs;
}

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
}

/** Adds the jobs (skipping finished ones) and, unless detached, follows them until each has completed or failed. */
export async function submitJobs(planned: PlannedJob[], o: SubmitOptions): Promise<SubmitSummary> {
  const name = o.queue ?? DEFAULT_QUEUE;
  const prefix = o.prefix ?? 'bull';
  const redis = createClient(o.connection);
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
          if (isDir(p.out) && !p.files.every((f) => existsSync(join(p.out, f)))) {
            await queue.remove(p.id);
            toAdd.push(p);
            track(p.id);
            added++;
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
          toAdd.push(p);
          track(p.id);
          added++;
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
        await new Promise((r) => setTimeout(r, Math.min(1000, pollMs)));
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
              lost.push(byId.get(id)!);
              readded++;
            }
          }
          await add(lost);
        }
      }
      // The workers merged the manifest as they went; one more merge repairs any update a lost
      // lock let slip, and temp files of killed writers of these jobs are removed.
      const dirs = new Set(planned.map((p) => p.out));
      for (const dir of dirs) {
        if (!isDir(dir)) continue;
        await new RedisLock(redis).with(lockKey(prefix, name, dir), () => mergeManifest(dir, []));
        removePartials(dir, planned.filter((p) => p.out === dir).map((p) => p.id));
      }
    }
    return { ...progress(), failures, added, alreadyQueued, retried, readded };
  } finally {
    await events?.close().catch(() => {});
    await queue.close().catch(() => {});
    redis.disconnect();
  }
}
