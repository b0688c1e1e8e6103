/**
 * The playground's jobs: one queue per model (one job runs at a time on each), the state each
 * job goes through (queued -> running -> done | cancelled | failed), and the events its
 * watchers receive (status, progress, preview).
 */
import { randomBytes } from 'node:crypto';
import type { Classifier } from '../classifier.js';
import { RobustSynthError, type ErrorCode } from '../errors.js';
import { jobError } from './http-errors.js';
import { gridPng } from '../images.js';
import type { TaskProgress } from '../tasks/common.js';
import type { ImageBatch } from '../tensor.js';
import type { Preview } from './previews.js';
import { runJob, type JobOutput, type JobSpec } from './run.js';

export type JobState = 'queued' | 'running' | 'done' | 'cancelled' | 'failed';
export type JobEvent =
  | { type: 'status'; data: JobStatus }
  | { type: 'progress'; data: { step: number; total: number; loss: number; elapsedMs: number; done: number; inBatch: number; images: number } }
  | { type: 'preview'; data: { step: number; total: number; png: string } };

export interface JobStatus {
  id: string;
  model: string;
  task: string;
  state: JobState;
  /** Jobs ahead of this one on its model (the running one included); 0 once it runs. */
  position: number;
  /** Jobs on this model: running plus waiting. */
  queueLength: number;
  error?: { code: ErrorCode; message: string };
  result?: {
    files: Array<{ name: string; url: string; type: string }>;
    manifest: string;
    zip: string;
    page: string;
    entries: JobOutput['entries'];
    ms: number;
    steps: number;
  };
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
}

export class Job {
  /** 128 random bits (base64url): a job's id is its only name, so it must not be guessable. */
  readonly id = randomBytes(16).toString('base64url');
  readonly createdAt = Date.now();
  readonly controller = new AbortController();
  state: JobState = 'queued';
  position = 0;
  queueLength = 0;
  startedAt?: number;
  finishedAt?: number;
  error?: { code: ErrorCode; message: string };
  output?: JobOutput;
  lastProgress?: Extract<JobEvent, { type: 'progress' }>['data'];
  lastPreview?: Extract<JobEvent, { type: 'preview' }>['data'];
  #watchers = new Set<(e: JobEvent) => void>();

  constructor(
    readonly spec: JobSpec,
    /** The client that submitted it (guards.ts); only that client sees it. */
    readonly owner: string,
    /** Resolves the job's source image at the model's shape, once the model is loaded; dropped once used (it holds an upload's bytes). */
    public source: ((clf: Classifier) => Promise<{ image: ImageBatch; name: string }>) | undefined,
  ) {}

  get finished(): boolean {
    return this.state === 'done' || this.state === 'cancelled' || this.state === 'failed';
  }

  status(): JobStatus {
    const base = `/api/jobs/${this.id}`;
    return {
      id: this.id,
      model: this.spec.model,
      task: this.spec.task,
      state: this.state,
      position: this.position,
      queueLength: this.queueLength,
      ...(this.error ? { error: this.error } : {}),
      ...(this.output
        ? {
            result: {
              files: this.output.files.map((f) => ({ name: f.name, type: f.type, url: `${base}/files/${encodeURIComponent(f.name)}` })),
              manifest: `${base}/files/manifest.json`,
              zip: `${base}/results.zip`,
              page: `/jobs/${this.id}`,
              entries: this.output.entries,
              ms: this.output.ms,
              steps: this.output.steps,
            },
          }
        : {}),
      createdAt: this.createdAt,
      ...(this.startedAt ? { startedAt: this.startedAt } : {}),
      ...(this.finishedAt ? { finishedAt: this.finishedAt } : {}),
    };
  }

  /** Calls `fn` with every later event; returns the unsubscribe. */
  watch(fn: (e: JobEvent) => void): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  emit(e: JobEvent): void {
    for (const fn of this.#watchers) fn(e);
  }

  emitStatus(): void {
    this.emit({ type: 'status', data: this.status() });
  }

  finish(state: 'done' | 'cancelled' | 'failed', error?: { code: ErrorCode; message: string }): void {
    this.state = state;
    this.error = error;
    this.position = 0;
    this.finishedAt = Date.now();
    this.emitStatus();
  }
}

/** A configured model: where it is, and its classifier once loaded. */
export class ModelSlot {
  #clf: Promise<Classifier> | undefined;
  readonly queue: Job[] = [];
  running: Job | undefined;

  constructor(
    readonly name: string,
    readonly path: string,
    readonly load: () => Promise<Classifier>,
  ) {}

  /** Loads the model once; a failed load is retried on the next call. */
  classifier(): Promise<Classifier> {
    if (!this.#clf) {
      this.#clf = this.load();
      this.#clf.catch(() => {
        this.#clf = undefined;
      });
    }
    return this.#clf;
  }

  get loaded(): Promise<Classifier> | undefined {
    return this.#clf;
  }
}

