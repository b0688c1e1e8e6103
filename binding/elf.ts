/**
 * ELF: which libraries a binary needs, and which soname a library answers to. Read directly, not
 * through `readelf`, because the loader needs it at every load on machines with no binutils.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface ElfDynamic {
  needed: string[];
  soname?: string;
  runpath?: string;
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
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      if (s.type !== 6 /* SHT_DYNAMIC */) continue;
      const dyn = readAt(fd, s.offset, s.size);
      const strtab = section(s.link);
      const str = readAt(fd, strtab.offset, strtab.size);
      const cstr = (off: number) => str.toString('utf8', off, str.indexOf(0, off));
      const out: ElfDynamic = { needed: [] };
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
    return { needed: [] };
  } finally {
    closeSync(fd);
  }
}
