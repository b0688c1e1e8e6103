/** The machine the bench runs on: CPU, cores, features, an fp32 peak estimate, the load at start. */
import { cpus, loadavg, totalmem } from 'node:os';
import { cpuPeak } from './cpu.js';
import { args } from './options.js';

export function machine() {
  const { has, vendor, mhz, cores, perCycle, fp32Gflops: estimate } = cpuPeak();
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
