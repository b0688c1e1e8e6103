/** The CPU's flags and fp32 peak, read from /proc/cpuinfo; no bench options (bench/study.ts uses it too). */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { cpuFlags } from '../../binding/cpu.js';

/** This CPU's flags (binding/cpu.ts) and an fp32 peak estimate from /proc/cpuinfo (cores x FLOP/cycle x clock). */
export function cpuPeak() {
  let mhz = NaN;
  let vendor = '';
  let family = NaN;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1]);
    vendor = /^vendor_id\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() ?? '';
    family = Number(/^cpu family\s*:\s*(\d+)/m.exec(info)?.[1]);
  } catch {
    // not Linux
  }
  const has = (f: string) => cpuFlags().includes(f);
  // fp32 FLOP per cycle per core: two FMA pipes of the widest vector the core executes natively.
  // Zen 4 (family 0x19) runs AVX-512 on 256-bit pipes: 32; Zen 5 (0x1a) and Intel AVX-512: 64.
  let perCycle = has('fma') ? 32 : 16;
  if (has('avx512f')) perCycle = vendor === 'AuthenticAMD' && family < 0x1a ? 32 : 64;
  const cores = availableParallelism();
  return { has, vendor, mhz, cores, perCycle, fp32Gflops: (cores * perCycle * mhz) / 1000 };
}
