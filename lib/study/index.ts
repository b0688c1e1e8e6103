/**
 * The study at 224x224 (docs/algorithm.md): from a robust and a standard ImageNet ResNet50 and an
 * Imagenette folder, every figure of Santurkar et al. (2019) on Imagenette's 10 classes, with the
 * metrics of `robust-synth eval`, as report.html / report.json / report.md. Resumable by parts.
 *
 * @example
 * const r = await runStudy({ robust: 'resnet50-robust-l2-3.pt', standard: 'resnet50-standard.pt', data: 'imagenette2', out: 'study', quick: true });
 * console.log(r.files.html);
 */
import { join, relative, resolve } from 'node:path';
import type { Device } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import { bicubic } from '../eval/index.js';
import { agreement, diffusionFill, diversity, psnr, ssim } from '../eval/metrics.js';
import { writeFileAtomic, writePng } from '../images.js';
import type { SeedKind, SeedModel } from '../seeds.js';
import type { TaskProgress, TaskResult } from '../tasks/common.js';
import { generate } from '../tasks/generate.js';
import { defaultHole, fillHole, holeMask, inpaint } from '../tasks/inpaint.js';
import { downUp, superResolve } from '../tasks/superResolve.js';
import { translate } from '../tasks/translate.js';
import { concat, slice, type ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { studyConfig, type StudyConfig, type StudyTask } from './config.js';
import { discoverImagenette, filesDigest, readImages, readSeedsInfo, seedsKey, SIZE, studySeeds, type ImagenetteFolder, type SeedsInfo } from './data.js';
import { netteName, verdict, type Verdict } from './judge.js';
import { StudyModels, type ModelIdentity, type Role } from './models.js';
import { PartStore, type PartRecord } from './parts.js';
import { buildReport, reportHtml, reportMarkdown, type StudyReport } from './report.js';

export { studyConfig, studyReference, FULL, QUICK, reducedSettings, STUDY_TASKS } from './config.js';
export type { StudyConfig, StudyTask } from './config.js';
export { discoverImagenette } from './data.js';
export type { StudyReport } from './report.js';

export interface StudyOptions {
  /** The robust classifier: a path to an exported .pt (or a model name). */
  robust: string;
  /** The standard classifier. */
  standard: string;
  /** A third classifier that judges every image; without it, each model judges the other's images. */
  judge?: string;
  /** The Imagenette folder (DIR/train/<wnid>/, DIR/val/<wnid>/, or DIR/<wnid>/). */
  data: string;
  /** Where the report, the parts and the seed file go. */
  out: string;
  /** About 10 minutes on a 2-core CPU: fewer images and steps (stated on the page). */
  quick?: boolean;
  device?: Device;
  modelDirs?: string[];
  /** Testing: every task's iterations (step scaled to keep the reference's longest path). */
  iterations?: number;
  /** Testing: every per-class image count. */
  perClass?: number;
  /** Testing: only the first N Imagenette classes present. */
  classes?: number;
  /** Training images per class the seeds are fitted on. */
  seedImages?: number;
  /** Images per native call (default 8). */
  batch?: number;
  bf16?: boolean;
  onProgress?: (p: StudyProgress) => void;
  /** One line per event: a part skipped, started, finished; the seeds fitted or reused. */
  onLog?: (message: string) => void;
  signal?: AbortSignal;
}

export interface StudyProgress {
  /** The part now running. */
  part: string;
  /** Its position among the parts that run this time (1-based), and their count. */
  partIndex: number;
  partsToRun: number;
  /** PGD image-steps done and planned (over the parts that run this time). */
  stepsDone: number;
  stepsTotal: number;
  /** Since the first part began. */
  elapsedMs: number;
  /** Remaining time at the rate so far (undefined before the first step). */
  etaMs?: number;
  loss?: number;
}

export interface StudyResult {
  report: StudyReport;
  files: { html: string; json: string; md: string };
  ran: string[];
  skipped: string[];
}

const OPTION_KEYS = [
  'robust', 'standard', 'judge', 'data', 'out', 'quick', 'device', 'modelDirs', 'iterations', 'perClass', 'classes', 'seedImages', 'batch', 'bf16', 'onProgress', 'onLog', 'signal',
] as const;

interface PartSpec {
  name: string;
  task: StudyTask | 'baselines';
  /** PGD image-steps. */
  steps: number;
  needsSeeds: boolean;
  key: unknown;
  run(ctx: PartContext): Promise<Omit<PartRecord, 'format' | 'name' | 'key' | 'seconds' | 'steps'>>;
}

interface PartContext {
  /** The part's PNG directory, and its path relative to the output directory. */
  dir: string;
  rel: string;
  onProgress: (p: TaskProgress) => void;
}

interface ValSet {
  images: ImageBatch;
  labels: Int32Array;
  files: string[];
}

const round = (v: number, d = 4) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);
const mean = (a: ArrayLike<number>) => {
  let s = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]!)) (s += a[i]!), n++;
  return n ? s / n : NaN;
};
const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
const pad = (i: number) => String(i).padStart(3, '0');

