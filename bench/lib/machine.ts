/** The machine the bench runs on: CPU, cores, features, an fp32 peak estimate, the load at start. */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { args } from './options.js';

export function machine() {
  let flags: string[] = [];
  let mhz = NaN;
  let vendor = '';
  let family = NaN;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    flags = /^flags\s*:\s*(.*)$/m.exec(info)?.[1]?.split(/\s+/) ?? [];
    mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1]);
    vendor = /^vendor_id\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() ?? '';
    family = Number(/^cpu family\s*:\s*(\d+)/m.exec(info)?.[1]);
  } catch {
    // not Linux
  }
  const has = (f: string) => flags.includes(f);
  // fp32 FLOP per cycle per core: two FMA pipes of the widest vector the core executes natively.
  // Zen 4 (family 0x19) runs AVX-512 on 256-bit pipes: 32; Zen 5 (0x1a) and Intel AVX-512: 64.
  let perCycle = has('fma') ? 32 : 16;
  if (has('avx512f')) perCycle = vendor === 'AuthenticAMD' && family < 0x1a ? 32 : 64;
  const cores = availableParallelism();
  const estimate = (cores * perCycle * mhz) / 1000;
  const peak = args['peak-gflops'] ? Number(args['peak-gflops']) : estimate;
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    vendor,
    cores,
    mhz,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    features: ['avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_bf16'].filter(has),
    fp32PeakGflops: peak,
    fp32PeakSource: args['peak-gflops'] ? '--peak-gflops' : `${cores} cores x ${perCycle} FLOP/cycle x ${(mhz / 1000).toFixed(2)} GHz (estimate)`,
    node: process.version,
    loadavgStart: loadavg(),
  };
}

export type Machine = ReturnType<typeof machine>;
