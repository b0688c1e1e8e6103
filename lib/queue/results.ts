/**
 * Results through Redis: a worker adds each output (the PNG bytes and its manifest entry) to its
 * submission's results stream; the submitter (or `robust-synth collect`) writes them into its own
 * output directory, atomically, rewrites the manifest as a single-machine run writes it, and only
 * then deletes them from the stream. Workers and submitter share Redis and nothing else.
 *
 * Why a stream per submission rather than BullMQ return values (docs/queue.md): BullMQ copies a
 * job's return value into the queue's event stream (kept to ~10,000 events) as well as the job
 * hash, so every PNG would sit in Redis twice, and the job record that makes a resubmission skip
 * finished work would keep the bytes for as long as the record lives. A stream holds each output
 * once, binary (no base64), can be read from where a collector stopped, and XDEL drops exactly
 * what has been written to disk.
 */
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { writeFileAtomic } from '../atomic-write.js';
import { RobustSynthError } from '../errors.js';
import { MANIFEST_FILE, readManifest, writeManifest, type ManifestEntry } from '../manifest.js';

type ResultEntry = ManifestEntry;

export type { ManifestEntry as ResultEntry };

export interface Result {
  job: string;
  entry: ResultEntry;
  png: Buffer;
}

/**
 * The most bytes an output PNG of `shape` takes: 8-bit samples, 3 channels (the encoder writes
 * grey as RGB), a filter byte a row, deflate's stored-block headers, and the PNG's own chunks.
 * No encoder output is larger.
 */
export function maxPngBytes([c, h, w]: [number, number, number]): number {
  const raw = Math.max(3, c) * h * w + h; // c is 1 or 3: encodePng takes nothing else
  return raw + 5 * Math.ceil(raw / 65535) + 512;
}

/**
 * The most bytes one waiting result holds in Redis for outputs of `shape`: the PNG, its manifest
 * entry (under 1 KB) and the stream's bookkeeping. 3x224x224: about 152 KB (100-150 KB typical);
 * 1x28x28: about 4 KB (1-2.5 KB typical).
 */
export function maxResultBytes(shape: [number, number, number]): number {
  return maxPngBytes(shape) + 1024 + 128;
}

/** Adds a job's outputs to the results stream, in one round trip. */
export async function publishResults(redis: Redis, key: string, results: Result[]): Promise<void> {
  const multi = redis.multi();
  for (const r of results) multi.xadd(key, '*', 'job', r.job, 'file', r.entry.file, 'entry', JSON.stringify(r.entry), 'png', r.png);
  const replies = await multi.exec();
  for (const [err] of replies ?? []) if (err) throw new RobustSynthError('ERR_REDIS', `cannot add results to ${key}: ${err.message}`);
}

/** DIR/manifest.json's entries (none without a file). One that does not parse is ERR_BAD_INPUT, and is never overwritten. */
export function readManifestStrict(dir: string): ResultEntry[] {
  return readManifest(join(dir, MANIFEST_FILE));
}

/**
 * Writes a submission's results into `out` as they arrive. The manifest keeps the entries it
 * had for other files, in their order, then this submission's in plan order (`order`: file name
 * to its position), which is what a single-machine run into a fresh directory writes.
 */
export class Collector {
  #last = '0-0';
  #entries = new Map<string, ResultEntry>();
  #others: ResultEntry[];
  /** Output files written by this collector. */
  readonly written = new Set<string>();

  constructor(
    private readonly redis: Redis,
    readonly key: string,
    readonly out: string,
    private order: Map<string, number>,
    private readonly o: { fsync?: boolean; count?: number } = {},
  ) {
    const existing = readManifestStrict(out);
    this.#others = existing.filter((e) => !order.has(e.file));
    for (const e of existing) if (order.has(e.file)) this.#entries.set(e.file, e);
  }

  /** Replaces the plan order (collect learns it from Redis after start). */
  setOrder(order: Map<string, number>): void {
    const all = [...this.#others, ...this.#entries.values()];
    this.order = order;
    this.#others = all.filter((e) => !order.has(e.file));
    this.#entries = new Map(all.filter((e) => order.has(e.file)).map((e) => [e.file, e]));
  }

  /**
   * Reads every result waiting (blocking up to `blockMs` for the first, 0: not at all), writes
   * the files and then the manifest atomically, then deletes those results from Redis. Returns
   * the number written. A collector killed midway loses nothing: what it did not delete is read
   * again by the next one, and rewriting an output writes the same bytes.
   */
  async drain(blockMs = 0): Promise<number> {
    let n = 0;
    for (;;) {
      const args: Array<string | number> = ['COUNT', this.o.count ?? 256];
      if (blockMs > 0 && n === 0) args.push('BLOCK', blockMs);
      const reply = await (this.redis.xreadBuffer as (...a: Array<string | number>) => Promise<Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null>)(...args, 'STREAMS', this.key, this.#last);
      const items = reply?.[0]?.[1] ?? [];
      if (!items.length) return n;
      const ids: string[] = [];
      for (const [idBuf, fields] of items) {
        const id = idBuf.toString();
        ids.push(id);
        this.#last = id;
        const f = new Map<string, Buffer>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!.toString(), fields[i + 1]!);
        const entry = JSON.parse(f.get('entry')?.toString() ?? 'null') as ResultEntry | null;
        const png = f.get('png');
        // Output names come from the job, checked by the worker as plain .png names; checked again here.
        if (!entry || !png || !/^[^./\\\0][^/\\\0]{0,250}\.png$/.test(entry.file)) continue;
        writeFileAtomic(join(this.out, entry.file), png, { fsync: this.o.fsync ?? true });
        this.written.add(entry.file);
        this.#entries.set(entry.file, entry);
        n++;
      }
      this.#writeManifest();
      await this.redis.xdel(this.key, ...ids);
    }
  }

  #writeManifest(): void {
    const mine = [...this.#entries.values()].sort((a, b) => (this.order.get(a.file) ?? Infinity) - (this.order.get(b.file) ?? Infinity) || (a.file < b.file ? -1 : 1));
    writeManifest(join(this.out, MANIFEST_FILE), [...this.#others, ...mine]);
  }
}
