/** The workloads (model, batch, steps, rounds) and the inputs the native and the Python runs share. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { args, BENCH, log, PYTHON, QUICK, ROOT, SCRATCH } from './options.js';
import { lastJson, run } from './processes.js';

export interface Workload {
  id: string;
  label: string;
  model: string;
  inputShape: [number, number, number];
  batch: number;
  eps: number;
  step: number;
  steps: number;
  runs: number;
  floorReps: number;
  /** Floor-lowering table in --quick mode too. */
  quickAblation: boolean;
  stepFlopsPerImage?: number;
  /** The TensorFlow.js peer runs this many steps per round beside the native loop. */
  tfjsSteps?: number;
  /** In the contended table: steps per run, and whether the JS-driven session and logits() are timed too. */
  contended?: { steps: number; extras: boolean };
  /** Run only when --only names this id exactly (the other batches `robust-synth study` uses). */
  optIn?: boolean;
}

export function workloads(resnetPath: string): Workload[] {
  const q = QUICK;
  const fashion = resolve(args['fashion-model'] ?? [join(ROOT, 'models/fashion-robust.pt'), join(ROOT, 'models/fashion-standard.pt')].find(existsSync)!);
  // Generation settings (lib/tasks/common.ts): ResNet50 eps 40 step 1; Fashion eps 8 step 0.5.
  const all: Workload[] = [
    { id: 'resnet50-b1', label: 'ResNet50 224, batch 1', model: resnetPath, inputShape: [3, 224, 224], batch: 1, eps: 40, step: 1,
      steps: q ? 4 : 10, runs: q ? 4 : 6, floorReps: q ? 2 : 4, quickAblation: true, contended: { steps: q ? 3 : 6, extras: false } },
    { id: 'resnet50-b8', label: 'ResNet50 224, batch 8', model: resnetPath, inputShape: [3, 224, 224], batch: 8, eps: 40, step: 1,
      steps: q ? 2 : 4, runs: q ? 4 : 6, floorReps: q ? 1 : 2, quickAblation: false },
    // The study's other device batches (lib/study/parts/common.ts partBatch: 5 at --quick, 6 for
    // the full run's 90 translations): `npm run bench -- --only resnet50-b5,resnet50-b6`.
    ...[5, 6].map((batch): Workload => ({ id: `resnet50-b${batch}`, label: `ResNet50 224, batch ${batch}`, model: resnetPath, inputShape: [3, 224, 224], batch, eps: 40, step: 1,
      steps: q ? 2 : 4, runs: q ? 4 : 6, floorReps: q ? 1 : 2, quickAblation: false, optIn: true })),
    { id: 'fashion-b1', label: 'Fashion-MNIST, batch 1', model: fashion, inputShape: [1, 28, 28], batch: 1, eps: 8, step: 0.5,
      steps: q ? 100 : 300, runs: q ? 6 : 8, floorReps: q ? 50 : 150, quickAblation: true,
      tfjsSteps: q ? 100 : 300, contended: { steps: q ? 50 : 150, extras: true } },
    { id: 'fashion-b64', label: 'Fashion-MNIST, batch 64', model: fashion, inputShape: [1, 28, 28], batch: 64, eps: 8, step: 0.5,
      steps: q ? 20 : 60, runs: q ? 6 : 8, floorReps: q ? 10 : 30, quickAblation: true,
      // TF.js's wasm backend takes ~0.6-1.2 s per step here (its input-gradient convolution is a plain loop): fewer steps.
      tfjsSteps: q ? 4 : 10, contended: { steps: q ? 10 : 30, extras: false } },
    { id: 'fashion-b256', label: 'Fashion-MNIST, batch 256', model: fashion, inputShape: [1, 28, 28], batch: 256, eps: 8, step: 0.5,
      steps: q ? 6 : 20, runs: q ? 6 : 8, floorReps: q ? 3 : 10, quickAblation: false },
  ];
  const only = args.only?.split(',').map((s) => s.trim()).filter(Boolean);
  return only ? all.filter((w) => (w.optIn ? only.includes(w.id) : only.some((o) => w.id.includes(o)))) : all.filter((w) => !w.optIn);
}

export function writeInputs(w: Workload): { x0File: string; targetsFile: string } {
  const [c, h, ww] = w.inputShape;
  const n = w.batch * c * h * ww;
  const x = new Float32Array(n);
  let a = 12345;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    x[i] = (a >>> 8) / 16777216;
  }
  const t = Int32Array.from({ length: w.batch }, (_, i) => (i * 7 + 3) % (c === 3 ? 1000 : 10));
  const x0File = join(SCRATCH, `${w.id}.x0.f32`);
  const targetsFile = join(SCRATCH, `${w.id}.targets.i32`);
  writeFileSync(x0File, Buffer.from(x.buffer));
  writeFileSync(targetsFile, Buffer.from(t.buffer));
  return { x0File, targetsFile };
}

export async function ensureResnet(): Promise<string> {
  const path = join(SCRATCH, 'resnet50-random.pt');
  if (!existsSync(path)) {
    log('scripting a random-weight ResNet50 (models/export_resnet50.py --random) ...');
    await run(PYTHON, [join(ROOT, 'models/export_resnet50.py'), '--random', '--seed', '0', '--out', path]);
  }
  return path;
}

export async function stepFlops(w: Workload): Promise<number> {
  const out = await run(PYTHON, [join(BENCH, 'python_loop.py'), 'flops', '--model', w.model, '--shape', w.inputShape.join(',')]);
  return lastJson<{ stepFlops: number }>(out).stepFlops;
}

export function readFloats(path: string): Float32Array {
  const buf = readFileSync(path);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Exports a TorchScript model for the TF.js peer (bench/export_tfjs_weights.py) into bench/out/. */
export async function exportForTfjs(w: Workload): Promise<string> {
  const manifest = join(SCRATCH, `${basename(w.model, '.pt')}.tfjs.json`);
  await run(PYTHON, [join(BENCH, 'export_tfjs_weights.py'), '--model', w.model, '--shape', w.inputShape.join(','), '--out', manifest]);
  return manifest;
}
