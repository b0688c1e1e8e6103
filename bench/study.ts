/**
 * The study at 224x224 on this machine, timed: `robust-synth study` on random-weight ResNet50s
 * (the compute of a PGD step does not depend on the weights) and a generated Imagenette-shaped
 * folder, with the load average before and after each run.
 *
 *   npx tsx bench/study.ts [--label L] [--jit profiling|simple|legacy] [-- extra study flags...]
 *
 * Writes bench/out/study-<label>.json: wall time, every part's seconds, PGD image-steps and
 * ms per image-step, and the full run's time derived from the per-part rates. The fixture
 * (two exported ResNet50s and the folder: 100 training and 4 validation images per class, at
 * Imagenette's 320-pixel size) is made once under bench/out/study-fixture/.
 * --jit sets the TorchScript executor (setJitExecutor) in the study's process before it loads
 * a model. Without --quick among the extra flags' replacements (e.g. `-- --iterations 40
 * --per-class 4`), the study runs at those settings instead of --quick.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FULL } from '../lib/study/config.js';
import { cpuPeak } from './lib/cpu.js';
import { makeImagenette } from '../test/fixtures/imagenette.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'bench', 'out');
const FIXTURE = join(OUT, 'study-fixture');
const PYTHON = process.env.RS_PYTHON ?? '/usr/bin/python3';

const { values, positionals } = parseArgs({
  options: { label: { type: 'string', default: 'quick' }, jit: { type: 'string' } },
  allowPositionals: true,
});

async function fixture(): Promise<{ robust: string; standard: string; data: string }> {
  const models = join(FIXTURE, 'models');
  const data = join(FIXTURE, 'imagenette2');
  if (!existsSync(join(models, 'standard.pt'))) {
    execFileSync(PYTHON, [join(ROOT, 'test/fixtures/study_models.py'), models], { stdio: 'inherit' });
  }
  if (!existsSync(join(data, '.done'))) {
    rmSync(data, { recursive: true, force: true });
    await makeImagenette(data, { classes: 10, train: 100, val: FULL.restorePerClass, width: 320, height: 240 });
    writeFileSync(join(data, '.done'), '');
  }
  return { robust: join(models, 'robust.pt'), standard: join(models, 'standard.pt'), data };
}

interface Part { name: string; status: string; seconds: number; steps: number }

/**
 * FLOP of one ResNet50 PGD image-step at 224x224: twice the forward's convolution and linear
 * FLOP (the backward w.r.t. the input repeats each layer's work once), as `npm run bench` counts
 * them with the torch profiler (bench/README.md, "FLOPs").
 */
const RESNET50_STEP_FLOP = 16.36e9;

/** Image-steps of each part of the full run (the reference settings), by part-name prefix. */
function fullSteps(name: string): number {
  const classes = 10;
  const s = FULL.settings;
  if (name.endsWith('-baselines')) return 0; // no PGD
  if (name.startsWith('generate-')) return classes * FULL.generatePerClass * s.generate.iterations;
  if (name.startsWith('inpaint-')) return classes * FULL.restorePerClass * s.inpaint.iterations;
  if (name.startsWith('superResolve-') || name.startsWith('super-resolve-')) return classes * FULL.restorePerClass * s.superResolve.iterations;
  if (name.startsWith('translate-')) return classes * FULL.translatePerClass * (classes - 1) * s.translate.iterations;
  return 0;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const f = await fixture();
  const out = join(OUT, `study-run-${values.label}`);
  rmSync(out, { recursive: true, force: true });
  const args = ['dist/lib/cli/index.js', 'study', '--robust', f.robust, '--standard', f.standard, '--data', f.data, '--out', out];
  if (!positionals.some((a) => a === '--iterations' || a === '--per-class')) args.push('--quick');
  args.push(...positionals);
  const pre: string[] = [];
  if (values.jit) {
    const preload = join(OUT, `jit-${values.jit}.mjs`);
    writeFileSync(preload, `import { setJitExecutor } from ${JSON.stringify(join(ROOT, 'dist/lib/index.js'))};\nsetJitExecutor(${JSON.stringify(values.jit)});\n`);
    pre.push('--import', preload);
  }
  const before = loadavg();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [...pre, ...args], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
  const wall = (performance.now() - t0) / 1000;
  const after = loadavg();
  if (r.status !== 0) throw new Error(`study exited ${r.status}`);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { parts: Part[] };
  const peak = cpuPeak().fp32Gflops;
  const gflops = (steps: number, seconds: number) => (steps && seconds ? Math.round((steps * RESNET50_STEP_FLOP) / seconds / 1e8) / 10 : undefined);
  const parts = report.parts.map((p) => {
    const g = gflops(p.steps, p.seconds);
    return { ...p, msPerImageStep: p.steps ? (1000 * p.seconds) / p.steps : undefined, gflops: g, fp32PeakPercent: g ? Math.round((1000 * g) / peak) / 10 : undefined, fullSteps: fullSteps(p.name) };
  });
  let derived = 0;
  for (const p of parts) derived += p.msPerImageStep !== undefined ? (p.msPerImageStep * p.fullSteps) / 1000 : p.seconds;
  const steps = parts.reduce((a, p) => a + p.steps, 0);
  const result = {
    label: values.label,
    flags: positionals,
    jit: values.jit ?? 'default',
    date: new Date().toISOString(),
    wallSeconds: Math.round(wall * 10) / 10,
    imageSteps: steps,
    msPerImageStepAllIncluded: Math.round((1000 * wall) / steps),
    gflopsAllIncluded: gflops(steps, wall),
    fp32PeakGflopsEstimate: Math.round(peak),
    loadBefore: before.map((x) => Math.round(x * 100) / 100),
    loadAfter: after.map((x) => Math.round(x * 100) / 100),
    fullRunDerivedMinutes: Math.round(derived / 6) / 10,
    fullRunImageSteps: parts.reduce((a, p) => a + p.fullSteps, 0),
    parts,
  };
  writeFileSync(join(OUT, `study-${values.label}.json`), JSON.stringify(result, null, 2));
  console.log(JSON.stringify({ ...result, parts: parts.map((p) => `${p.name}: ${p.seconds} s, ${p.steps} steps, ${p.msPerImageStep?.toFixed(1) ?? '-'} ms/step, ${p.gflops ?? '-'} GFLOP/s (${p.fp32PeakPercent ?? '-'} % of the fp32 estimate)`) }, null, 2));
}

await main();
