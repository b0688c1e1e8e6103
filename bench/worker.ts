/**
 * One benchmark measurement in its own process (so peak RSS, LibTorch's global settings and
 * the BLAS picked by the dynamic linker belong to this measurement alone). Started by
 * bench/run.ts with a JSON job as its only argument; prints one JSON line on stdout.
 *
 *   kind 'workload': native pgd, the JS-driven session loop and the floor, interleaved run by run
 *   kind 'floor':    the floor alone (the floor-lowering table), optionally with the bf16 check
 *   kind 'contended': native pgd (and, with `extras`, the JS-driven session and plain logits)
 *                    with the library's own thread policy unless `threads` is given: run once
 *                    on a quiet machine and once beside a CPU-bound process (the contended table)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadBinding } from '../binding/index.js';
import { Classifier, getThreads, setJitExecutor, setThreads, type JitExecutor } from '../lib/classifier.js';
import type { ImageBatch, Shape4 } from '../lib/tensor.js';

export interface WorkerJob {
  kind: 'workload' | 'floor' | 'contended';
  model: string;
  inputShape: [number, number, number];
  batch: number;
  x0File: string;
  targetsFile: string;
  /** Intra-op threads; 'contended' only: undefined leaves the library's default policy in charge. */
  threads?: number;
  /** undefined: the library's defaults. */
  channelsLast?: boolean;
  freeze?: boolean;
  jit?: JitExecutor;
  mkldnn?: boolean;
  bf16?: boolean;
  eps: number;
  step: number;
  steps: number;
  runs: number;
  floorReps: number;
  warmup: number;
  /** 'workload': write the last native result here (raw float32), to compare with Python's. */
  outImages?: string;
  /** 'floor': also run pgd in fp32 and bf16 for `steps` steps and compare the results. */
  bf16Check?: boolean;
  /** 'workload': measure event-loop lag after the timed runs (default true). */
  lag?: boolean;
  /** 'workload': the round this process is (run.ts starts one per round); native goes first in even ones. */
  round?: number;
  /** 'contended': also time the JS-driven session and plain logits calls. */
  extras?: boolean;
  /** 'contended': logits calls per run (timed one by one, the mean counts). */
  logitsReps?: number;
}

export interface WorkerResult {
  nativeStepMs: number[];
  nativeEndToEndMs: number[];
  jsStepMs: number[];
  /** 'contended' with extras: mean ms per `logits()` call, per run. */
  logitsMs?: number[];
  /** 'contended': CPU time of this process over wall time during each native run (how many cores it kept busy). */
  nativeCpuPerWall?: number[];
  floorMs: number[];
  /** Mean floor of each run (the native and JS figures are per-run means too). */
  floorRunMs: number[];
  /** CPU time of this process per floor pass, per run: with 1 thread, a measure that other processes hardly disturb. */
  floorRunCpuMs: number[];
  /** Event-loop lag (10 ms setInterval) during a separate, untimed native run of lagRunMs. */
  lag: { maxMs: number; p99Ms: number; samples: number };
  lagRunMs?: number;
  jsMatchesNative?: boolean;
  bf16?: { floorMs: number[]; maxAbsDiff: number; relL2: number[]; fp32Loss: number[]; bf16Loss: number[]; agree: number };
  warmupMs: number;
  loadMs: number;
  maxRssKb: number;
  threads: number;
  blas: string[];
  jit: string;
  preparation: { channelsLast: boolean; freeze: boolean };
  build: { torchVersion: string; cpuCapability: string; onednn: string };
}

function blasLibraries(): string[] {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const paths = new Set(maps.split('\n').map((l) => l.trim().split(/\s+/).slice(5).join(' ')).filter((p) => /blas/i.test(p)));
    return [...paths].sort();
  } catch {
    return [];
  }
}

function readInputs(job: WorkerJob): { x0: ImageBatch; targets: Int32Array } {
  const [c, h, w] = job.inputShape;
  const shape: Shape4 = [job.batch, c, h, w];
  const xb = readFileSync(job.x0File);
  const x0 = new Float32Array(xb.buffer.slice(xb.byteOffset, xb.byteOffset + xb.byteLength));
  const tb = readFileSync(job.targetsFile);
  const targets = new Int32Array(tb.buffer.slice(tb.byteOffset, tb.byteOffset + tb.byteLength));
  if (x0.length !== shape.reduce((a, b) => a * b, 1) || targets.length !== job.batch) throw new Error('input files do not match the job');
  return { x0: { data: x0, shape }, targets };
}

