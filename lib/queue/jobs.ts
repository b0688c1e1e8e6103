/**
 * What a queue job is: its data (a model named by name and hash, a task, resolved settings,
 * the input, where its outputs go), its id (a hash of all that, so resubmitting the same work
 * finds the same job), checks a worker applies before trusting it, and which failures are
 * worth retrying.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { totalmem } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Constraint } from '../classifier.js';
import { isRobustSynthError, RobustSynthError } from '../errors.js';
import { MAX_SEED_INDEX, SEED_KINDS, type SeedKind } from '../seeds.js';
import { SUBMISSION_ID } from './keys.js';
import * as is from '../validate.js';

/** The job format's version: a worker refuses jobs of another. */
export const JOB_VERSION = 2;
/** The queue's default name. */
export const DEFAULT_QUEUE = 'robust-synth';

export type QueueTask = 'translate' | 'generate';

/** The settings of a job, all resolved at submit time (no defaults are left to the worker). */
export interface JobSettings {
  eps: number;
  step: number;
  iterations: number;
  constraint: Constraint;
  useBest: boolean;
  bf16: boolean;
  /**
   * Rows of every native PGD call the job runs in. A worker pads a device batch that holds fewer
   * rows with copies, because an image's result depends on the batch size it is computed at
   * (float rounding, amplified by PGD: docs/queue.md), never on the other images in it.
   */
  batch: number;
}

interface JobBase {
  v: typeof JOB_VERSION;
  task: QueueTask;
  /** A model name (never a path): each worker resolves it in its own allow-list. */
  model: string;
  /** sha256 of the model file: a worker whose file differs refuses the job. */
  modelSha256: string;
  /** The model's per-sample input shape [c, h, w]. */
  shape: [number, number, number];
  settings: JobSettings;
  /** The submission whose results stream receives the outputs (PNG bytes and manifest entries). */
  submission: string;
  /**
   * Only with `submit --shared`: an absolute directory every worker sees, which the worker writes
   * the outputs into itself (inside its --allow-out) instead of returning them through Redis.
   */
  out?: string;
  /** Output file names, one per image the job makes. */
  files: string[];
  /** What the manifest says the output came from (the source file, or seed:KIND). */
  source: string;
}

export interface TranslateJobData extends JobBase {
  task: 'translate';
  /** Target class index. */
  to: number;
  /** The source image file's bytes, base64. Emptied once the job completed. */
  image: string;
  /** sha256 of those bytes. */
  imageSha256: string;
}

export interface GenerateJobData extends JobBase {
  task: 'generate';
  /** Class index. */
  class: number;
  seed: SeedKind;
  randomSeed: number;
  /** Seeds start..end-1 of the class's sequence (the single-machine run's images start..end-1 of that class). */
  start: number;
  end: number;
}

export type JobData = TranslateJobData | GenerateJobData;

