/**
 * A dependency-free zip reader (stored and deflated entries, zip64), streaming each entry to disk.
 * LibTorch ships as a ~2 GB zip with symlinked sonames; Node has no unzip, and shelling out to
 * `unzip` would make setup depend on a tool many slim images lack. Entries and links that would
 * land outside the target directory are refused. Links are created after every file, so nothing
 * is ever written through one, and each is checked by where it really leads once all exist: a
 * chain such as `a/b/q -> ../../t`, `p -> a/b/q/../..` looks inside lexically and is not.
 */
import {
  closeSync, createReadStream, createWriteStream, lstatSync, mkdirSync, openSync, readlinkSync, readSync, realpathSync, statSync, symlinkSync, type Stats,
} from 'node:fs';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { crc32 } from '../crc32.js';
import { RobustSynthError } from '../errors.js';

// A bad archive is a setup failure like any other: the same code as the rest of setup's errors.
function zipError(message: string): RobustSynthError {
  return new RobustSynthError('ERR_LIBTORCH', message);
}

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  mode: number;
  crc: number;
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

function zipEntries(fd: number, size: number): ZipEntry[] {
  const tailLen = Math.min(size, 65_557);
  const tail = readAt(fd, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw zipError('not a zip archive (no end of central directory)');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || tail.readUInt32LE(loc) !== 0x07064b50) throw zipError('zip64 archive without a zip64 locator');
    const z64 = readAt(fd, Number(tail.readBigUInt64LE(loc + 8)), 56);
    if (z64.readUInt32LE(0) !== 0x06064b50) throw zipError('bad zip64 end of central directory');
    count = Number(z64.readBigUInt64LE(32));
    cdSize = Number(z64.readBigUInt64LE(40));
    cdOffset = Number(z64.readBigUInt64LE(48));
  }
  const cd = readAt(fd, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (cd.readUInt32LE(p) !== 0x02014b50) throw zipError('corrupt zip central directory');
    const madeBy = cd.readUInt16LE(p + 4) >> 8;
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const external = cd.readUInt32LE(p + 38);
    let localOffset = cd.readUInt32LE(p + 42);
    const name = cd.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) (size = Number(cd.readBigUInt64LE(q))), (q += 8);
        if (compressedSize === 0xffffffff) (compressedSize = Number(cd.readBigUInt64LE(q))), (q += 8);
        if (localOffset === 0xffffffff) localOffset = Number(cd.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    const mode = madeBy === 3 ? external >>> 16 : 0;
    entries.push({ name, method, flags, compressedSize, size, localOffset, mode, crc });
    p = extraEnd + commentLen;
  }
  return entries;
}

/** Refuses names that would land outside the target directory. */
function safeJoin(root: string, name: string): string {
  const clean = normalize(name);
  if (isAbsolute(clean) || clean === '..' || clean.startsWith(`..${sep}`) || name.includes('\0')) {
    throw zipError(`zip entry '${name}' points outside the target directory`);
  }
  return join(root, clean);
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Where a path really leads: symlinks that exist are followed, missing parts are taken as written. `path` must not be normalized. */
function landing(path: string, depth = 0): string {
  if (depth > 40) throw zipError(`too many levels of links at ${path}`);
  const parts = path.split(sep).filter(Boolean);
  let cur: string = sep;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '.') continue;
    if (part === '..') {
      cur = dirname(cur);
      continue;
    }
    const next = join(cur, part);
    let st: Stats | undefined;
    try {
      st = lstatSync(next);
    } catch {
      // missing: the rest is taken lexically
    }
    if (st?.isSymbolicLink()) {
      const to = readlinkSync(next);
      cur = landing(isAbsolute(to) ? to : `${cur}${sep}${to}`, depth + 1); // not join(): it would fold q/.. lexically
    } else {
      cur = next;
    }
  }
  return cur;
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root + sep);
}

/** Unpacks a zip into `dest` (which must exist). */
export async function extractZip(zipPath: string, dest: string): Promise<void> {
  const fd = openSync(zipPath, 'r');
  const links: Array<{ name: string; target: string; linkTarget: string }> = [];
  try {
    const size = statSync(zipPath).size;
    const entries = zipEntries(fd, size);
    for (const entry of entries) {
      const target = safeJoin(dest, entry.name);
      if (entry.name.endsWith('/')) {
        mkdirSync(target, { recursive: true });
        continue;
      }
      if (entry.flags & 1) throw zipError(`zip entry ${entry.name} is encrypted`);
      if (entry.method !== 0 && entry.method !== 8) throw zipError(`zip entry ${entry.name} uses unsupported compression method ${entry.method}`);
      mkdirSync(dirname(target), { recursive: true });
      const local = readAt(fd, entry.localOffset, 30);
      if (local.readUInt32LE(0) !== 0x04034b50) throw zipError(`corrupt zip: bad local header for ${entry.name}`);
      const dataStart = entry.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if ((entry.mode & S_IFMT) === S_IFLNK) {
        const raw = readAt(fd, dataStart, entry.compressedSize);
        const linkTarget = (entry.method === 8 ? zlib.inflateRawSync(raw) : raw).toString('utf8');
        // A link must not lead out of the tree either (libtorch's own links are sibling sonames).
        const lands = resolve(dirname(target), linkTarget);
        if (isAbsolute(linkTarget) || !lands.startsWith(resolve(dest) + sep)) {
          throw zipError(`zip entry ${entry.name} is a link to ${linkTarget}, outside the target directory`);
        }
        links.push({ name: entry.name, target, linkTarget });
        continue;
      }
      const fileMode = entry.mode & 0o777 ? entry.mode & 0o777 : 0o644;
      const out = createWriteStream(target, { mode: fileMode });
      if (entry.compressedSize === 0) {
        await new Promise<void>((ok, fail) => out.end((err?: Error | null) => (err ? fail(err) : ok())));
      } else {
        const input = createReadStream(zipPath, { start: dataStart, end: dataStart + entry.compressedSize - 1 });
        const crc = crcMeter();
        const stages: NodeJS.ReadWriteStream[] = [];
        if (entry.method === 8) stages.push(zlib.createInflateRaw());
        if (crc) stages.push(crc.stream);
        await pipeline(input, ...(stages as [NodeJS.ReadWriteStream]), out);
        if (crc && crc.value() !== entry.crc) throw zipError(`zip entry ${entry.name} fails its CRC check`);
      }
      const written: Stats = statSync(target);
      if (written.size !== entry.size) throw zipError(`zip entry ${entry.name} unpacked to ${written.size} bytes, expected ${entry.size}`);
    }
    // Links last; then each must really lead inside, with every other link in place.
    const root = realpathSync(dest);
    for (const l of links) {
      if (!inside(root, landing(realpathSync(dirname(l.target))))) throw zipError(`zip entry ${l.name} lies outside the target directory`);
      symlinkSync(l.linkTarget, l.target);
    }
    for (const l of links) {
      if (!inside(root, landing(`${realpathSync(dirname(l.target))}${sep}${l.linkTarget}`))) {
        throw zipError(`zip entry ${l.name} is a link to ${l.linkTarget}, which leads outside the target directory through other links`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

function crcMeter(): { stream: Transform; value(): number } {
  let crc = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      crc = crc32(chunk, crc);
      cb(null, chunk);
    },
  });
  return { stream, value: () => crc >>> 0 };
}
