/**
 * The shared output directory: every file written to a temp file beside it and renamed (a
 * reader, or a worker killed mid-write, never leaves a partial output), one entry file per
 * output (the durable record), and manifest.json merged from those under a Redis lock (workers
 * on several machines update it; the lock serializes their read-merge-write).
 *
 * Layout of an output directory DIR:
 *   DIR/NAME.png                            the outputs (what a single-machine run writes)
 *   DIR/manifest.json                       { entries: [...] }, sorted by file
 *   DIR/.robust-synth/entries/NAME.png.json one manifest entry per output, plus the job id
 *   DIR/.robust-synth/tmp/                  temp files, renamed into place when complete
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import type { Redis } from 'ioredis';
import { RobustSynthError } from '../errors.js';
import { readManifestStrict, type ResultEntry as ManifestEntry } from './results.js';

export const META_DIR = '.robust-synth';

/** A manifest entry as a worker records it: the single-machine entry plus the job that made it. */
export interface QueueEntry extends ManifestEntry {
  job: string;
}

const tmpDir = (dir: string) => join(dir, META_DIR, 'tmp');
const entriesDir = (dir: string) => join(dir, META_DIR, 'entries');

let fsyncWrites = false;

/**
 * Flush each file to disk before renaming it into place (default off, as the single-machine
 * commands): a killed process never leaves a partial file either way, since rename is atomic and
 * the kernel keeps what was written; fsync also covers the machine itself crashing (power loss),
 * at about 4 ms per file on this project's disk.
 */
export function setFsync(on: boolean): void {
  fsyncWrites = on;
}

/**
 * Writes `bytes` to DIR/REL atomically (lib/atomic-write.ts): a temp file in DIR/.robust-synth/tmp
 * (same file system) named after the output, this process and a random part, then renamed. Two
 * workers writing the same output (a re-delivered job) never share a temp file. `_tag` (the job
 * id) is kept for callers; temp files are found by their output's name (removePartials).
 */
export function writeShared(dir: string, rel: string, bytes: Buffer | string, _tag: string): void {
  writeFileAtomic(join(dir, rel), bytes, { fsync: fsyncWrites, tempDir: tmpDir(dir) });
}

/** Removes temp files killed writers left for these outputs (`NAME.PID.RANDOM.partial`), once their jobs are all settled. */
export function removePartials(dir: string, files: Iterable<string>): number {
  const tdir = tmpDir(dir);
  if (!existsSync(tdir)) return 0;
  const names = new Set([...files].flatMap((f) => [f, `${f}.json`]));
  let n = 0;
  for (const f of readdirSync(tdir)) {
    const m = /^(.*)\.\d+\.[0-9a-f]+\.partial$/.exec(f);
    if (m && names.has(m[1]!)) {
      rmSync(join(tdir, f), { force: true });
      n++;
    }
  }
  return n;
}

export function writeEntry(dir: string, e: QueueEntry): void {
  writeShared(dir, `${META_DIR}/entries/${e.file}.json`, JSON.stringify(e) + '\n', e.job);
}

export function readEntry(dir: string, file: string): QueueEntry | undefined {
  const p = join(entriesDir(dir), `${file}.json`);
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as QueueEntry;
  } catch {
    return undefined;
  }
}

/** The outputs of job `id` are all in place: each file exists and its entry names this job. */
export function jobOutputsDone(dir: string, id: string, files: string[]): QueueEntry[] | undefined {
  const found: QueueEntry[] = [];
  for (const f of files) {
    const e = readEntry(dir, f);
    if (!e || e.job !== id || !existsSync(join(dir, f))) return undefined;
    found.push(e);
  }
  return found;
}

/** Redis lock: SET NX PX, released only by its holder (compare-and-delete). */
export class RedisLock {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs = 30_000,
    private readonly waitMs = 20_000,
  ) {}

  async with<T>(key: string, body: () => Promise<T> | T): Promise<T> {
    const token = randomUUID();
    const t0 = Date.now();
    let delay = 5;
    while ((await this.redis.set(key, token, 'PX', this.ttlMs, 'NX')) !== 'OK') {
      if (Date.now() - t0 > this.waitMs) throw new RobustSynthError('ERR_REDIS', `timed out after ${this.waitMs} ms waiting for the lock ${key}`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(100, delay * 2);
    }
    try {
      return await body();
    } finally {
      await this.redis
        .eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, key, token)
        .catch(() => {});
    }
  }
}

/** Throws ERR_BAD_INPUT when DIR/manifest.json exists and cannot be parsed (the job fails; the file is left as it is). */
export function checkManifest(dir: string): void {
  readManifestStrict(dir);
}

function readManifest(dir: string): Map<string, ManifestEntry> {
  // A manifest that does not parse is an error, never rebuilt over: it may be someone's data.
  return new Map(readManifestStrict(dir).map((e) => [e.file, e]));
}

/**
 * Adds `entries` to DIR/manifest.json, and any entry file the manifest lacks (a merge that
 * another writer's lost lock overwrote is repaired by the next one). Call it under the
 * directory's lock. Entries are sorted by file name, so the manifest does not depend on which
 * worker finished first. Returns the number of entries.
 */
export function mergeManifest(dir: string, entries: QueueEntry[]): number {
  const map = readManifest(dir);
  for (const e of entries) map.set(e.file, e);
  const edir = entriesDir(dir);
  if (existsSync(edir)) {
    for (const f of readdirSync(edir)) {
      if (!f.endsWith('.json')) continue;
      const file = f.slice(0, -'.json'.length);
      if (map.has(file) || !existsSync(join(dir, file))) continue;
      const e = readEntry(dir, file);
      if (e) map.set(file, e);
    }
  }
  // Under the lock no other merge is writing: a manifest temp file left here is a dead writer's.
  const tdir = tmpDir(dir);
  if (existsSync(tdir)) for (const f of readdirSync(tdir)) if (f.startsWith('manifest.json.') && f.endsWith('.partial')) rmSync(join(tdir, f), { force: true });
  const sorted = [...map.values()].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  writeShared(dir, 'manifest.json', JSON.stringify({ entries: sorted }, null, 2) + '\n', 'manifest');
  return sorted.length;
}


/** True when `dir` can be read here (the submitter may not mount the workers' shared directory). */
export function isDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
