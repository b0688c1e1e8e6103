/**
 * One atomic file writer for the whole package: a reader never sees a partial file, and a
 * failed write leaves no temp file behind.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** What every temp file this writer makes ends with: `NAME.HOST-PID.RANDOM.partial`. */
export const TEMP_SUFFIX = '.partial';

const HOST = (hostname().toLowerCase().replace(/[^a-z0-9-]+/g, '-') || 'host').slice(0, 64);
const TEMP_RE = /\.([a-z0-9-]+)-(\d+)\.[0-9a-f]{12}\.partial$/;

/** A temp name for `path`, unique to this host, process and call. */
export function tempName(path: string): string {
  // The name is cut so that the temp name stays within file-name limits (255 bytes).
  return join(dirname(path), `${basename(path).slice(0, 100)}.${HOST.slice(0, 64)}-${process.pid}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True when `name` (a file name) is a temp file this writer left that nobody will finish: made
 * on this host by this process, or by a process of this host that no longer runs (killed mid
 * write). A live process's temp files, and any other host's (a shared directory), are not.
 */
export function isAbandonedTempFile(name: string): boolean {
  const m = TEMP_RE.exec(name);
  if (!m || m[1] !== HOST) return false;
  const pid = Number(m[2]);
  return pid === process.pid || !alive(pid);
}

/** Removes the temp files in `dir` that {@link isAbandonedTempFile} says are abandoned; returns how many. */
export function removeAbandonedTempFiles(dir: string): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const f of names) {
    if (isAbandonedTempFile(f)) {
      rmSync(join(dir, f), { force: true });
      n++;
    }
  }
  return n;
}

export interface AtomicWriteOptions {
  /** Flush the file to disk before the rename (default true): also covers the machine crashing. */
  fsync?: boolean;
  /** The directory the temp file goes in (default: the target's; must be on the same file system). */
  tempDir?: string;
}

/**
 * Writes `data` to `path` atomically: a temp file with a unique name (pid and random part) in
 * the same directory, written in full, fsync'd, then renamed over `path`. When any step fails
 * the temp file is removed and the error rethrown; `path` is then unchanged.
 */
export function writeFileAtomic(path: string, data: Buffer | Uint8Array | string, o: AtomicWriteOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  let tmp = tempName(path);
  if (o.tempDir) {
    mkdirSync(o.tempDir, { recursive: true });
    tmp = join(o.tempDir, basename(tmp));
  }
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx');
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (o.fsync !== false) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}
