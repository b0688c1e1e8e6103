/**
 * Soak: many small jobs of every kind in a row (PGD with and without progress, logits,
 * JS-stepped sessions, aborted jobs, jobs failing inside the engine, a model loaded and disposed),
 * then checks that RSS stayed flat after warm-up (within +10 %) and that no CPU tensor
 * allocation outlived its job.
 *
 *   npx tsx scripts/soak.ts [--jobs 1000] [--model fashion-standard] [--threads N]
 *
 * test/reliability.test.ts runs a reduced form (200 jobs) in CI.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadBinding } from '../binding/index.js';
import { Classifier, setThreads } from '../lib/classifier.js';
import type { ImageBatch } from '../lib/tensor.js';

export interface SoakOptions {
  /** A loaded classifier (1x28x28 inputs); the script loads fashion-standard. */
  classifier: Classifier;
  jobs: number;
  /** Jobs run before the baseline is taken (default: 10 %, at least 20). */
  warmup?: number;
  log?: (line: string) => void;
}

export interface SoakResult {
  jobs: number;
  ms: number;
  rssWarm: number;
  rssEnd: number;
  rssMax: number;
  liveWarm: { allocations: number; bytes: number };
  liveEnd: { allocations: number; bytes: number };
  failures: number;
  expectedFailures: number;
}

let gcFn: (() => void) | undefined;

/** A full GC, then a few turns of the event loop: the finalizers of the addon's Buffers run there. */
export async function forceGc(): Promise<void> {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) {
    gcFn();
    await new Promise((r) => setImmediate(r));
  }
}

function batch(n: number, seed: number): ImageBatch {
  const data = new Float32Array(n * 784);
  let a = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    data[i] = a / 4294967296;
  }
  return { data, shape: [n, 1, 28, 28] };
}

function liveTensors(): { allocations: number; bytes: number } {
  const { allocations, bytes } = loadBinding().tensorStats();
  return { allocations, bytes };
}

export async function soak({ classifier: clf, jobs, warmup = Math.max(20, Math.floor(jobs / 10)), log = () => {} }: SoakOptions): Promise<SoakResult> {
  const t0 = performance.now();
  let rssWarm = 0;
  let rssMax = 0;
  let liveWarm = liveTensors();
  let failures = 0;
  let expectedFailures = 0;
  const targets = (i: number) => [i % 10, (i + 1) % 10, (i + 2) % 10, (i + 3) % 10];
  for (let i = 0; i < jobs; i++) {
    if (i === warmup) {
      await forceGc();
      rssWarm = process.memoryUsage.rss();
      liveWarm = liveTensors();
      log(`warm after ${i} jobs: rss ${(rssWarm / 1e6).toFixed(1)} MB, ${liveWarm.allocations} live tensor allocations`);
    }
    const x0 = batch(4, i);
    try {
      if (i % 50 === 49) {
        expectedFailures++;
        await clf.pgd({ x0, targets: targets(i), eps: 1, step: 0.2, iterations: 2, feature: { index: 1_000_000 } }); // fails inside the engine, after the forward (ERR_BAD_INPUT)
      } else if (i % 25 === 24) {
        expectedFailures++;
        const ac = new AbortController();
        await clf.pgd({ x0, targets: targets(i), eps: 1, step: 0.2, iterations: 1000, signal: ac.signal, onProgress: (p) => p.step === 2 && ac.abort() });
      } else if (i % 100 === 37) {
        const other = await Classifier.load(clf.path, { device: 'cpu', inputShape: clf.inputShape });
        await other.logits(x0);
        await other.dispose();
      } else if (i % 10 === 3) {
        const s = await clf.session({ x0, targets: targets(i), eps: 1, step: 0.2, iterations: 2 });
        await s.step();
        await s.step();
        await s.finish();
      } else if (i % 3 === 0) {
        await clf.logits(batch(8, i));
      } else {
        await clf.pgd({ x0, targets: targets(i), eps: 1.5, step: 0.3, iterations: 3, randomStart: true, seed: i, onProgress: i % 2 ? () => {} : undefined });
      }
    } catch (e) {
      failures++;
      const code = (e as { code?: string }).code;
      if (code !== 'ERR_ABORTED' && code !== 'ERR_BAD_INPUT') throw e;
    }
    // External Buffers are freed by finalizers that run when the event loop turns.
    await new Promise((r) => setImmediate(r));
    if (i % 50 === 0) rssMax = Math.max(rssMax, process.memoryUsage.rss());
    if (i > 0 && i % 250 === 0) log(`${i} jobs: rss ${(process.memoryUsage.rss() / 1e6).toFixed(1)} MB`);
  }
  await forceGc();
  const rssEnd = process.memoryUsage.rss();
  const liveEnd = liveTensors();
  return { jobs, ms: performance.now() - t0, rssWarm, rssEnd, rssMax: Math.max(rssMax, rssEnd), liveWarm, liveEnd, failures, expectedFailures };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const jobs = Number(arg('jobs') ?? 1000);
  if (arg('threads')) setThreads(Number(arg('threads')));
  const clf = await Classifier.load(arg('model') ?? 'fashion-standard', { device: 'cpu' });
  if (clf.inputShape.join('x') !== '1x28x28') throw new Error('the soak needs a 1x28x28 model');
  const r = await soak({ classifier: clf, jobs, log: (l) => console.log(l) });
  await clf.dispose();
  const rssOk = r.rssEnd <= r.rssWarm * 1.1;
  const liveOk = r.liveEnd.allocations === r.liveWarm.allocations && r.liveEnd.bytes === r.liveWarm.bytes;
  console.log(
    `${r.jobs} jobs in ${(r.ms / 1000).toFixed(1)} s; rss ${(r.rssWarm / 1e6).toFixed(1)} -> ${(r.rssEnd / 1e6).toFixed(1)} MB ` +
      `(${(((r.rssEnd - r.rssWarm) / r.rssWarm) * 100).toFixed(1)} %, max ${(r.rssMax / 1e6).toFixed(1)} MB) ${rssOk ? 'ok' : 'GREW'}; ` +
      `live tensor allocations ${r.liveWarm.allocations} -> ${r.liveEnd.allocations} ${liveOk ? 'ok' : 'LEAK'}; ` +
      `${r.failures} of ${r.expectedFailures} deliberate failures`,
  );
  return rssOk && liveOk && r.failures === r.expectedFailures ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  // Before the addon loads: count live CPU tensor allocations.
  process.env.ROBUST_SYNTH_COUNT_TENSORS = '1';
  main().then(
    (code) => (process.exitCode = code),
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