export interface SchedulerOptions {
  /** Waiting jobs per model beyond which new ones are refused. */
  maxQueue: number;
  /** A job running longer is aborted. */
  jobTimeoutMs: number;
  /** Finished jobs kept (with their files) for download; the oldest go first. */
  keepJobs: number;
}

/** What a failure says in a job's status: the library's code, and its message only where it is about the request (http-errors.ts). */
export const errorInfo = jobError;

export class Scheduler {
  readonly jobs = new Map<string, Job>();
  #closed = false;

  constructor(readonly options: SchedulerOptions) {}

  /** Queues a job on its model; refused with 429 when the model's queue is full. */
  submit(slot: ModelSlot, job: Job): void {
    if (this.#closed) throw Object.assign(new RobustSynthError('ERR_DISPOSED', 'the server is shutting down'), { statusCode: 503, expose: true });
    if (slot.queue.length >= this.options.maxQueue) {
      throw Object.assign(
        new RobustSynthError('ERR_BAD_INPUT', `the queue for ${slot.name} is full (${slot.queue.length} jobs waiting); try again when one has finished`),
        { statusCode: 429, expose: true },
      );
    }
    this.jobs.set(job.id, job);
    slot.queue.push(job);
    this.#positions(slot);
    this.#prune();
    void this.#pump(slot);
  }

  /** Cancels a queued job at once, a running one within a PGD step (it reports ERR_ABORTED). */
  cancel(slot: ModelSlot, job: Job, reason = 'cancelled'): void {
    if (job.finished) return;
    const i = slot.queue.indexOf(job);
    if (i >= 0) {
      slot.queue.splice(i, 1);
      job.source = undefined;
      job.controller.abort();
      job.finish('cancelled', { code: 'ERR_ABORTED', message: `${reason} before it started` });
      this.#positions(slot);
      return;
    }
    job.controller.abort(reason);
  }

  /** Cancels everything (server shutdown); resolves once no job runs (an aborted one stops within a PGD step), or after waitMs. */
  async close(slots: Iterable<ModelSlot>, waitMs = 5000): Promise<void> {
    this.#closed = true;
    const list = [...slots];
    for (const slot of list) {
      for (const job of [...slot.queue]) this.cancel(slot, job, 'the server shut down');
      if (slot.running) this.cancel(slot, slot.running, 'the server shut down');
    }
    const until = Date.now() + waitMs;
    while (list.some((s) => s.running) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  /** Re-numbers the waiting jobs and tells each its place. */
  #positions(slot: ModelSlot): void {
    const ahead = slot.running ? 1 : 0;
    const length = slot.queue.length + ahead;
    if (slot.running) {
      slot.running.queueLength = length;
    }
    slot.queue.forEach((job, i) => {
      job.position = ahead + i;
      job.queueLength = length;
      job.emitStatus();
    });
  }

  /** Drops the oldest finished jobs beyond keepJobs. */
  #prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.finished);
    for (const j of finished.slice(0, Math.max(0, finished.length - this.options.keepJobs))) this.jobs.delete(j.id);
  }

  async #pump(slot: ModelSlot): Promise<void> {
    if (slot.running || slot.queue.length === 0) return;
    const job = slot.queue.shift()!;
    slot.running = job;
    job.state = 'running';
    job.position = 0;
    job.startedAt = Date.now();
    this.#positions(slot);
    job.emitStatus();
    const timer = setTimeout(() => job.controller.abort(`timed out after ${Math.round(this.options.jobTimeoutMs / 1000)} s`), this.options.jobTimeoutMs);
    try {
      const clf = await slot.classifier();
      if (job.controller.signal.aborted) throw new RobustSynthError('ERR_ABORTED', 'the job was aborted');
      const source = job.source ? await job.source(clf) : undefined;
      job.source = undefined;
      job.output = await runJob(job.spec, clf, {
        signal: job.controller.signal,
        source,
        onProgress: (p: TaskProgress) => {
          job.lastProgress = { step: p.step, total: p.total, loss: p.loss, elapsedMs: p.elapsedMs, done: p.done, inBatch: p.inBatch, images: p.images };
          job.emit({ type: 'progress', data: job.lastProgress });
        },
        onPreview: async (p: Preview) => {
          const png = await gridPng(p.images, { gap: 0 });
          job.lastPreview = { step: p.step, total: p.total, png: `data:image/png;base64,${png.toString('base64')}` };
          job.emit({ type: 'preview', data: job.lastPreview });
        },
      });
      job.finish('done');
    } catch (e) {
      const info = errorInfo(e);
      if (job.controller.signal.aborted || info.code === 'ERR_ABORTED') {
        const reason = job.controller.signal.reason;
        const why = typeof reason === 'string' ? reason : 'cancelled';
        job.finish('cancelled', { code: 'ERR_ABORTED', message: `${why} (${info.message})` });
      } else {
        job.finish('failed', info);
      }
    } finally {
      job.source = undefined;
      clearTimeout(timer);
      slot.running = undefined;
      this.#positions(slot);
      this.#prune();
      void this.#pump(slot);
    }
  }
}
