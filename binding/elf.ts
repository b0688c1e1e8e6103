/**
 * ELF: which libraries a binary needs, and which soname a library answers to. Read directly, not
 * through `readelf`, because the loader needs it at every load on machines with no binutils.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface ElfDynamic {
  needed: string[];
  soname?: string;
  runpath?: string;
  /** Symbol versions it needs, by library: { 'libc.so.6': ['GLIBC_2.34', ...] }. */
  versionNeeds?: Record<string, string[]>;
}

/** The highest GLIBC_x.y a binary needs ('2.38'), or undefined when it names none. */
export function glibcNeeded(elf: ElfDynamic | undefined): string | undefined {
  let best: number[] | undefined;
  for (const names of Object.values(elf?.versionNeeds ?? {})) {
    for (const n of names) {
      const m = /^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$/.exec(n);
      if (!m) continue;
      const v = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
      if (!best || v[0]! > best[0]! || (v[0] === best[0] && (v[1]! > best[1]! || (v[1] === best[1] && v[2]! > best[2]!)))) best = v;
    }
  }
  return best ? (best[2] ? best.join('.') : `${best[0]}.${best[1]}`) : undefined;
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, position);
  return buf.subarray(0, n);
}

/**
 * Reads the dynamic section of a 64-bit little-endian ELF file (x64, arm64) with a few small
 * reads, so it is cheap even on a 1 GB libtorch_cuda.so. undefined for anything else.
 */
export function readElfDynamic(path: string): ElfDynamic | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return undefined;
    const shoff = Number(eh.readBigUInt64LE(0x28));
    const shentsize = eh.readUInt16LE(0x3a);
    const shnum = eh.readUInt16LE(0x3c);
    if (!shoff || !shnum || shentsize < 64) return undefined;
    const sh = readAt(fd, shoff, shnum * shentsize);
    const section = (i: number) => ({
      type: sh.readUInt32LE(i * shentsize + 4),
      offset: Number(sh.readBigUInt64LE(i * shentsize + 24)),
      size: Number(sh.readBigUInt64LE(i * shentsize + 32)),
      link: sh.readUInt32LE(i * shentsize + 40),
    });
    const versionNeeds: Record<string, string[]> = {};
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      if (s.type !== 0x6ffffffe /* SHT_GNU_verneed */) continue;
      const vn = readAt(fd, s.offset, s.size);
      const strtab = section(s.link);
      const str = readAt(fd, strtab.offset, strtab.size);
      const cstr = (off: number) => str.toString('utf8', off, str.indexOf(0, off));
      for (let p = 0, guard = 0; p + 16 <= vn.length && guard < 1000; guard++) {
        const cnt = vn.readUInt16LE(p + 2);
        const names: string[] = (versionNeeds[cstr(vn.readUInt32LE(p + 4))] ??= []);
        for (let a = p + vn.readUInt32LE(p + 8), k = 0; k < cnt && a + 16 <= vn.length; k++) {
          names.push(cstr(vn.readUInt32LE(a + 8)));
          const next = vn.readUInt32LE(a + 12);
          if (!next) break;
          a += next;
        }
        const next = vn.readUInt32LE(p + 12);
        if (!next) break;
        p += next;
      }
    }
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      if (s.type !== 6 /* SHT_DYNAMIC */) continue;
      const dyn = readAt(fd, s.offset, s.size);
      const strtab = section(s.link);
      const str = readAt(fd, strtab.offset, strtab.size);
      const cstr = (off: number) => str.toString('utf8', off, str.indexOf(0, off));
      const out: ElfDynamic = { needed: [], versionNeeds };
      for (let p = 0; p + 16 <= dyn.length; p += 16) {
        const tag = Number(dyn.readBigInt64LE(p));
        const val = Number(dyn.readBigUInt64LE(p + 8));
        if (tag === 0) break;
        if (tag === 1) out.needed.push(cstr(val));
        else if (tag === 14) out.soname = cstr(val);
        else if (tag === 29 || (tag === 15 && !out.runpath)) out.runpath = cstr(val);
      }
      return out;
    }
    return { needed: [], versionNeeds };
  } finally {
    closeSync(fd);
  }
}
