/** The floor-lowering table: one forward + backward under each change (threads, BLAS, layout, freezing, kernels, malloc, ...). */
import type { WorkerJob } from '../worker.js';
import { log, THREADS } from './options.js';
import { blasEnv, startLoad, worker } from './processes.js';
import { summarize, type Summary } from './stats.js';
import { writeInputs, type Workload } from './workloads.js';

export interface Variant {
  id: string;
  label: string;
  /** Cumulative chain (each row adds one change to the row above) or a side variant of the default. */
  chain: boolean;
  threads?: number;
  blas?: string;
  channelsLast?: boolean;
  freeze?: boolean;
  jit?: WorkerJob['jit'];
  mkldnn?: boolean;
  env?: NodeJS.ProcessEnv;
  bf16Check?: boolean;
  /** Measured while another process runs 2-thread convolutions (bench/python_loop.py load). */
  contended?: boolean;
  /** Side variants: the row their speed-up is relative to (default: 'default'). */
  baseId?: string;
}

export const MALLOC_DEFAULT = { ROBUST_SYNTH_MALLOC: 'default' };
export const LIBTORCH_ENV = { ...MALLOC_DEFAULT, ATEN_CPU_CAPABILITY: 'avx2' };

export function variants(): Variant[] {
  return [
    // The chain: each row adds one change to the row above (until theirs: glibc's malloc thresholds, ATen's AVX2 kernels).
    { id: 'libtorch', label: 'LibTorch defaults: 1 thread, reference BLAS, NCHW, unfrozen', chain: true, threads: 1, blas: 'reference', channelsLast: false, freeze: false, env: LIBTORCH_ENV },
    { id: 'threads', label: `+ ${THREADS} threads (all cores)`, chain: true, blas: 'reference', channelsLast: false, freeze: false, env: LIBTORCH_ENV },
    { id: 'openblas', label: '+ OpenBLAS instead of the reference BLAS', chain: true, blas: 'openblas', channelsLast: false, freeze: false, env: LIBTORCH_ENV },
    { id: 'channels-last', label: '+ channels-last weights and inputs', chain: true, blas: 'openblas', channelsLast: true, freeze: false, env: LIBTORCH_ENV },
    { id: 'freeze', label: '+ frozen graph (BatchNorm folded into convs)', chain: true, blas: 'openblas', channelsLast: true, freeze: true, env: LIBTORCH_ENV },
    { id: 'avx512', label: "+ ATen's AVX-512 kernels where the CPU has them", chain: true, blas: 'openblas', channelsLast: true, freeze: true, env: MALLOC_DEFAULT },
    { id: 'malloc', label: '+ freed memory kept for reuse (mallopt: mmap/trim thresholds, a heap-sized top pad; no page faults per step)', chain: true, blas: 'openblas', channelsLast: true, freeze: true },
    { id: 'default', label: 'robust-synth defaults (as in the table above)', chain: false },
    { id: 'jit-simple', label: "default + 'simple' TorchScript executor", chain: false, jit: 'simple' },
    { id: 'jit-legacy', label: "default + 'legacy' TorchScript executor", chain: false, jit: 'legacy' },
    { id: 'omp-passive', label: 'default + OMP_WAIT_POLICY=PASSIVE', chain: false, env: { OMP_WAIT_POLICY: 'PASSIVE' } },
    { id: 'no-onednn', label: 'default without oneDNN (convolutions via im2col + BLAS)', chain: false, mkldnn: false },
    { id: 'bf16', label: 'default + bf16 autocast (bf16Check)', chain: false, bf16Check: true },
    { id: 'contended', label: `default, while another process runs ${THREADS}-thread convolutions`, chain: false, contended: true },
    { id: 'contended-passive', label: 'the same, with OMP_WAIT_POLICY=PASSIVE', chain: false, contended: true, env: { OMP_WAIT_POLICY: 'PASSIVE' }, baseId: 'contended' },
  ];
}

export interface AblationCell {
  floor?: Summary;
  error?: string;
  blas?: string[];
  bf16?: { floor: Summary; speedup: number; maxAbsDiff: number; relL2: number[]; agree: number; fp32Loss: number[]; bf16Loss: number[]; steps: number };
}

/** Steps of the fp32-vs-bf16 comparison: Fashion-MNIST's generation setting (60), fewer for ResNet50. */
export function bf16Steps(w: Workload): number {
  return w.inputShape[1] >= 100 ? Math.min(w.steps, 10) : 60;
}

export async function ablation(ws: Workload[], defaultEnv: NodeJS.ProcessEnv): Promise<Record<string, Record<string, AblationCell>>> {
  const table: Record<string, Record<string, AblationCell>> = {};
  for (const w of ws) {
    const { x0File, targetsFile } = writeInputs(w);
    const reps = Math.max(1, Math.ceil(w.floorReps / 2));
    for (const v of variants()) {
      const env = v.blas ? blasEnv(v.blas) : defaultEnv;
      table[v.id] ??= {};
      if (!env) {
        table[v.id]![w.id] = { error: `no ${v.blas} BLAS found (Debian: apt-get install libopenblas0-openmp)` };
        continue;
      }
      log(`[${w.id}] floor: ${v.label} ...`);
      // Under contention a pass can be ~100x slower (spinning OpenMP threads): fewer repetitions.
      const corunner = v.contended ? startLoad('omp', env) : undefined;
      try {
        await corunner?.ready;
        const r = await worker({
          kind: 'floor', model: w.model, inputShape: w.inputShape, batch: w.batch, x0File, targetsFile,
          threads: v.threads ?? THREADS, channelsLast: v.channelsLast, freeze: v.freeze, jit: v.jit, mkldnn: v.mkldnn,
          eps: w.eps, step: w.step, steps: bf16Steps(w), runs: 3, floorReps: v.contended ? Math.max(1, Math.ceil(reps / 10)) : reps,
          warmup: 2, bf16Check: v.bf16Check,
        }, { ...env, ...v.env });
        const cell: AblationCell = { floor: summarize(r.floorRunMs), blas: r.blas };
        if (r.bf16) {
          const bf = summarize(r.bf16.floorMs);
          cell.bf16 = {
            floor: bf, speedup: cell.floor!.medianMs / bf.medianMs, maxAbsDiff: r.bf16.maxAbsDiff, relL2: r.bf16.relL2,
            agree: r.bf16.agree, fp32Loss: r.bf16.fp32Loss, bf16Loss: r.bf16.bf16Loss, steps: bf16Steps(w),
          };
        }
        table[v.id]![w.id] = cell;
      } catch (e) {
        table[v.id]![w.id] = { error: (e as Error).message.split('\n')[0]!.slice(0, 200) };
      } finally {
        await corunner?.stop();
      }
    }
  }
  return table;
}