/** What a completed job returns (kept in Redis: small; the outputs travel in the results stream). */
export interface JobResult {
  worker: string;
  files: string[];
  /** Where the outputs went: the submission's results stream, or the shared directory. */
  delivered: 'stream' | 'dir';
  /** Final loss and predicted class per file. */
  losses: number[];
  predicted: number[];
  /** Rows of the device batch it ran in, real ones among them, and its compute time. */
  rows: number;
  real: number;
  ms: number;
  /** True when the outputs were already there (a re-delivered job that had finished its writes). */
  reused?: boolean;
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/**
 * The job id: a hash of the model's hash, the task, the shape, the settings, the input (its
 * hash, or the seed range) and where the outputs go. Same work, same id: BullMQ keeps one job
 * per id, so a resubmission finds the finished job instead of adding another.
 */
export function jobId(d: JobData): string {
  const input =
    d.task === 'translate'
      ? { to: d.to, image: d.imageSha256 }
      : { class: d.class, seed: d.seed, randomSeed: d.randomSeed, start: d.start, end: d.end };
  const s = d.settings;
  const canonical = JSON.stringify([
    d.v, d.task, d.modelSha256, d.shape,
    [s.eps, s.step, s.iterations, s.constraint, s.useBest, s.bf16, s.batch],
    input, d.out ?? ['stream', d.submission], d.files,
  ]);
  return `rs-${d.task}-${sha256(canonical).slice(0, 40)}`;
}

/** Jobs with the same key may share a device batch: same model, task, shape and settings. */
export function batchKey(d: JobData): string {
  const s = d.settings;
  return JSON.stringify([d.model, d.modelSha256, d.task, d.shape, s.eps, s.step, s.iterations, s.constraint, s.useBest, s.bf16, s.batch]);
}

/** Rows a job contributes to a device batch. */
export function jobRows(d: JobData): number {
  return d.task === 'translate' ? 1 : d.end - d.start;
}

export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** An output name: a plain file name (no directory part, not hidden), ending in .png. */
const FILE_NAME = /^[^./\\\0][^/\\\0]{0,250}\.png$/;

/** A model name a job may carry: no path, no .pt (resolveModel would read either as a path). */
export function checkModelName(name: unknown, what = 'model'): string {
  if (typeof name !== 'string' || !MODEL_NAME.test(name) || name.endsWith('.pt') || name.includes('..')) {
    throw new RobustSynthError('ERR_BAD_INPUT', `${what} must be a model name (letters, digits, . _ -; no path, no .pt), got ${JSON.stringify(name)}: workers load models by name from their own allow-list`);
  }
  return name;
}

/** A worker's limits on what a job may ask of it. */
export interface JobLimits {
  maxIterations: number;
  /** Rows of one device batch; undefined: derived from the job's shape and this machine's memory (maxBatchFor). */
  maxBatch?: number;
  maxImageBytes: number;
  /** A job that asks the worker to write files (`out`) must name a directory inside one of these; none: such jobs are refused. */
  allowOut: string[];
}

/**
 * Bytes one row of a device batch may take, per input value: the input and its PGD copies, plus
 * the activations of a forward and backward pass kept for the gradient. 300 x 4 bytes per input
 * value is about ResNet50's fp32 training footprint at 224x224 (about 180 MB an image); small
 * networks take far less, so this errs on the safe side.
 */
export const BYTES_PER_INPUT_VALUE = 300 * 4;

/**
 * The largest device batch a worker takes for inputs of `shape` when no --max-batch is given:
 * what fits in half of the machine's memory at BYTES_PER_INPUT_VALUE, at least 1, at most 4096.
 * 224x224x3 on a 24 GB machine: 68 rows; 28x28: 4096.
 */
export function maxBatchFor([c, h, w]: [number, number, number], memoryBytes = totalmem()): number {
  return Math.max(1, Math.min(4096, Math.floor(memoryBytes / 2 / (c * h * w * BYTES_PER_INPUT_VALUE))));
}

/** The path with symbolic links resolved as far as it exists (the rest may be created later). */
function realish(path: string): string {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail);
    } catch {
      const up = dirname(head);
      if (up === head) return resolve(path);
      tail.unshift(basename(head));
      head = up;
    }
  }
}

function inside(dir: string, path: string): boolean {
  const d = realish(dir);
  const p = realish(path);
  return p === d || p.startsWith(d.endsWith('/') ? d : `${d}/`);
}

/**
 * Checks job data before a worker acts on it: anything malformed is ERR_BAD_INPUT (the job fails
 * for good). Jobs come from whoever can write to Redis, so nothing in them is trusted: the model
 * is a name, the output names are plain file names, the sizes are bounded.
 */
