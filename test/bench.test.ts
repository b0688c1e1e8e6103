// The benchmark harness (bench/): its worker and its Python loop, on a tiny configuration. The
// timings are not checked (that is `npm run bench`); what is: the pieces run, report what
// run.ts reads, and measure the same loop (native = JS-driven = Python, bit for bit).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { WorkerResult } from '../bench/worker.js';
import { python, randomBatch, tempDir } from './helpers.js';

const MODEL = 'models/fashion-standard.pt';
let dir: string;
let x0File: string;
let targetsFile: string;

beforeAll(() => {
  dir = tempDir('rs-bench-');
  x0File = join(dir, 'x0.f32');
  targetsFile = join(dir, 't.i32');
  const x0 = randomBatch([4, 1, 28, 28], 5);
  writeFileSync(x0File, Buffer.from(x0.data.buffer));
  writeFileSync(targetsFile, Buffer.from(new Int32Array([0, 3, 7, 9]).buffer));
});

function floats(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

describe('bench harness', () => {
  it('worker: native, JS-driven and floor runs, and the same result as the Python loop', () => {
    const job = {
      kind: 'workload', model: MODEL, inputShape: [1, 28, 28], batch: 4, x0File, targetsFile, threads: 2,
      eps: 8, step: 0.5, steps: 6, runs: 2, floorReps: 2, warmup: 2, outImages: join(dir, 'native.f32'),
    };
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/worker.ts', JSON.stringify(job)], { encoding: 'utf8', timeout: 120_000 });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as WorkerResult;
    expect(r.nativeStepMs).toHaveLength(2);
    expect(r.jsStepMs).toHaveLength(2);
    expect(r.floorRunMs).toHaveLength(2);
    expect(r.floorMs).toHaveLength(8);
    expect(r.nativeStepMs.every((x) => x > 0 && x < 10_000)).toBe(true);
    expect(r.jsMatchesNative).toBe(true);
    expect(r.maxRssKb).toBeGreaterThan(10_000);
    // The 10 ms timer kept firing through the ~1 s native run: the event loop was free.
    expect(r.lagRunMs).toBeGreaterThan(100);
    expect(r.lag.samples).toBeGreaterThanOrEqual(Math.floor(r.lagRunMs! / 10 / 2));
    expect(r.threads).toBe(2);
    // (and the kernel self-check's settings, Classifier.preparation.kernels)
    expect(r.preparation).toMatchObject({ channelsLast: true, freeze: true });

    // The loader gives the native process ATen's AVX-512 kernels where the CPU has them: Python too.
    if (/AVX512/.test(r.build.cpuCapability)) process.env.ATEN_CPU_CAPABILITY ??= 'avx512';
    const py = JSON.parse(python([
      'bench/python_loop.py', 'loop', '--model', MODEL, '--shape', '1,28,28', '--batch', '4', '--steps', '6', '--runs', '1',
      '--floor-reps', '1', '--warmup', '1', '--threads', '2', '--eps', '8', '--step', '0.5', '--x0', x0File, '--targets', targetsFile,
      '--out-images', join(dir, 'python.f32'), '--channels-last', '--freeze',
    ]).trim().split('\n').at(-1)!);
    expect(py.stepMs).toHaveLength(1);
    expect(py.threads).toBe(2);
    const a = floats(join(dir, 'native.f32'));
    const b = floats(join(dir, 'python.f32'));
    expect(a.length).toBe(4 * 784);
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
    expect(d).toBeLessThanOrEqual(1e-6);
    // and the run moved the images
    const x0 = floats(x0File);
    expect(a.some((v, i) => Math.abs(v - x0[i]!) > 0.01)).toBe(true);
  }, 180_000);

  it("worker 'contended': native, JS-driven and logits timings with the library's own thread policy", () => {
    const job = {
      kind: 'contended', model: MODEL, inputShape: [1, 28, 28], batch: 4, x0File, targetsFile,
      eps: 8, step: 0.5, steps: 3, runs: 1, floorReps: 1, warmup: 1, extras: true, logitsReps: 3, lag: false,
    };
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/worker.ts', JSON.stringify(job)], { encoding: 'utf8', timeout: 120_000 });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as WorkerResult;
    expect(r.nativeStepMs).toHaveLength(1);
    expect(r.jsStepMs).toHaveLength(1);
    expect(r.logitsMs).toHaveLength(1);
    expect(r.nativeCpuPerWall).toHaveLength(1);
    expect([...r.nativeStepMs, ...r.jsStepMs, ...r.logitsMs!].every((x) => x > 0 && x < 10_000)).toBe(true);
    expect(r.floorRunMs).toHaveLength(0);
    expect(r.threads).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('python_loop.py load: a co-runner that says when it computes', () => {
    const lines = python(['bench/python_loop.py', 'load', '--threads', '1', '--seconds', '0.5']).trim().split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({ ready: true });
    expect(JSON.parse(lines.at(-1)!).convs).toBeGreaterThan(0);
  });

  it('python_loop.py flops: twice the forward convolution and linear FLOPs', () => {
    const r = JSON.parse(python(['bench/python_loop.py', 'flops', '--model', MODEL, '--shape', '1,28,28']).trim());
    expect(r.stepFlops).toBe(2 * r.forwardFlops);
    expect(r.forwardFlops).toBeGreaterThan(1e6);
    expect(r.byOp['aten::conv2d']).toBeGreaterThan(0);
  });
});
