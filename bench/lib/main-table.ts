/** The main table: per workload, the native loop, the JS-driven loop, the floor, Python and the TF.js peer, in paired rounds. */
import { join } from 'node:path';
import type { TfjsCompare, TfjsResult } from '../tfjs-worker.js';
import type { WorkerResult } from '../worker.js';
import { args, BENCH, log, PYTHON, SCRATCH, THREADS } from './options.js';
import { lastJson, run, tfjsWorker, worker, type PythonResult } from './processes.js';
import { median, summarize, type Summary } from './stats.js';
import { exportForTfjs, readFloats, writeInputs, type Workload } from './workloads.js';

export interface Row {
  workload: Workload;
  native: Summary;
  nativeEndToEnd: Summary;
  js: Summary;
  floor: Summary;
  python?: Summary;
  pythonFloor?: Summary;
  imageStepsPerSec: number;
  gflops?: number;
  /** Medians of the per-round ratios in pairedRatios. */
  ratios: { nativeOverFloor: number; jsOverNative: number; nativeOverPython?: number };
  /** One ratio per round, each from measurements taken back to back. */
  pairedRatios: { nativeOverFloor: number[]; jsOverNative: number[]; nativeOverPython: number[] };
  rssMb: { native: number; python?: number };
  lag: WorkerResult['lag'];
  jsMatchesNative?: boolean;
  nativeVsPythonMaxDiff?: number;
  /** The TensorFlow.js peer (bench/tfjs-worker.ts), one process per round. */
  tfjs?: TfjsRow;
  preparation: WorkerResult['preparation'];
  blas: { native: string[]; python?: string[] };
  build: WorkerResult['build'];
  loadMs: number;
}

export interface TfjsRow {
  steps: number;
  /** TF.js with its own convolution gradients ('stock') and with them as XNNPACK forward convolutions ('forward-conv'). */
  ms: Summary;
  msFast: Summary;
  /** The native loop on one thread, timed in the TF.js process right after TF.js. */
  native1: Summary;
  /** Medians of the per-round ratios in pairedRatios. */
  ratios: { nativeOverTfjs: number; nativeOverTfjsFast: number; native1OverTfjsFast: number };
  pairedRatios: { nativeOverTfjs: number[]; nativeOverTfjsFast: number[]; native1OverTfjsFast: number[] };
  /** Native vs TF.js in the last round, same start, same steps (each loop's own result). */
  compare: TfjsCompare;
  backend: TfjsResult['backend'];
  exportOps: Record<string, number>;
  rssMb: number;
  loadMs: number;
}

