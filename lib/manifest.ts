/**
 * manifest.json, the record of an output directory: one entry per output image (the task,
 * the source, the target, the loss, the prediction and the settings). Written by the task
 * commands, the playground and the queue alike, read back to resume a run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeAbandonedTempFiles, writeFileAtomic } from './atomic-write.js';
import type { Classifier } from './classifier.js';
import { RobustSynthError } from './errors.js';
import type { TaskResult } from './tasks/common.js';

export interface ManifestEntry {
  file: string;
  /** The task's name (generate, inpaint, superResolve, translate). */
  task: string;
  source: string;
  target: { index: number; name: string };
  loss: number;
  predicted: { index: number; name: string };
  settings: Record<string, unknown>;
}

/** The manifest entry of result i of a task run on `clf` (the CLI's, the playground's and the queue's). */
export function manifestEntry(r: TaskResult, i: number, clf: Pick<Classifier, 'classes'>, file: string, source: string, model: string): ManifestEntry {
  return {
    file,
    task: r.task,
    source,
    target: { index: r.targets[i]!, name: clf.classes[r.targets[i]!]! },
    loss: r.losses[i]!,
    predicted: { index: r.predictions[i]!, name: clf.classes[r.predictions[i]!]! },
    settings: { ...r.settings, model },
  };
}

/** A name as a file-name part: "T-shirt/top" -> "t-shirt-top"; never empty ("image" when nothing is left). */
export function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'image';
}

export const MANIFEST_FILE = 'manifest.json';

function unreadable(path: string, why: string, cause?: unknown): RobustSynthError {
  return new RobustSynthError(
    'ERR_BAD_INPUT',
    `${path} is not a robust-synth manifest (${why}); it is left as it is: move it away, or choose another --out`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * The entries of the manifest at `path`; none when there is no file. A file that cannot be
 * read, is not JSON, or has no `entries` list of entries with a `file` name is an ERR_BAD_INPUT:
 * it may be someone's record, so it is never replaced.
 */
export function readManifest(path: string): ManifestEntry[] {
  if (!existsSync(path)) return [];
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw unreadable(path, `cannot read it: ${(e as Error).message}`, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw unreadable(path, text.trim() === '' ? 'it is empty' : `invalid JSON: ${(e as Error).message}`, e);
  }
  const entries = (json as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(entries)) throw unreadable(path, 'it has no "entries" list');
  const bad = entries.findIndex((e) => typeof (e as { file?: unknown } | null)?.file !== 'string');
  if (bad >= 0) throw unreadable(path, `entry ${bad} has no "file" name`);
  return entries as ManifestEntry[];
}

/** Writes `entries` as the manifest at `path`, atomically. */
export function writeManifest(path: string, entries: readonly ManifestEntry[]): void {
  writeFileAtomic(path, JSON.stringify({ entries }, null, 2) + '\n');
}

/**
 * `entries` with `added` merged in: an added entry replaces the one with its file name, and
 * goes last (in the order given), as a rerun's outputs are the newest.
 */
export function mergeEntries(entries: readonly ManifestEntry[], added: readonly ManifestEntry[]): ManifestEntry[] {
  const files = new Set(added.map((e) => e.file));
  return [...entries.filter((e) => !files.has(e.file)), ...added];
}

/**
 * An output directory's manifest, read when opened. Opening it also removes the temp files
 * that an earlier run on this host left when it was killed mid-write; a running process's
 * temp files are left alone.
 */
export class Manifest {
  readonly path: string;
  entries: ManifestEntry[];
  constructor(readonly dir: string) {
    this.path = join(dir, MANIFEST_FILE);
    this.entries = readManifest(this.path);
    removeAbandonedTempFiles(dir);
  }
  has(file: string): boolean {
    return this.entries.some((e) => e.file === file);
  }
  add(e: ManifestEntry): void {
    this.entries = mergeEntries(this.entries, [e]);
  }
  save(): void {
    writeManifest(this.path, this.entries);
  }
}
