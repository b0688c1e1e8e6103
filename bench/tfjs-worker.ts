/**
 * One TF.js measurement in its own process (started by bench/run.ts, like bench/worker.ts for the
 * native loop): the PGD loop of bench/tfjs-peer.ts on the WebAssembly backend, timed, then
 * (optionally) the same loop in the native library in this process, untimed or on one thread,
 * to compare the results. JSON job as the only argument; prints one JSON line on stdout.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { TfjsClassifier, exportWeights, tfjsInfo, type ConvGrad } from './tfjs-peer.js';

export interface TfjsJob {
  /** The TorchScript file (exported to `manifest` first when that is missing or older). */
  model: string;
  /** Where the export goes (bench/out/...tfjs.json). */
  manifest: string;
  inputShape: [number, number, number];
  batch: number;
  x0File: string;
  targetsFile: string;
  eps: number;
  step: number;
  steps: number;
  runs: number;
  warmup: number;
  useBest?: boolean;
  /** The ways of computing the convolutions' input gradient to time (bench/tfjs-peer.ts); default both, taking turns. */
  convGrads?: ConvGrad[];
  /** Which of them goes first (they take turns: run.ts passes the round). */
  round?: number;
  /** Write the last TF.js result here (raw float32, NCHW). */
  outImages?: string;
  /**
   * After the timed TF.js runs: load the model in the native library, compare logits at x0 and
   * the results of the same `steps`-step loop (images, predictions, losses).
   */
  compareNative?: boolean;
  /** With compareNative: also time the native loop here on this many threads (TF.js's wasm runs on one). */
  nativeThreads?: number;
}

export interface TfjsCompare {
  steps: number;
  logitsMaxDiff: number;
  imagesMaxDiff: number;
  lossesMaxDiff: number;
  predictionsAgree: number;
  tfjsPredictions: number[];
  nativePredictions: number[];
  nativeThreads: number;
  /** The native loop timed in this process on nativeThreads threads, ms/step per run. */
  nativeStepMs: number[];
  /** Max abs difference between the results of the two convGrads (0: the same arithmetic). */
  convGradsMaxDiff?: number;
}

export interface TfjsResult {
  /** ms/step of each run (the steps, without the final useBest forward), per convGrad. */
  stepMs: Partial<Record<ConvGrad, number[]>>;
  endToEndMs: Partial<Record<ConvGrad, number[]>>;
  loadMs: number;
  warmupMs: number;
  maxRssKb: number;
  backend: ReturnType<typeof tfjsInfo>;
  exportOps: Record<string, number>;
  compare?: TfjsCompare;
}

function floats(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as TfjsJob;
  const t0 = performance.now();
  await exportWeights(job.model, job.inputShape, job.manifest);
  const peer = await TfjsClassifier.load(job.manifest);
  const loadMs = performance.now() - t0;
  const x0 = floats(job.x0File);
  const tb = readFileSync(job.targetsFile);
  const targets = Array.from(new Int32Array(tb.buffer.slice(tb.byteOffset, tb.byteOffset + tb.byteLength)));
  if (targets.length !== job.batch) throw new Error('the targets file does not match the batch');
  const opts = { x0, batch: job.batch, targets, eps: job.eps, step: job.step, useBest: job.useBest ?? true };

  const modes: ConvGrad[] = job.convGrads ?? ['stock', 'forward-conv'];
  const tw = performance.now();
  for (const mode of modes) {
    peer.convGrad = mode;
    peer.pgd({ ...opts, iterations: Math.max(1, job.warmup) });
  }
  const warmupMs = performance.now() - tw;
  await new Promise((r) => setTimeout(r, 300)); // as bench/worker.ts: V8's start-up work first

  const out: TfjsResult = {
    stepMs: {}, endToEndMs: {}, loadMs, warmupMs, maxRssKb: 0, backend: tfjsInfo(), exportOps: peer.manifest.opCounts,
  };
  const results: Partial<Record<ConvGrad, ReturnType<TfjsClassifier['pgd']>>> = {};
  for (let r = 0; r < job.runs; r++) {
    const order = ((job.round ?? 0) + r) % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of order) {
      peer.convGrad = mode;
      let mark = 0;
      const ts = performance.now();
      results[mode] = peer.pgd({ ...opts, iterations: job.steps, onStepsDone: () => { mark = performance.now(); } });
      (out.stepMs[mode] ??= []).push((mark - ts) / job.steps);
      (out.endToEndMs[mode] ??= []).push((performance.now() - ts) / job.steps);
    }
  }
  const last = results[modes[0]!];
  if (job.outImages && last) writeFileSync(job.outImages, Buffer.from(last.images.buffer, last.images.byteOffset, last.images.byteLength));

  if (job.compareNative && last) {
    // Loaded only now, so that nothing native runs (or spins) while TF.js is timed.
    const { Classifier, getThreads, setThreads } = await import('../lib/classifier.js');
    if (job.nativeThreads) setThreads(job.nativeThreads);
    const clf = await Classifier.load(job.model, { device: 'cpu', inputShape: job.inputShape, verifyChecksum: false });
    const [c, h, w] = job.inputShape;
    const batch = { data: x0, shape: [job.batch, c, h, w] as [number, number, number, number] };
    const nl = (await clf.logits(batch)).data;
    peer.convGrad = modes[0]!;
    const tl = peer.logits(x0, job.batch);
    const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let m = 0;
      for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
      return a.length === b.length ? m : NaN;
    };
    const nopts = { x0: batch, targets, eps: job.eps, step: job.step, useBest: opts.useBest };
    await clf.pgd({ ...nopts, iterations: Math.max(1, job.warmup) });
    const nativeStepMs: number[] = [];
    let res: Awaited<ReturnType<typeof clf.pgd>> | undefined;
    for (let r = 0; r < (job.nativeThreads ? job.runs : 1); r++) {
      let at = -1;
      res = await clf.pgd({ ...nopts, iterations: job.steps, progressEvery: job.steps, onProgress: (p) => { at = p.elapsedMs; } });
      for (let i = 0; i < 100 && at < 0; i++) await new Promise((r2) => setImmediate(r2));
      nativeStepMs.push(at / job.steps);
    }
    const agree = last.predictions.reduce((a, p, i) => a + (p === res!.predictions[i] ? 1 : 0), 0) / job.batch;
    out.compare = {
      steps: job.steps,
      logitsMaxDiff: maxDiff(nl, tl),
      imagesMaxDiff: maxDiff(res!.images.data, last.images),
      lossesMaxDiff: maxDiff(res!.losses, last.losses),
      predictionsAgree: agree,
      tfjsPredictions: Array.from(last.predictions),
      nativePredictions: Array.from(res!.predictions),
      nativeThreads: getThreads(),
      nativeStepMs: job.nativeThreads ? nativeStepMs : [],
      convGradsMaxDiff: modes.length > 1 ? maxDiff(results[modes[0]!]!.images, results[modes[1]!]!.images) : undefined,
    };
    await clf.dispose();
  }
  peer.dispose();
  out.maxRssKb = process.resourceUsage().maxRSS;
  await new Promise<void>((res) => process.stdout.write(`${JSON.stringify(out)}\n`, () => res()));
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