export async function runStudy(options: StudyOptions): Promise<StudyResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('study options', options, OPTION_KEYS);
  const t0 = performance.now();
  const log = (m: string) => options.onLog?.(m);
  const cfg = studyConfig({ quick: options.quick, iterations: options.iterations, perClass: options.perClass, seedImages: options.seedImages });
  const out = resolve(is.nonEmptyString('out', options.out));
  const dataRoot = resolve(is.nonEmptyString('data', options.data));
  const limitClasses = options.classes === undefined ? undefined : is.integer('classes', options.classes, { min: 1, max: 10 });
  const batch = options.batch === undefined ? undefined : is.integer('batch', options.batch, { min: 1, max: 4096 });
  const bf16 = options.bf16 === undefined ? false : is.boolean('bf16', options.bf16);
  const data = discoverImagenette(dataRoot, limitClasses);
  const models = new StudyModels(
    { robust: is.nonEmptyString('robust', options.robust), standard: is.nonEmptyString('standard', options.standard), ...(options.judge !== undefined ? { judge: is.nonEmptyString('judge', options.judge) } : {}) },
    options.device ?? 'auto',
    options.modelDirs ?? [],
  );
  const ids: Partial<Record<Role, ModelIdentity>> = {
    robust: await models.identity('robust'),
    standard: await models.identity('standard'),
    ...(models.has('judge') ? { judge: await models.identity('judge') } : {}),
  };
  const judgeOf = (role: 'robust' | 'standard'): Role => (models.has('judge') ? 'judge' : role === 'robust' ? 'standard' : 'robust');
  const baselineJudges: Role[] = models.has('judge') ? ['judge'] : ['robust', 'standard'];
  const store = new PartStore(out);
  const classIdx = data.classes.map((c) => c.index);

  // Validation images: the first readable ones of each class, restoration first, then translation.
  const valKey = { perClass: cfg.restorePerClass + cfg.translatePerClass, classes: data.classes.map((c) => ({ wnid: c.wnid, digest: filesDigest(data.root, c.val) })) };
  let valPromise: Promise<{ restore: ValSet; translate: ValSet; notes: string[] }> | undefined;
  const val = () => (valPromise ??= loadVal(data, cfg, log));

  let seeds: SeedModel | undefined;
  let seedsInfo: SeedsInfo | undefined;
  const sKey = seedsKey(data, cfg.seedImagesPerClass, cfg.seedFactor);

  const common = (task: StudyTask) => {
    const s = cfg.settings[task];
    return { eps: s.eps, step: s.step, iterations: s.iterations, constraint: s.constraint, useBest: s.useBest, batch, bf16, signal: options.signal };
  };
  const keyBase = (task: StudyTask, role: 'robust' | 'standard') => ({
    format: 1,
    task,
    model: ids[role]!.sha256,
    judge: ids[judgeOf(role)]!.sha256,
    settings: cfg.settings[task],
    bf16,
  });

  // ---------------------------------------------------------------- the parts
  const parts: PartSpec[] = [];
  const n = data.classes.length;
  const generations: Array<[('robust' | 'standard'), SeedKind]> = [['robust', 'uniform'], ['robust', 'normal'], ['robust', 'mvn'], ['standard', 'mvn']];
  for (const [role, kind] of generations) {
    parts.push({
      name: `generate-${role}-${kind}`,
      task: 'generate',
      steps: n * cfg.generatePerClass * cfg.settings.generate.iterations,
      needsSeeds: kind !== 'uniform',
      key: { ...keyBase('generate', role), seed: kind, perClass: cfg.generatePerClass, randomSeed: cfg.randomSeed, classes: classIdx, seeds: kind === 'uniform' ? null : sKey },
      run: async (ctx) => {
        const clf = await models.get(role);
        const judge = await models.get(judgeOf(role));
        const r = await generate({ classifier: clf, classes: classIdx, count: cfg.generatePerClass, seed: kind, seeds, randomSeed: cfg.randomSeed, ...common('generate'), onProgress: ctx.onProgress });
        const self = await verdict(clf, r.images, r.targets, batch, options.signal);
        const after = await verdict(judge, r.images, r.targets, batch, options.signal);
        const before = await verdict(judge, r.starts, r.targets, batch, options.signal);
        const items: PartRecord['items'] = [];
        const files: string[] = [];
        for (let i = 0; i < r.targets.length; i++) {
          const name = netteName(r.targets[i]!);
          const base = `${pad(i)}-${slug(name)}`;
          await writePng(join(ctx.dir, `${base}-seed.png`), r.starts, i);
          await writePng(join(ctx.dir, `${base}.png`), r.images, i);
          files.push(`${ctx.rel}/${base}-seed.png`, `${ctx.rel}/${base}.png`);
          items.push({
            class: name,
            target: r.targets[i],
            seed: `${ctx.rel}/${base}-seed.png`,
            file: `${ctx.rel}/${base}.png`,
            self: netteName(self.preds[i]!),
            judge: netteName(after.preds[i]!),
            seedJudge: netteName(before.preds[i]!),
            judgeConfidence: round(after.confidence[i]!),
            loss: round(r.losses[i]!),
          });
        }
        const per = cfg.generatePerClass;
        const perClass = data.classes.map((c, k) => {
          const s = k * per;
          const e = s + per;
          const t = r.targets.subarray(s, e);
          return {
            class: c.name,
            judgeAgreement: round(agreement(after.preds.subarray(s, e), t)),
            selfAgreement: round(agreement(self.preds.subarray(s, e), t)),
            seedJudgeAgreement: round(agreement(before.preds.subarray(s, e), t)),
            diversity: per > 1 ? round(diversity(slice(r.images, s, e)), 3) : null,
          };
        });
        const judgeAgreement = agreement(after.preds, r.targets);
        const seedJudge = agreement(before.preds, r.targets);
        const divs = perClass.map((p) => p.diversity).filter((d): d is number => d !== null);
        return {
          rows: [
            {
              model: role,
              modelName: ids[role]!.name,
              seed: kind,
              judge: judgeLabel(judgeOf(role), ids),
              images: r.targets.length,
              judgeAgreement: round(judgeAgreement),
              selfAgreement: round(agreement(self.preds, r.targets)),
              seedJudgeAgreement: round(seedJudge),
              gain: round(judgeAgreement - seedJudge),
              judgeConfidence: round(mean(after.confidence)),
              diversity: divs.length ? round(mean(divs), 3) : null,
              settings: r.settings,
              perClass,
            },
          ],
          items,
          files,
        };
      },
    });
  }

  const hole = defaultHole(SIZE[1], SIZE[2]);
  const mask = holeMask(hole, SIZE[1], SIZE[2]);
  const restoreSteps = (task: StudyTask) => n * cfg.restorePerClass * cfg.settings[task].iterations;

  // Baselines of inpainting and super-resolution: no PGD, judged as the models' results are.
  const baselinesPart = (task: 'inpaint' | 'superResolve'): PartSpec => ({
    name: `${task === 'inpaint' ? 'inpaint' : 'super-resolve'}-baselines`,
    task: 'baselines',
    steps: 0,
    needsSeeds: false,
    key: { format: 1, task, baselines: true, judges: baselineJudges.map((r) => ids[r]!.sha256), val: valKey, ...(task === 'inpaint' ? { hole } : { factor: cfg.srFactor }) },
    run: async (ctx) => {
      const { restore } = await val();
      const methods: Array<[string, string, ImageBatch]> =
        task === 'inpaint'
          ? [
              ['mean fill', 'mean-fill', fillHole(restore.images, mask)],
              ['diffusion fill', 'diffusion-fill', diffusionFill(restore.images, mask.data)],
            ]
          : [
              ['nearest', 'nearest', downUp(restore.images, cfg.srFactor)],
              ['bicubic', 'bicubic', await bicubic(restore.images, cfg.srFactor)],
            ];
      const region = task === 'inpaint' ? mask.data : undefined;
      const rows: PartRecord['rows'] = [];
      const items: PartRecord['items'] = [];
      const files: string[] = [];
      const verdicts = new Map<string, Map<Role, Verdict>>();
      for (const [label, , x] of methods) {
        const m = new Map<Role, Verdict>();
        for (const role of baselineJudges) m.set(role, await verdict(await models.get(role), x, restore.labels, batch, options.signal));
        verdicts.set(label, m);
        const q = quality(x, restore.images, region);
        for (const role of baselineJudges) {
          rows.push({ method: `${label} (baseline)`, baseline: true, judge: judgeLabel(role, ids), psnr: q.psnr, ssim: q.ssim, judgeAccuracy: round(agreement(m.get(role)!.preds, restore.labels)) });
        }
      }
      for (let i = 0; i < restore.labels.length; i++) {
        const name = netteName(restore.labels[i]!);
        const base = `${pad(i)}-${slug(name)}`;
        await writePng(join(ctx.dir, `${base}-original.png`), restore.images, i);
        files.push(`${ctx.rel}/${base}-original.png`);
        const item: Record<string, unknown> = { class: name, source: relative(data.root, restore.files[i]!), original: `${ctx.rel}/${base}-original.png` };
        for (const [label, fileTag, x] of methods) {
          await writePng(join(ctx.dir, `${base}-${fileTag}.png`), x, i);
          files.push(`${ctx.rel}/${base}-${fileTag}.png`);
          item[fileTag] = `${ctx.rel}/${base}-${fileTag}.png`;
          item[`${fileTag}Judge`] = Object.fromEntries(baselineJudges.map((role) => [role, netteName(verdicts.get(label)!.get(role)!.preds[i]!)]));
        }
        items.push(item);
      }
      return { rows, items, files };
    },
  });

  const restorePart = (task: 'inpaint' | 'superResolve', role: 'robust' | 'standard'): PartSpec => ({
    name: `${task === 'inpaint' ? 'inpaint' : 'super-resolve'}-${role}`,
    task,
    steps: restoreSteps(task),
    needsSeeds: false,
    key: { ...keyBase(task, role), val: valKey, ...(task === 'inpaint' ? { hole } : { factor: cfg.srFactor }) },
    run: async (ctx) => {
      const { restore } = await val();
      const clf = await models.get(role);
      const judge = await models.get(judgeOf(role));
      const label = Array.from(restore.labels);
      let r: TaskResult;
      if (task === 'inpaint') r = await inpaint({ classifier: clf, image: restore.images, hole, label, ...common('inpaint'), onProgress: ctx.onProgress });
      else r = await superResolve({ classifier: clf, image: restore.images, factor: cfg.srFactor, label, ...common('superResolve'), onProgress: ctx.onProgress });
      const self = await verdict(clf, r.images, restore.labels, batch, options.signal);
      const j = await verdict(judge, r.images, restore.labels, batch, options.signal);
      const q = quality(r.images, restore.images, task === 'inpaint' ? mask.data : undefined);
      const items: PartRecord['items'] = [];
      const files: string[] = [];
      for (let i = 0; i < label.length; i++) {
        const name = netteName(label[i]!);
        const f = `${ctx.rel}/${pad(i)}-${slug(name)}.png`;
        await writePng(join(ctx.dir, `${pad(i)}-${slug(name)}.png`), r.images, i);
        files.push(f);
        items.push({ class: name, source: relative(data.root, restore.files[i]!), file: f, self: netteName(self.preds[i]!), judge: netteName(j.preds[i]!), loss: round(r.losses[i]!) });
      }
      return {
        rows: [
          {
            method: `${role} (${ids[role]!.name})`,
            model: role,
            judge: judgeLabel(judgeOf(role), ids),
            psnr: q.psnr,
            ssim: q.ssim,
            judgeAccuracy: round(agreement(j.preds, restore.labels)),
            selfAccuracy: round(agreement(self.preds, restore.labels)),
            judgeConfidence: round(mean(j.confidence)),
            settings: r.settings,
          },
        ],
        items,
        files,
      };
    },
  });

  // Translation pairs: each source to the next class, or to every other class.
  const pairsOf = (labels: Int32Array): Array<[number, number]> => {
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < labels.length; i++) {
      const a = classIdx.indexOf(labels[i]!);
      if (cfg.translateTo === 'next') {
        if (n > 1) pairs.push([i, classIdx[(a + 1) % n]!]);
      } else for (const b of classIdx) if (b !== labels[i]) pairs.push([i, b]);
    }
    return pairs;
  };
  const translatePairs = n < 2 ? 0 : n * cfg.translatePerClass * (cfg.translateTo === 'next' ? 1 : n - 1);
  const translatePart = (role: 'robust' | 'standard'): PartSpec => ({
    name: `translate-${role}`,
    task: 'translate',
    steps: translatePairs * cfg.settings.translate.iterations,
    needsSeeds: false,
    key: { ...keyBase('translate', role), val: valKey, to: cfg.translateTo, classes: classIdx },
    run: async (ctx) => {
      const { translate: src } = await val();
      const pairs = pairsOf(src.labels);
      if (!pairs.length) return { rows: [], items: [], files: [] };
      const clf = await models.get(role);
      const judge = await models.get(judgeOf(role));
      const x = concat(pairs.map(([i]) => slice(src.images, i, i + 1)));
      const to = Int32Array.from(pairs, ([, b]) => b);
      const from = Int32Array.from(pairs, ([i]) => src.labels[i]!);
      const r = await translate({ classifier: clf, image: x, to: Array.from(to), ...common('translate'), onProgress: ctx.onProgress });
      const self = await verdict(clf, r.images, to, batch, options.signal);
      const j = await verdict(judge, r.images, to, batch, options.signal);
      const size = SIZE[0] * SIZE[1] * SIZE[2];
      const dist = pairs.map((_, p) => {
        let d = 0;
        for (let k = p * size; k < (p + 1) * size; k++) d += (r.images.data[k]! - x.data[k]!) ** 2;
        return Math.sqrt(d);
      });
      const items: PartRecord['items'] = [];
      const files: string[] = [];
      const sources = new Map<number, string>();
      for (let p = 0; p < pairs.length; p++) {
        const [i, b] = pairs[p]!;
        const a = netteName(src.labels[i]!);
        if (!sources.has(i)) {
          const f = `${pad(i)}-${slug(a)}-source.png`;
          await writePng(join(ctx.dir, f), src.images, i);
          files.push(`${ctx.rel}/${f}`);
          sources.set(i, `${ctx.rel}/${f}`);
        }
        const f = `${pad(p)}-${slug(a)}-to-${slug(netteName(b))}.png`;
        await writePng(join(ctx.dir, f), r.images, p);
        files.push(`${ctx.rel}/${f}`);
        items.push({
          from: a,
          to: netteName(b),
          source: relative(data.root, src.files[i]!),
          sourceImage: sources.get(i),
          file: `${ctx.rel}/${f}`,
          self: netteName(self.preds[p]!),
          judge: netteName(j.preds[p]!),
          l2: round(dist[p]!, 3),
        });
      }
      return {
        rows: [
          {
            model: role,
            modelName: ids[role]!.name,
            judge: judgeLabel(judgeOf(role), ids),
            eps: r.settings.eps,
            pairs: pairs.length,
            judgeTargetAgreement: round(agreement(j.preds, to)),
            judgeSourceAgreement: round(agreement(j.preds, from)),
            selfTargetAgreement: round(agreement(self.preds, to)),
            judgeConfidence: round(mean(j.confidence)),
            meanL2: round(mean(dist), 3),
            settings: r.settings,
          },
        ],
        items,
        files,
      };
    },
  });

  parts.push(baselinesPart('inpaint'), restorePart('inpaint', 'robust'), restorePart('inpaint', 'standard'));
  parts.push(baselinesPart('superResolve'), restorePart('superResolve', 'robust'), restorePart('superResolve', 'standard'));
  parts.push(translatePart('robust'), translatePart('standard'));

  // ---------------------------------------------------------------- the plan
  const records = new Map<string, PartRecord>();
  const status: StudyReport['parts'] = [];
  const todo: PartSpec[] = [];
  for (const p of parts) {
    const done = store.finished(p.name, p.key);
    if (done) records.set(p.name, done);
    else todo.push(p);
  }
  const stepsTotal = todo.reduce((a, p) => a + p.steps, 0);
  log(
    `plan: ${parts.length} parts, ${todo.length} to run (${stepsTotal} PGD image-steps), ${parts.length - todo.length} finished earlier` +
      (cfg.reductions.length ? `; ${options.quick ? '--quick' : 'reduced'}: ${cfg.reductions.join('; ')}` : ''),
  );
  for (const p of parts) if (records.has(p.name)) log(`skipped ${p.name}: finished earlier with the same settings (${relative(out, store.file(p.name))})`);

  try {
    if (todo.some((p) => p.needsSeeds)) {
      const r = await studySeeds(data, { dir: join(out, 'seeds'), perClass: cfg.seedImagesPerClass, factor: cfg.seedFactor, classNames: imagenetClassNames(), onLog: log, signal: options.signal });
      seeds = r.seeds;
      seedsInfo = r.info;
    }
    let stepsDone = 0;
    const tWork = performance.now();
    for (const [k, p] of todo.entries()) {
      if (options.signal?.aborted) throw new RobustSynthError('ERR_ABORTED', 'the job was aborted');
      log(`running ${p.name} (${k + 1}/${todo.length}; ${p.steps} PGD image-steps): ${store.whyRun(p.name, p.key)}`);
      const tp = performance.now();
      const dir = store.begin(p.name);
      const base = stepsDone;
      const emit = (partSteps: number, loss?: number) => {
        const done = base + Math.min(partSteps, p.steps);
        const elapsedMs = performance.now() - tWork;
        options.onProgress?.({
          part: p.name,
          partIndex: k + 1,
          partsToRun: todo.length,
          stepsDone: done,
          stepsTotal,
          elapsedMs,
          etaMs: done > 0 ? (elapsedMs / done) * (stepsTotal - done) : undefined,
          loss,
        });
      };
      emit(0);
      const iters = p.task === 'baselines' ? 0 : cfg.settings[p.task].iterations;
      const res = await p.run({
        dir,
        rel: relative(out, dir).split('\\').join('/'),
        onProgress: (tp2) => emit(tp2.done * iters + tp2.step * tp2.inBatch, tp2.loss),
      });
      stepsDone += p.steps;
      emit(p.steps);
      const record: PartRecord = { format: 'robust-synth-study-part/1', name: p.name, key: p.key, seconds: Math.round((performance.now() - tp) / 100) / 10, steps: p.steps, ...res };
      store.save(record);
      records.set(p.name, record);
      log(`finished ${p.name} in ${record.seconds} s${p.steps ? ` (${((record.seconds * 1000) / p.steps).toFixed(0)} ms per image-step, judging included)` : ''}`);
    }
  } finally {
    await models.dispose();
  }
  for (const p of parts) {
    const r = records.get(p.name)!;
    status.push({ name: p.name, status: todo.includes(p) ? 'ran' : 'skipped', seconds: r.seconds, steps: r.steps });
  }

  // ---------------------------------------------------------------- the report
  seedsInfo ??= readSeedsInfo(join(out, 'seeds'));
  const report = buildReport({
    out,
    mode: options.quick ? 'quick' : 'full',
    cfg,
    data,
    ids,
    judging: models.has('judge') ? 'judge' : 'cross',
    seeds: seedsInfo ?? null,
    seedsFile: join(out, 'seeds', 'imagenette-224.seeds'),
    records,
    parts: status,
    valNotes: valPromise ? (await valPromise).notes : [],
    hole,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  });
  const files = { json: join(out, 'report.json'), md: join(out, 'report.md'), html: join(out, 'report.html') };
  writeFileAtomic(files.json, JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(files.md, reportMarkdown(report));
  writeFileAtomic(files.html, reportHtml(report));
  return { report, files, ran: todo.map((p) => p.name), skipped: parts.filter((p) => !todo.includes(p)).map((p) => p.name) };
}

