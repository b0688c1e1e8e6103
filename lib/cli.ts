#!/usr/bin/env node
/** The `robust-synth` command line. Each command is a thin shell over the library. */
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Classifier, setThreads, type Device } from './classifier.js';
import { readFashionMnist, readImageFolder, type LabeledImages } from './datasets.js';
import { RobustSynthError } from './errors.js';
import { gridPng, readImage, writeFileAtomic, writePng } from './images.js';
import { listModels } from './models.js';
import { fitSeeds, saveSeeds, SEED_KINDS, type SeedKind } from './seeds.js';
import type { CommonTaskOptions, TaskProgress, TaskResult } from './tasks/common.js';
import { generate } from './tasks/generate.js';
import { inpaint } from './tasks/inpaint.js';
import { superResolve } from './tasks/superResolve.js';
import { translate } from './tasks/translate.js';
import { concat, type ImageBatch } from './tensor.js';

const USAGE = `robust-synth: image synthesis with a single robust classifier

Usage:
  robust-synth demo          [--out DIR]
  robust-synth generate      --model NAME|PATH --class NAME|INDEX [--count N] [--seed uniform|normal|mvn] [--seeds FILE] [--out DIR]
  robust-synth inpaint       --model NAME|PATH --image FILE [--hole x,y,w,h | --mask FILE] [--label CLASS] [--out DIR]
  robust-synth super-resolve --model NAME|PATH --image FILE [--factor N] [--label CLASS] [--out DIR]
  robust-synth translate     --model NAME|PATH --image FILE|DIR --to CLASS [--out DIR]
  robust-synth fit-seeds     --data DIR|fashion-mnist --out FILE [--factor N] [--model NAME|PATH]
  robust-synth eval          [--quick] [--bf16] [--out DIR]
  robust-synth models        [--dir DIR]
  robust-synth setup         [--check] [--variant cpu|cuda]
  robust-synth build

Task options: --eps --step --iterations --device cpu|cuda|auto --batch N --threads N|auto --bf16 --input-shape C,H,W
The embedded models are fashion-robust and fashion-standard (Fashion-MNIST, 28x28).`;