function buildSummary(): WorkerResult['build'] {
  const info = loadBinding().buildInfo();
  const line = (re: RegExp) => info.config.split('\n').map((l) => l.trim()).find((l) => re.test(l))?.replace(/^- /, '') ?? '';
  return { torchVersion: info.torchVersion, cpuCapability: line(/CPU capability/), onednn: line(/MKL-DNN|oneDNN/) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1]! : 0;
}

const tick = () => new Promise((r) => setImmediate(r));

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as WorkerJob;
  const binding = loadBinding();
  if (job.jit) setJitExecutor(job.jit);
  if (job.mkldnn === false) binding.setMkldnn(false);
  if (job.threads !== undefined) setThreads(job.threads);
  const t0 = performance.now();
  const clf = await Classifier.load(job.model, {
    device: 'cpu', inputShape: job.inputShape, verifyChecksum: false, channelsLast: job.channelsLast, freeze: job.freeze,
  });
  const loadMs = performance.now() - t0;
  const { x0, targets } = readInputs(job);
  const bf16 = job.bf16 ?? false;
  const opts = { x0, targets, eps: job.eps, step: job.step, bf16 };

  const tw = performance.now();
  await clf.floor(x0, targets, Math.max(1, job.warmup), bf16);
  if (job.kind !== 'floor') await clf.pgd({ ...opts, iterations: Math.max(1, job.warmup) });
  if (job.kind === 'contended' && job.extras) {
    const s = await clf.session({ ...opts, iterations: Math.max(1, job.warmup) });
    for (let i = 0; i < Math.max(1, job.warmup); i++) await s.step();
    await s.finish();
    for (let i = 0; i < Math.max(1, job.warmup); i++) await clf.logits(x0);
  }
  const warmupMs = performance.now() - tw;
  // Let the process's own start-up work (V8's background compilation and GC threads) finish
  // before anything is timed: on 2 cores it competes with the compute threads.
  await new Promise((r) => setTimeout(r, 300));

  const out: WorkerResult = {
    nativeStepMs: [], nativeEndToEndMs: [], jsStepMs: [], floorMs: [], floorRunMs: [], floorRunCpuMs: [], lag: { maxMs: 0, p99Ms: 0, samples: 0 },
    warmupMs, loadMs, maxRssKb: 0, threads: getThreads(), blas: blasLibraries(), jit: binding.getJitExecutor(),
    preparation: clf.preparation, build: buildSummary(),
  };

  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  /** `parts` floor passes of floorReps each; they count as one run (their mean). */
  const floorRun = async (parts: Array<() => Promise<void>> = []) => {
    const t: number[] = [];
    let cpu = 0;
    for (const between of [undefined, ...parts]) {
      if (between) await between();
      const c0 = process.cpuUsage();
      t.push(...(await clf.floor(x0, targets, job.floorReps, bf16)));
      const c = process.cpuUsage(c0);
      cpu += (c.user + c.system) / 1000;
    }
    out.floorMs.push(...t);
    out.floorRunMs.push(mean(t));
    out.floorRunCpuMs.push(cpu / t.length);
  };

  if (job.kind === 'workload') {
    const lags: number[] = [];
    let nativeImages: Float32Array | undefined;
    let jsImages: Float32Array | undefined;
    for (let r = 0; r < job.runs; r++) {
      // 1. native: the whole loop in C++. One progress report, at the last step: its elapsedMs
      //    (taken on the compute thread) covers the steps but not the final useBest forward.
      const native = async () => {
        let at = -1;
        const res = await clf.pgd({ ...opts, iterations: job.steps, progressEvery: job.steps, onProgress: (p) => { at = p.elapsedMs; } });
        for (let i = 0; i < 100 && at < 0; i++) await tick(); // the report may land just after the result
        out.nativeStepMs.push(at / job.steps);
        out.nativeEndToEndMs.push(res.stats.ms / job.steps);
        nativeImages = res.images.data;
      };
      // 2. JS-driven: one native `step` call per iteration, awaited from TypeScript.
      const jsDriven = async () => {
        const s = await clf.session({ ...opts, iterations: job.steps });
        const tj = performance.now();
        for (let i = 0; i < job.steps; i++) await s.step();
        out.jsStepMs.push((performance.now() - tj) / job.steps);
        jsImages = (await s.finish()).images.data;
      };
      // 3. the floor runs before and after them and counts as their mean: a drift of the
      //    machine's speed during the round moves both sides of native/floor alike. Right after a
      //    floor run, the first loop was seen 2-3 % slower on ResNet50 than the second, whichever
      //    it was (the allocator settling into the loop's pattern), so an untimed 2-step run
      //    comes first and the two loops take turns going first.
      await floorRun([async () => {
        await clf.pgd({ ...opts, iterations: 2 });
        if (((job.round ?? 0) + r) % 2 === 0) { await native(); await jsDriven(); } else { await jsDriven(); await native(); }
      }]);
    }
    // 4. event-loop lag, in a native run of its own: the sampling timer wakes the JS thread every
    //    10 ms, which on a machine whose cores all compute costs the timed runs a few percent.
    //    run.ts asks for it in the last round only.
    if (job.lag !== false) {
      const interval = 10;
      let last = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        lags.push(Math.max(0, now - last - interval));
        last = now;
      }, interval);
      const tl = performance.now();
      await clf.pgd({ ...opts, iterations: Math.max(job.steps, Math.ceil(1000 / Math.max(0.01, median(out.nativeStepMs)))) });
      clearInterval(timer);
      out.lagRunMs = performance.now() - tl;
      lags.sort((a, b) => a - b);
      out.lag = {
        maxMs: lags.length ? lags[lags.length - 1]! : 0,
        p99Ms: lags.length ? lags[Math.min(lags.length - 1, Math.floor(lags.length * 0.99))]! : 0,
        samples: lags.length,
      };
    }
    if (nativeImages && jsImages) out.jsMatchesNative = nativeImages.every((v, i) => v === jsImages![i]);
    if (job.outImages && nativeImages) writeFileSync(job.outImages, Buffer.from(nativeImages.buffer, nativeImages.byteOffset, nativeImages.byteLength));
  } else if (job.kind === 'contended') {
    out.logitsMs = [];
    out.nativeCpuPerWall = [];
    const native = async () => {
      let at = -1;
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      await clf.pgd({ ...opts, iterations: job.steps, progressEvery: job.steps, onProgress: (p) => { at = p.elapsedMs; } });
      const c = process.cpuUsage(c0);
      out.nativeCpuPerWall!.push((c.user + c.system) / 1000 / (performance.now() - w0));
      // The count the compute thread ran with at the end (the default policy re-reads the load
      // before each job and every 250 ms).
      out.threads = getThreads();
      for (let i = 0; i < 100 && at < 0; i++) await tick();
      out.nativeStepMs.push(at / job.steps);
    };
    const jsDriven = async () => {
      const s = await clf.session({ ...opts, iterations: job.steps });
      const tj = performance.now();
      for (let i = 0; i < job.steps; i++) await s.step();
      out.jsStepMs.push((performance.now() - tj) / job.steps);
      await s.finish();
    };
    const logits = async () => {
      const reps = job.logitsReps ?? job.steps;
      const tl = performance.now();
      for (let i = 0; i < reps; i++) await clf.logits(x0);
      out.logitsMs!.push((performance.now() - tl) / reps);
    };
    for (let r = 0; r < job.runs; r++) {
      const order = job.extras ? [native, jsDriven, logits] : [native];
      // Whichever goes first in a process runs slower: take turns.
      if (((job.round ?? 0) + r) % 2 === 1) order.reverse();
      for (const f of order) await f();
    }
  } else {
    for (let r = 0; r < job.runs; r++) await floorRun();
    if (job.bf16Check) {
      await clf.floor(x0, targets, Math.max(1, job.warmup), true);
      const bfFloor: number[] = [];
      for (let r = 0; r < job.runs; r++) bfFloor.push(mean(await clf.floor(x0, targets, job.floorReps, true)));
      const a = await clf.pgd({ ...opts, bf16: false, iterations: job.steps });
      const b = await clf.pgd({ ...opts, bf16: true, iterations: job.steps });
      const per = x0.data.length / job.batch;
      let maxAbs = 0;
      const relL2: number[] = [];
      let agree = 0;
      for (let i = 0; i < job.batch; i++) {
        let d = 0;
        let moved = 0;
        for (let j = i * per; j < (i + 1) * per; j++) {
          const e = Math.abs(a.images.data[j]! - b.images.data[j]!);
          maxAbs = Math.max(maxAbs, e);
          d += e * e;
          moved += (a.images.data[j]! - x0.data[j]!) ** 2;
        }
        // Distance between the fp32 and bf16 results, relative to how far the fp32 run moved.
        relL2.push(Math.sqrt(d) / Math.max(1e-12, Math.sqrt(moved)));
        if (a.predictions[i] === b.predictions[i]) agree++;
      }
      out.bf16 = { floorMs: bfFloor, maxAbsDiff: maxAbs, relL2, fp32Loss: Array.from(a.losses), bf16Loss: Array.from(b.losses), agree: agree / job.batch };
    }
  }
  await clf.dispose();
  out.maxRssKb = process.resourceUsage().maxRSS;
  // Exit only once the line is flushed: a pipe is written asynchronously.
  await new Promise<void>((res) => process.stdout.write(`${JSON.stringify(out)}\n`, () => res()));
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