function judgeLabel(role: Role, ids: Partial<Record<Role, ModelIdentity>>): string {
  return `${role} (${ids[role]!.name})`;
}

function quality(x: ImageBatch, ref: ImageBatch, region?: Float32Array): { psnr: number | null; ssim: number | null } {
  const n = x.shape[0];
  return {
    psnr: round(mean(Array.from({ length: n }, (_, i) => psnr(x, ref, i, region))), 2),
    ssim: round(mean(Array.from({ length: n }, (_, i) => ssim(x, ref, i, region)))),
  };
}

/** The 1000 ImageNet class names (the Imagenette ones by name, the rest as their index): what a seed file records. */
function imagenetClassNames(): string[] {
  return Array.from({ length: 1000 }, (_, i) => netteName(i));
}

async function loadVal(data: ImagenetteFolder, cfg: StudyConfig, log: (m: string) => void): Promise<{ restore: ValSet; translate: ValSet; notes: string[] }> {
  const R = cfg.restorePerClass;
  const T = cfg.translatePerClass;
  const restore: ValSet[] = [];
  const trans: ValSet[] = [];
  const notes: string[] = [];
  for (const c of data.classes) {
    const r = await readImages(c.val, R + T, (p, why) => {
      notes.push(`skipped ${relative(data.root, p)}: ${why}`);
      log(`skipped ${p}: ${why}`);
    });
    const got = r.files.length;
    if (!got) throw new RobustSynthError('ERR_BAD_INPUT', `no readable validation image for ${c.wnid} (${c.name})`);
    const take = (s: number, e: number): ValSet => ({ images: slice(r.images, s, e), labels: new Int32Array(e - s).fill(c.index), files: r.files.slice(s, e) });
    restore.push(take(0, Math.min(R, got)));
    if (got >= R + T) trans.push(take(R, R + T));
    else {
      trans.push(take(0, Math.min(T, got)));
      notes.push(`${c.name}: only ${got} readable validation image(s); translation reuses the first of them`);
    }
  }
  const join2 = (l: ValSet[]): ValSet => ({ images: concat(l.map((v) => v.images)), labels: Int32Array.from(l.flatMap((v) => Array.from(v.labels))), files: l.flatMap((v) => v.files) });
  return { restore: join2(restore), translate: join2(trans), notes };
}