export async function measureWorkload(w: Workload, env: NodeJS.ProcessEnv): Promise<Row> {
  const { x0File, targetsFile } = writeInputs(w);
  const nativeImages = join(SCRATCH, `${w.id}.native.f32`);
  const pythonImages = join(SCRATCH, `${w.id}.python.f32`);
  const withPython = !args['no-python'];
  const withTfjs = !args['no-tfjs'] && w.tfjsSteps !== undefined;
  const manifest = withTfjs ? await exportForTfjs(w) : undefined;
  log(`[${w.id}] ${w.runs} rounds of ${w.steps} steps: native, JS-driven and floor${withPython ? ', the Python loop' : ''}`
    + `${withTfjs ? `, the TF.js peer (${w.tfjsSteps} steps)` : ''} (order alternating) ...`);
  // Rounds: each round is one native process (a native run, a JS-driven run and a floor run, back
  // to back) and one Python process, in alternating order. Every ratio is taken within a round
  // and the table shows the median over rounds, so a slow minute of a shared host moves both
  // sides of a ratio instead of one.
  const rs: WorkerResult[] = [];
  const pys: PythonResult[] = [];
  const tfs: TfjsResult[] = [];
  let capability: string | undefined;
  for (let round = 0; round < w.runs; round++) {
    const native = async () => {
      rs.push(await worker({
        kind: 'workload', model: w.model, inputShape: w.inputShape, batch: w.batch, x0File, targetsFile, threads: THREADS,
        eps: w.eps, step: w.step, steps: w.steps, runs: 1, floorReps: w.floorReps, warmup: 3, outImages: nativeImages,
        lag: round === w.runs - 1, round,
      }, env));
      // The same ATen kernels for Python as the native process got (the loader picks AVX-512 where it can).
      const cap = rs.at(-1)!.build.cpuCapability;
      capability = /AVX512/.test(cap) ? 'avx512' : /AVX2/.test(cap) ? 'avx2' : undefined;
    };
    const python = async () => {
      const prep = rs[0]!.preparation;
      const flags = [...(prep.channelsLast ? ['--channels-last'] : []), ...(prep.freeze ? ['--freeze'] : [])];
      const pyEnv = { ...env, ...(capability && !process.env.ATEN_CPU_CAPABILITY ? { ATEN_CPU_CAPABILITY: capability } : {}) };
      pys.push(lastJson<PythonResult>(await run(PYTHON, [
        join(BENCH, 'python_loop.py'), 'loop', '--model', w.model, '--shape', w.inputShape.join(','), '--batch', String(w.batch),
        '--steps', String(w.steps), '--runs', '1', '--floor-reps', String(Math.min(w.floorReps, 3)), '--warmup', '3',
        '--threads', String(THREADS), '--eps', String(w.eps), '--step', String(w.step), '--x0', x0File, '--targets', targetsFile,
        '--out-images', pythonImages, ...flags,
      ], pyEnv)));
    };
    // The TF.js peer and, after it, the same loop in the native library on one thread (wasm runs
    // on one) and the comparison of the results, all in one process.
    const tfjs = async () => {
      tfs.push(await tfjsWorker({
        model: w.model, manifest: manifest!, inputShape: w.inputShape, batch: w.batch, x0File, targetsFile, eps: w.eps, step: w.step,
        steps: w.tfjsSteps!, runs: 1, warmup: 2, compareNative: true, nativeThreads: 1, round,
      }, env));
    };
    // The first round runs native first: Python copies its preparation and kernels.
    const order = [native, ...(withPython ? [python] : []), ...(withTfjs ? [tfjs] : [])];
    if (round % 2 === 1) order.reverse();
    for (const f of order) await f();
  }
  let diff: number | undefined;
  if (withPython) {
    const a = readFloats(nativeImages);
    const b = readFloats(pythonImages);
    diff = a.length === b.length ? a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0) : NaN;
  }
  const last = rs.at(-1)!;
  const nativeMs = rs.map((r) => r.nativeStepMs[0]!);
  const floorMs = rs.map((r) => r.floorRunMs[0]!);
  const jsMs = rs.map((r) => r.jsStepMs[0]!);
  const pyMs = pys.map((p) => p.stepMs[0]!);
  const native = summarize(nativeMs);
  let tfjs: TfjsRow | undefined;
  if (tfs.length) {
    const tMs = tfs.map((t) => t.stepMs.stock![0]!);
    const fMs = tfs.map((t) => t.stepMs['forward-conv']![0]!);
    const n1Ms = tfs.map((t) => t.compare!.nativeStepMs[0]!);
    const cmp = tfs.at(-1)!.compare!;
    const paired = {
      nativeOverTfjs: nativeMs.map((x, i) => x / tMs[i]!),
      nativeOverTfjsFast: nativeMs.map((x, i) => x / fMs[i]!),
      native1OverTfjsFast: n1Ms.map((x, i) => x / fMs[i]!),
    };
    tfjs = {
      steps: w.tfjsSteps!, ms: summarize(tMs), msFast: summarize(fMs), native1: summarize(n1Ms),
      ratios: { nativeOverTfjs: median(paired.nativeOverTfjs), nativeOverTfjsFast: median(paired.nativeOverTfjsFast), native1OverTfjsFast: median(paired.native1OverTfjsFast) },
      pairedRatios: paired,
      compare: cmp, backend: tfs[0]!.backend, exportOps: tfs[0]!.exportOps, rssMb: Math.max(...tfs.map((t) => t.maxRssKb)) / 1024,
      loadMs: median(tfs.map((t) => t.loadMs)),
    };
  }
  const imageStepsPerSec = (1000 / native.medianMs) * w.batch;
  const paired = {
    nativeOverFloor: nativeMs.map((x, i) => x / floorMs[i]!),
    jsOverNative: jsMs.map((x, i) => x / nativeMs[i]!),
    nativeOverPython: pys.length ? nativeMs.map((x, i) => x / pyMs[i]!) : [],
  };
  return {
    workload: w,
    native,
    nativeEndToEnd: summarize(rs.map((r) => r.nativeEndToEndMs[0]!)),
    js: summarize(jsMs),
    floor: summarize(floorMs),
    python: pys.length ? summarize(pyMs) : undefined,
    pythonFloor: pys.length ? summarize(pys.flatMap((p) => p.floorMs)) : undefined, // per repetition
    imageStepsPerSec,
    gflops: w.stepFlopsPerImage ? (imageStepsPerSec * w.stepFlopsPerImage) / 1e9 : undefined,
    ratios: {
      nativeOverFloor: median(paired.nativeOverFloor),
      jsOverNative: median(paired.jsOverNative),
      nativeOverPython: pys.length ? median(paired.nativeOverPython) : undefined,
    },
    pairedRatios: paired,
    rssMb: { native: Math.max(...rs.map((r) => r.maxRssKb)) / 1024, python: pys.length ? Math.max(...pys.map((p) => p.maxRssKb)) / 1024 : undefined },
    lag: last.lag,
    jsMatchesNative: rs.every((r) => r.jsMatchesNative),
    nativeVsPythonMaxDiff: diff,
    tfjs,
    preparation: last.preparation,
    blas: { native: last.blas, python: pys.at(-1)?.blas },
    build: last.build,
    loadMs: median(rs.map((r) => r.loadMs)),
  };
}