const TASK_OPTIONS = {
  model: { type: 'string', default: 'fashion-robust' },
  out: { type: 'string' },
  eps: { type: 'string' },
  step: { type: 'string' },
  iterations: { type: 'string' },
  device: { type: 'string', default: 'auto' },
  batch: { type: 'string' },
  threads: { type: 'string' },
  bf16: { type: 'boolean', default: false },
  'model-dir': { type: 'string', multiple: true },
  'input-shape': { type: 'string' },
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

function num(v: Values, key: string): number | undefined {
  const s = v[key];
  if (s === undefined) return undefined;
  const n = Number(s);
  if (typeof s !== 'string' || s.trim() === '' || !Number.isFinite(n)) throw new RobustSynthError('ERR_BAD_INPUT', `--${key} expects a number, got '${String(s)}'`);
  return n;
}

/** A progress bar on a terminal, plain lines (every 10 %) elsewhere. */
export function progressReporter(label: string, stream: NodeJS.WriteStream = process.stderr): { update: (p: TaskProgress) => void; done: () => void } {
  const tty = stream.isTTY;
  let lastPct = -1;
  return {
    update(p) {
      const frac = p.images ? (p.done + (p.step / Math.max(1, p.total)) * p.inBatch) / p.images : 0;
      const pct = Math.min(100, Math.floor(Math.min(1, frac) * 100));
      if (tty) {
        const width = 30;
        const fill = Math.round((pct / 100) * width);
        stream.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% loss ${p.loss.toFixed(3)}`);
      } else if (pct >= lastPct + 10 || (pct === 100 && lastPct !== 100)) {
        lastPct = pct;
        stream.write(`${label}: ${pct}% (loss ${p.loss.toFixed(3)})\n`);
      }
    },
    done() {
      if (tty) stream.write('\n');
    },
  };
}

async function loadModel(v: Values): Promise<Classifier> {
  if (v.threads === 'auto') setThreads('auto');
  else {
    const threads = num(v, 'threads');
    if (threads !== undefined) setThreads(threads);
  }
  const shape = v['input-shape'];
  let inputShape: [number, number, number] | undefined;
  if (shape !== undefined) {
    const parts = String(shape).split(',').map((s) => Number(s.trim()));
    if (parts.length !== 3 || !parts.every((n) => Number.isInteger(n) && n >= 1)) {
      throw new RobustSynthError('ERR_BAD_INPUT', `--input-shape expects C,H,W (three integers >= 1), got '${String(shape)}'`);
    }
    inputShape = parts as [number, number, number];
  }
  return Classifier.load(String(v.model), { device: v.device as Device, modelDirs: (v['model-dir'] as string[] | undefined) ?? [], ...(inputShape ? { inputShape } : {}) });
}

function taskOptions(v: Values, clf: Classifier, label: string): { options: CommonTaskOptions; finish: () => void } {
  const progress = progressReporter(label);
  return {
    options: {
      classifier: clf,
      eps: num(v, 'eps'),
      step: num(v, 'step'),
      iterations: num(v, 'iterations'),
      batch: num(v, 'batch'),
      bf16: Boolean(v.bf16),
      onProgress: progress.update,
    },
    finish: progress.done,
  };
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

export interface ManifestEntry {
  file: string;
  task: string;
  source: string;
  target: { index: number; name: string };
  loss: number;
  predicted: { index: number; name: string };
  settings: Record<string, unknown>;
}

/** The output directory's manifest. Opening it also removes temp files a killed run left behind. */
export class Manifest {
  readonly path: string;
  entries: ManifestEntry[];
  constructor(dir: string) {
    if (existsSync(dir)) for (const f of readdirSync(dir)) if (f.endsWith('.partial')) rmSync(join(dir, f), { force: true });
    this.path = join(dir, 'manifest.json');
    this.entries = existsSync(this.path) ? (JSON.parse(readFileSync(this.path, 'utf8')).entries as ManifestEntry[]) : [];
  }
  has(file: string): boolean {
    return this.entries.some((e) => e.file === file);
  }
  add(e: ManifestEntry): void {
    this.entries = this.entries.filter((x) => x.file !== e.file);
    this.entries.push(e);
  }
  save(): void {
    writeFileAtomic(this.path, JSON.stringify({ entries: this.entries }, null, 2) + '\n');
  }
}

/** Writes each result image, its manifest entry, then the manifest and the contact sheet. */
async function writeOutputs(dir: string, clf: Classifier, r: TaskResult, names: string[], sources: string[], manifest = new Manifest(dir)): Promise<void> {
  for (let i = 0; i < names.length; i++) {
    await writePng(join(dir, names[i]!), r.images, i);
    manifest.add({
      file: names[i]!,
      task: r.task,
      source: sources[i]!,
      target: { index: r.targets[i]!, name: clf.classes[r.targets[i]!]! },
      loss: r.losses[i]!,
      predicted: { index: r.predictions[i]!, name: clf.classes[r.predictions[i]!]! },
      settings: { ...r.settings, model: clf.name },
    });
  }
  manifest.save();
}

async function contactSheet(dir: string, clf: Classifier, manifest: Manifest): Promise<void> {
  const [c, h, w] = clf.inputShape;
  const imgs: ImageBatch[] = [];
  for (const e of manifest.entries) {
    if (existsSync(join(dir, e.file))) imgs.push(await readImage(join(dir, e.file), { channels: c, height: h, width: w }));
  }
  if (imgs.length) writeFileAtomic(join(dir, 'contact-sheet.png'), await gridPng(concat(imgs), { columns: Math.min(10, imgs.length) }));
}

async function cmdGenerate(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...TASK_OPTIONS, class: { type: 'string', multiple: true }, count: { type: 'string' }, seed: { type: 'string', default: 'mvn' }, seeds: { type: 'string' }, 'random-seed': { type: 'string' } } });
  if (!values.class?.length) throw new RobustSynthError('ERR_BAD_INPUT', '--class is required (a class name or index; repeatable)');
  if (!SEED_KINDS.includes(values.seed as SeedKind)) throw new RobustSynthError('ERR_BAD_INPUT', `--seed must be one of ${SEED_KINDS.join(', ')}`);
  const dir = resolve(values.out ?? 'out/generate');
  const clf = await loadModel(values);
  try {
    const t = taskOptions(values, clf, 'generate');
    const r = await generate({ ...t.options, classes: values.class, count: num(values, 'count') ?? 1, seed: values.seed as SeedKind, seeds: values.seeds, randomSeed: num(values, 'random-seed') });
    t.finish();
    const names = Array.from(r.targets, (k, i) => `${slug(clf.classes[k]!)}-${values.seed}-${i}.png`);
    const manifest = new Manifest(dir);
    await writeOutputs(dir, clf, r, names, names.map(() => `seed:${values.seed}`), manifest);
    await contactSheet(dir, clf, manifest);
    console.log(`wrote ${names.length} images, manifest.json and contact-sheet.png to ${dir}`);
  } finally {
    await clf.dispose();
  }
  return 0;
}

async function cmdInpaint(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...TASK_OPTIONS, image: { type: 'string' }, hole: { type: 'string' }, mask: { type: 'string' }, label: { type: 'string' } } });
  if (!values.image) throw new RobustSynthError('ERR_BAD_INPUT', '--image is required');
  const dir = resolve(values.out ?? 'out/inpaint');
  const clf = await loadModel(values);
  try {
    const [c, h, w] = clf.inputShape;
    const image = await readImage(values.image, { channels: c, height: h, width: w });
    let hole;
    if (values.hole) {
      const parts = values.hole.split(',').map(Number);
      if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p))) throw new RobustSynthError('ERR_BAD_INPUT', `--hole expects x,y,w,h integers, got '${values.hole}'`);
      hole = { x: parts[0]!, y: parts[1]!, width: parts[2]!, height: parts[3]! };
    }
    const mask = values.mask ? await readImage(values.mask, { channels: 1, height: h, width: w }) : undefined;
    const t = taskOptions(values, clf, 'inpaint');
    const r = await inpaint({ ...t.options, image, hole, mask, label: values.label });
    t.finish();
    const name = `${basename(values.image, extname(values.image))}-inpainted.png`;
    const manifest = new Manifest(dir);
    await writePng(join(dir, `${basename(values.image, extname(values.image))}-masked.png`), r.starts, 0);
    await writeOutputs(dir, clf, r, [name], [values.image], manifest);
    writeFileAtomic(join(dir, 'contact-sheet.png'), await gridPng([image, r.starts, r.images]));
    console.log(`wrote ${name} to ${dir}`);
  } finally {
    await clf.dispose();
  }
  return 0;
}

async function cmdSuperResolve(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...TASK_OPTIONS, image: { type: 'string' }, factor: { type: 'string' }, label: { type: 'string' } } });
  if (!values.image) throw new RobustSynthError('ERR_BAD_INPUT', '--image is required');
  const dir = resolve(values.out ?? 'out/super-resolve');
  const clf = await loadModel(values);
  try {
    const [c, h, w] = clf.inputShape;
    const image = await readImage(values.image, { channels: c, height: h, width: w });
    const t = taskOptions(values, clf, 'super-resolve');
    const r = await superResolve({ ...t.options, image, factor: num(values, 'factor'), label: values.label });
    t.finish();
    const stem = basename(values.image, extname(values.image));
    await writePng(join(dir, `${stem}-lowres.png`), r.starts, 0);
    await writeOutputs(dir, clf, r, [`${stem}-super-resolved.png`], [values.image]);
    writeFileAtomic(join(dir, 'contact-sheet.png'), await gridPng([r.starts, r.images, image]));
    console.log(`wrote ${stem}-super-resolved.png to ${dir}`);
  } finally {
    await clf.dispose();
  }
  return 0;
}

const IMAGE_FILE = /\.(png|jpe?g|webp|gif|tiff?|avif)$/i;

/** Batch translation: resumable (outputs in the manifest are skipped), atomic writes, bad files skipped. */
async function cmdTranslate(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...TASK_OPTIONS, image: { type: 'string' }, to: { type: 'string' } } });
  if (!values.image) throw new RobustSynthError('ERR_BAD_INPUT', '--image is required (a file or a directory)');
  if (!values.to) throw new RobustSynthError('ERR_BAD_INPUT', '--to is required (a class name or index)');
  const dir = resolve(values.out ?? 'out/translate');
  const clf = await loadModel(values);
  let failed = 0;
  try {
    const target = clf.classIndex(values.to, '--to');
    const src = values.image;
    if (!existsSync(src)) throw new RobustSynthError('ERR_BAD_IMAGE', `not found: ${src}`);
    const single = !statSync(src).isDirectory();
    const files = single ? [src] : readdirSync(src).filter((f) => IMAGE_FILE.test(f)).sort().map((f) => join(src, f));
    const manifest = new Manifest(dir);
    const outName = (f: string) => `${basename(f, extname(f))}-to-${slug(clf.classes[target]!)}.png`;
    const todo = files.filter((f) => !(manifest.has(outName(f)) && existsSync(join(dir, outName(f)))));
    if (todo.length < files.length) console.error(`resuming: ${files.length - todo.length} of ${files.length} already done`);
    const [c, h, w] = clf.inputShape;
    const batch = num(values, 'batch') ?? (h * w <= 64 * 64 ? 64 : 8);
    const progress = progressReporter('translate');
    let done = files.length - todo.length;
    for (let start = 0; start < todo.length; start += batch) {
      const chunk = todo.slice(start, start + batch);
      const ok: string[] = [];
      const imgs: ImageBatch[] = [];
      for (const f of chunk) {
        try {
          imgs.push(await readImage(f, { channels: c, height: h, width: w }));
          ok.push(f);
        } catch (e) {
          if (single) throw e; // one file asked for: its error, not a batch summary
          failed++;
          console.error(`\nskipped ${f}: ${(e as Error).message}`);
        }
      }
      if (!ok.length) continue;
      const base = done;
      const r = await translate({ ...taskOptions(values, clf, 'translate').options, onProgress: (p) => progress.update({ ...p, done: base + p.done, images: files.length }), image: concat(imgs), to: target });
      await writeOutputs(dir, clf, r, ok.map(outName), ok, manifest);
      done += ok.length;
    }
    progress.done();
    await contactSheet(dir, clf, manifest);
    console.log(`translated ${todo.length - failed} image(s) to ${clf.classes[target]} in ${dir}${failed ? `; ${failed} skipped` : ''}`);
  } finally {
    await clf.dispose();
  }
  return failed ? 1 : 0;
}

async function cmdFitSeeds(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { data: { type: 'string' }, out: { type: 'string' }, factor: { type: 'string' }, model: { type: 'string' }, limit: { type: 'string' }, 'model-dir': { type: 'string', multiple: true } } });
  if (!values.data || !values.out) throw new RobustSynthError('ERR_BAD_INPUT', '--data and --out are required');
  let ds: LabeledImages;
  let factor: number;
  if (values.data === 'fashion-mnist') {
    ds = readFashionMnist('train');
    factor = num(values, 'factor') ?? 4; // measured: see models/README.md
  } else {
    const card = Classifier.card(values.model ?? 'fashion-robust', values['model-dir'] ?? []);
    const [c, h, w] = card?.inputShape ?? [3, 224, 224];
    ds = await readImageFolder(values.data, { channels: c, height: h, width: w, classes: card?.classes ?? [], limitPerClass: num(values, 'limit'), onSkip: (p, why) => console.error(`skipped ${p}: ${why}`) });
    factor = num(values, 'factor') ?? (h >= 112 ? 4 : 2);
  }
  const model = fitSeeds(ds, { factor, source: values.data });
  saveSeeds(values.out, model);
  console.log(`fitted ${model.classes.length} classes on ${ds.images.shape[0]} images (factor ${factor}) -> ${values.out}`);
  return 0;
}

function cmdModels(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string', multiple: true }, json: { type: 'boolean', default: false } } });
  const models = listModels(values.dir ?? []);
  if (values.json) {
    console.log(JSON.stringify(models.map(({ classes, ...m }) => ({ ...m, classes: classes.length })), null, 2));
    return 0;
  }
  for (const m of models) {
    const acc = m.accuracy ? Object.entries(m.accuracy).map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`).join(', ') : '';
    console.log(`${m.name.padEnd(20)} ${m.inputShape.join('x').padEnd(10)} ${String(m.classes.length).padStart(4)} classes  ${m.robust ? `robust (L2 eps ${m.eps})` : m.role ?? 'standard'}${acc ? `  ${acc}` : ''}\n${''.padEnd(21)}${m.path}`);
  }
  return 0;
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'generate':
      return cmdGenerate(rest);
    case 'inpaint':
      return cmdInpaint(rest);
    case 'super-resolve':
      return cmdSuperResolve(rest);
    case 'translate':
      return cmdTranslate(rest);
    case 'fit-seeds':
      return cmdFitSeeds(rest);
    case 'models':
      return cmdModels(rest);
    case 'setup':
      return (await import('./setup.js')).runSetupCommand(rest);
    case 'build':
      return (await import('./setup.js')).runBuildCommand(rest);
    case 'eval':
      return (await import('./eval/index.js')).runEval(rest);
    case 'demo':
      return (await import('./demo.js')).runDemo(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return cmd === undefined ? 1 : 0;
    default:
      console.error(`robust-synth: unknown command '${cmd}'\n\n${USAGE}`);
      return 2;
  }
}

const invokedDirectly = process.argv[1] && realpathSync(process.argv[1]).replace(/\.ts$/, '.js').endsWith(join('lib', 'cli.js'));
if (invokedDirectly) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      const err = e as { code?: string; message?: string };
      const message = (err.message ?? String(e)).replace(/\s*\n\s*/g, ' ');
      console.error(`\nrobust-synth: ${message}${err.code ? ` [${err.code}]` : ''}`);
      // Bad input, ours or node's argument parser's (ERR_PARSE_ARGS_*), exits 2; anything else 1.
      process.exitCode = err.code === 'ERR_BAD_INPUT' || err.code === 'ERR_BAD_IMAGE' || err.code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
    },
  );
}