export function checkJob(data: unknown, limits: JobLimits): JobData {
  if (!is.isObject(data)) throw is.invalid('job data', 'object', data);
  if (data.v !== JOB_VERSION) throw new RobustSynthError('ERR_BAD_INPUT', `job format ${String(data.v)} is not ${JOB_VERSION}: update the worker or the submitter`);
  const task = is.oneOf('task', data.task, ['translate', 'generate'] as const);
  checkModelName(data.model);
  if (typeof data.modelSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(data.modelSha256)) throw is.invalid('modelSha256', 'sha256 hex', data.modelSha256);
  const shape = data.shape;
  if (!Array.isArray(shape) || shape.length !== 3) throw is.invalid('shape', '[c, h, w]', shape);
  shape.forEach((v, i) => is.integer(`shape[${i}]`, v, { min: 1, max: 16384 }));
  if (!is.isObject(data.settings)) throw is.invalid('settings', 'object', data.settings);
  const s = data.settings;
  is.finiteNumber('eps', s.eps, { min: 0 });
  is.finiteNumber('step', s.step, { min: 0 });
  is.integer('iterations', s.iterations, { min: 0, max: limits.maxIterations });
  is.oneOf('constraint', s.constraint, ['2', 'inf', 'unconstrained'] as const);
  is.boolean('useBest', s.useBest);
  is.boolean('bf16', s.bf16);
  is.integer('batch', s.batch, { min: 1 });
  // Refused before anything is decoded or allocated: the batch's memory follows from its shape.
  const maxBatch = limits.maxBatch ?? maxBatchFor(shape as [number, number, number]);
  if ((s.batch as number) > maxBatch) {
    throw new RobustSynthError('ERR_BAD_INPUT', `the job asks for device batches of ${String(s.batch)} rows of ${shape.join('x')}; this worker takes at most ${maxBatch} (${limits.maxBatch === undefined ? "derived from the shape and this machine's memory; --max-batch sets it" : '--max-batch'}): submit with a smaller --batch`);
  }
  if (typeof data.submission !== 'string' || !SUBMISSION_ID.test(data.submission)) throw is.invalid('submission', 'submission id', data.submission);
  let out: string | undefined;
  if (data.out !== undefined) {
    if (typeof data.out !== 'string' || !isAbsolute(data.out)) throw is.invalid('out', 'absolute directory path', data.out);
    out = resolve(data.out);
    if (!limits.allowOut.length) {
      throw new RobustSynthError('ERR_BAD_INPUT', `the job asks this worker to write into ${out}, and this worker writes nowhere (no --allow-out); submit without --shared, or start workers with --allow-out DIR`);
    }
    // Symbolic links resolved: a link inside an allowed directory that points outside it is refused.
    if (!limits.allowOut.some((d) => inside(d, out!))) {
      throw new RobustSynthError('ERR_BAD_INPUT', `the job's output directory ${out} is outside this worker's --allow-out (${limits.allowOut.join(', ')})`);
    }
  }
  if (!Array.isArray(data.files) || data.files.length === 0 || !data.files.every((f) => typeof f === 'string' && FILE_NAME.test(f))) {
    throw new RobustSynthError('ERR_BAD_INPUT', 'job files must be plain .png file names (no directories)');
  }
  if (typeof data.source !== 'string') throw is.invalid('source', 'string', data.source);
  if (task === 'translate') {
    is.integer('to', data.to, { min: 0, max: 1e6 });
    if (data.files.length !== 1) throw new RobustSynthError('ERR_BAD_INPUT', 'a translate job makes one file');
    if (typeof data.image !== 'string') throw is.invalid('image', 'base64 string', data.image);
    if (data.image.length > Math.ceil(limits.maxImageBytes / 3) * 4 + 4) {
      throw new RobustSynthError('ERR_BAD_INPUT', `the job's image is larger than this worker's limit (${limits.maxImageBytes} bytes)`);
    }
    if (typeof data.imageSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(data.imageSha256)) throw is.invalid('imageSha256', 'sha256 hex', data.imageSha256);
  } else {
    is.integer('class', data.class, { min: 0, max: 1e6 });
    is.oneOf('seed', data.seed, SEED_KINDS);
    is.integer('randomSeed', data.randomSeed, { min: 0, max: 2 ** 31 });
    const start = is.integer('start', data.start, { min: 0, max: MAX_SEED_INDEX - 1 });
    const end = is.integer('end', data.end, { min: start + 1, max: Math.min(MAX_SEED_INDEX, start + (s.batch as number)) });
    if (data.files.length !== end - start) throw new RobustSynthError('ERR_BAD_INPUT', 'a generate job makes one file per seed (end - start)');
  }
  return { ...(data as unknown as JobData), ...(out === undefined ? {} : { out }) };
}

/** The image bytes of a translate job, checked against their hash. */
export function jobImage(d: TranslateJobData): Buffer {
  const bytes = Buffer.from(d.image, 'base64');
  if (d.image === '') throw new RobustSynthError('ERR_BAD_INPUT', 'the job carries no image (it completed before and its input was dropped); resubmit it');
  if (sha256(bytes) !== d.imageSha256) throw new RobustSynthError('ERR_BAD_INPUT', "the job's image does not match its sha256");
  return bytes;
}

/** Errors about the job itself: retrying cannot help, the job fails for good (BullMQ's UnrecoverableError). */
export const PERMANENT_CODES = ['ERR_BAD_INPUT', 'ERR_BAD_IMAGE', 'ERR_MODEL_OUTPUT'] as const;

export function isPermanent(e: unknown): boolean {
  return isRobustSynthError(e) && (PERMANENT_CODES as readonly string[]).includes(e.code);
}

/** An error's code, for the failure message ('ERR_IO' for a file system error, 'ERR_INTERNAL' when none). */
export function errorCode(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('ERR_')) return code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return 'ERR_IO';
  return 'ERR_INTERNAL';
}

/** The message a failed job carries: `CODE: message`, which the submitter reads back. */
export function failureMessage(e: unknown): string {
  const msg = String((e as Error)?.message ?? e).replace(/\s*\n\s*/g, ' ');
  return `${errorCode(e)}: ${msg}`;
}

/** The code and message of a failed job's reason. */
export function parseFailure(reason: string | undefined): { code: string; message: string } {
  const m = /^(ERR_[A-Z_]+): (.*)$/s.exec(reason ?? '');
  return m ? { code: m[1]!, message: m[2]! } : { code: 'ERR_INTERNAL', message: reason ?? 'unknown failure' };
}

export { sha256 as sha256Hex };
