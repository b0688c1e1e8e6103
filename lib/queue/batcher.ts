/**
 * The batcher of a queue worker: jobs wait in their BullMQ processor while it groups compatible
 * ones (same model, task, shape and settings: jobs.ts batchKey) into one device batch.
 */
import type { Job } from 'bullmq';
import type { ImageBatch } from '../tensor.js';
import { batchKey, type JobData, type JobResult } from './jobs.js';

export interface Item {
  job: Job<JobData, JobResult>;
  data: JobData;
  rows: number;
  /** Translate: the source decoded at the job's shape, started when the job arrives (it overlaps the batch computing meanwhile). */
  decoded?: Promise<ImageBatch>;
  resolve: (r: JobResult) => void;
  reject: (e: unknown) => void;
}

export interface Group {
  key: string;
  batch: number;
  items: Item[];
  rows: number;
  ready: boolean;
  /** Its model is loaded (or failed to load). */
  prepared: boolean;
  born: number;
  timer?: NodeJS.Timeout;
}

/**
 * Collects items into groups of one key, up to `batch` rows. A group is ready when it is full, or
 * when no compatible job has joined it for `windowMs` (jobs still streaming in keep it open, up to
 * 40 windows), and once its model is loaded (the first job of a group starts the load, so the
 * group keeps filling meanwhile). Ready groups run one at a time (the device runs one batch at a
 * time anyway); a ready group that has not started yet still takes compatible items.
 */
export class Batcher {
  #open: Group[] = [];
  #busy = false;
  constructor(
    private readonly windowMs: number,
    private readonly prepare: (item: Item) => Promise<unknown>,
    private readonly run: (g: Group) => Promise<void>,
  ) {}

  add(item: Item): void {
    const key = batchKey(item.data);
    const batch = item.data.settings.batch;
    let g = this.#open.find((x) => x.key === key && x.rows + item.rows <= x.batch);
    if (!g) {
      const fresh: Group = { key, batch, items: [], rows: 0, ready: false, prepared: false, born: Date.now() };
      this.prepare(item)
        .catch(() => {}) // the group's run meets the same error and fails its jobs with it
        .finally(() => {
          fresh.prepared = true;
          this.#pump();
        });
      this.#open.push(fresh);
      g = fresh;
    }
    g.items.push(item);
    g.rows += item.rows;
    clearTimeout(g.timer);
    if (g.rows >= g.batch || Date.now() - g.born >= 40 * this.windowMs) g.ready = true;
    else {
      const group = g;
      group.timer = setTimeout(() => {
        group.ready = true;
        this.#pump();
      }, this.windowMs);
    }
    this.#pump();
  }

  #pump(): void {
    if (this.#busy) return;
    const i = this.#open.findIndex((g) => g.ready && g.prepared);
    if (i < 0) return;
    const g = this.#open.splice(i, 1)[0]!;
    clearTimeout(g.timer);
    this.#busy = true;
    this.run(g)
      .catch((e: unknown) => g.items.forEach((it) => it.reject(e)))
      .finally(() => {
        this.#busy = false;
        this.#pump();
      });
  }
}
