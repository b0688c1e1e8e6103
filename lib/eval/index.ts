/**
 * `robust-synth eval`: measures the study's claims on the embedded Fashion-MNIST models, with an
 * independent judge classifier (fashion-judge, another architecture, never used to synthesize).
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Classifier } from '../classifier.js';
import { progressReporter } from '../cli/progress.js';
import { readFashionMnist, type LabeledImages } from '../datasets.js';
import { gridPng, toRaw, writeFileAtomic } from '../images.js';
import { blockAverage, SEED_KINDS, type SeedKind } from '../seeds.js';
import type { TaskProgress, TaskResult } from '../tasks/common.js';
import { generate } from '../tasks/generate.js';
import { fillHole, holeMask, defaultHole, inpaint } from '../tasks/inpaint.js';
import { downUp, superResolve } from '../tasks/superResolve.js';
import { translate } from '../tasks/translate.js';
import { invert } from '../tasks/invert.js';
import { representation, spreadUnits, visualizeFeature } from '../tasks/visualizeFeature.js';
import { sketchToImage } from '../tasks/sketchToImage.js';
import { sketchFromImage } from '../sketch.js';
import { concat, slice, type ImageBatch } from '../tensor.js';
import { agreement, columnMax, diffusionFill, diversity, frechetDistance, median, psnr, roughness, softmaxAt, ssim } from './metrics.js';

export interface EvalConfig {
  /** Generated images per class, per seed kind, per classifier. */
  perClass: number;
  /** Held-out test images for inpainting and super-resolution. */
  restoreImages: number;
  /** Source images per class for translation (each translated to every other class). */
  translatePerClass: number;
  translateEps: number[];
  /** Real test images per class for the Fréchet distance. */
  realPerClass: number;
  srFactor: number;
  seed: number;
  /** Feature visualization: units per model (spread over the representation), noise starts per unit. */
  featureUnits: number;
  featureStarts: number;
  /** Inversion: held-out target images per class (from noise, and from an image of another class). */
  invertPerClass: number;
  /** Sketch-to-image: held-out images per class, sketched by edge detection. */
  sketchPerClass: number;
}

export const QUICK: EvalConfig = {
  perClass: 8, restoreImages: 50, translatePerClass: 2, translateEps: [10], realPerClass: 100, srFactor: 4, seed: 1,
  featureUnits: 8, featureStarts: 2, invertPerClass: 2, sketchPerClass: 3,
};
export const FULL: EvalConfig = {
  perClass: 30, restoreImages: 300, translatePerClass: 5, translateEps: [5, 10], realPerClass: 500, srFactor: 4, seed: 1,
  featureUnits: 16, featureStarts: 4, invertPerClass: 5, sketchPerClass: 10,
};

const round = (v: number, d = 4) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : v);
const mean = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return a.length ? s / a.length : NaN;
};

/** Judge's view of a batch: predictions, probability of `targets`, features. */
async function judgeView(judge: Classifier, x: ImageBatch, targets: ArrayLike<number>) {
  const logits = await judge.logits(x);
  const k = logits.shape[1];
  const preds = new Int32Array(x.shape[0]);
  for (let i = 0; i < preds.length; i++) {
    let b = 0;
    for (let j = 1; j < k; j++) if (logits.data[i * k + j]! > logits.data[i * k + b]!) b = j;
    preds[i] = b;
  }
  return { preds, confidence: softmaxAt(logits.data, k, targets), features: (await judge.features(x)).data };
}

function byClass(ds: LabeledImages, label: number, limit: number): ImageBatch {
  const idx: number[] = [];
  for (let i = 0; i < ds.labels.length && idx.length < limit; i++) if (ds.labels[i] === label) idx.push(i);
  return concat(idx.map((i) => slice(ds.images, i, i + 1)));
}

export async function bicubic(image: ImageBatch, f: number): Promise<ImageBatch> {
  const [n, c, h, w] = image.shape;
  const lh = h / f;
  const lw = w / f;
  const out = new Float32Array(image.data.length);
  for (let i = 0; i < n; i++) {
    const low = new Float32Array(c * lh * lw);
    blockAverage(image.data.subarray(i * c * h * w, (i + 1) * c * h * w), [c, h, w], f, low);
    const raw = toRaw({ data: low, shape: [1, c, lh, lw] }, 0);
    // sharp hands back 3 channels for a 1-channel raw input: read with its stride, not ours.
    const { data: up, info } = await sharp(raw.data, { raw: { width: lw, height: lh, channels: raw.channels } })
      .resize(w, h, { kernel: 'cubic' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) out[i * c * h * w + ch * h * w + p] = up[p * info.channels + ch]! / 255;
  }
  return { data: out, shape: image.shape };
}

export async function runEval(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean', default: false }, out: { type: 'string', default: 'robust-synth-eval' }, device: { type: 'string', default: 'auto' }, bf16: { type: 'boolean', default: false }, robust: { type: 'string', default: 'fashion-robust' } } });
  // --bf16: every synthesis runs with bf16 autocast (the judge does not), to see whether the
  // findings hold in the faster compute mode.
  const bf16 = values.bf16!;
  const cfg = values.quick ? QUICK : FULL;
  const out = resolve(values.out);
  const t0 = performance.now();
  const device = values.device as 'auto';
  const judge = await Classifier.load('fashion-judge', { device });
  // --robust NAME|PATH: evaluate another robust candidate (e.g. one of a training sweep) in place of the embedded one.
  const models = [await Classifier.load(values.robust!, { device }), await Classifier.load('fashion-standard', { device })];
  const test = readFashionMnist('test');
  const classes = test.classes;
  const progress = progressReporter('eval');
  let doneSteps = 0;
  const plannedSteps = models.length * (
    SEED_KINDS.length * 10 * cfg.perClass + 2 * cfg.restoreImages + cfg.translateEps.length * 90 * cfg.translatePerClass +
    cfg.featureUnits * cfg.featureStarts + 2 * 10 * cfg.invertPerClass + 2 * 10 * cfg.sketchPerClass
  );
  const tick = (r: TaskResult) => {
    doneSteps += r.images.shape[0];
  };
  // Every task reports its own progress; shift it by the images of the tasks before it.
  const onProgress = (p: TaskProgress) => progress.update({ ...p, done: doneSteps + p.done, images: plannedSteps });
  const report: Record<string, any> = {
    generatedAt: new Date().toISOString(),
    mode: values.quick ? 'quick' : 'full',
    bf16,
    config: cfg,
    models: Object.fromEntries([...models, judge].map((m) => [m.name, { path: m.path, robust: m.card?.robust ?? false, eps: m.card?.eps, accuracy: m.card?.accuracy }])),
    judge: judge.name,
    generate: [] as any[],
    inpaint: [] as any[],
    superResolve: [] as any[],
    translate: [] as any[],
    visualizeFeature: [] as any[],
    invert: [] as any[],
    sketchToImage: [] as any[],
  };
  const grids: Record<string, string> = {};

  // Real images of each class in the judge's feature space (the Fréchet reference).
  const realFeats = await Promise.all(classes.map(async (_, k) => (await judge.features(byClass(test, k, cfg.realPerClass))).data));

  // --- Generation
  for (const clf of models) {
    for (const kind of SEED_KINDS) {
      const r = await generate({ classifier: clf, classes: [...classes.keys()], count: cfg.perClass, seed: kind as SeedKind, randomSeed: cfg.seed, bf16, onProgress });
      tick(r);
      const after = await judgeView(judge, r.images, r.targets);
      const before = await judgeView(judge, r.starts, r.targets);
      const perClass = classes.map((name, k) => {
        const s = k * cfg.perClass;
        const e = s + cfg.perClass;
        const t = r.targets.subarray(s, e);
        return {
          class: name,
          judgeAgreement: round(agreement(after.preds.subarray(s, e), t)),
          selfAgreement: round(agreement(r.predictions.subarray(s, e), t)),
          seedJudgeAgreement: round(agreement(before.preds.subarray(s, e), t)),
          judgeConfidence: round(mean(after.confidence.subarray(s, e))),
          frechet: round(frechetDistance(after.features.subarray(s * 128, e * 128), cfg.perClass, realFeats[k]!, realFeats[k]!.length / 128, 128), 2),
          diversity: round(diversity(slice(r.images, s, e)), 3),
        };
      });
      const judgeAgreement = agreement(after.preds, r.targets);
      const seedJudge = agreement(before.preds, r.targets);
      report.generate.push({
        model: clf.name,
        seed: kind,
        judgeAgreement: round(judgeAgreement),
        selfAgreement: round(agreement(r.predictions, r.targets)),
        seedJudgeAgreement: round(seedJudge),
        gain: round(judgeAgreement - seedJudge),
        judgeConfidence: round(mean(after.confidence)),
        frechet: round(mean(perClass.map((p) => p.frechet)), 2),
        diversity: round(mean(perClass.map((p) => p.diversity)), 3),
        settings: r.settings,
        perClass,
      });
      const cells: ImageBatch[] = [];
      const show = Math.min(cfg.perClass, 8);
      for (let k = 0; k < classes.length; k++) cells.push(slice(r.images, k * cfg.perClass, k * cfg.perClass + show));
      const file = `generate-${clf.name}-${kind}.png`;
      writeFileAtomic(join(out, file), await gridPng(cells, { columns: show, scale: 2 }));
      grids[`generate/${clf.name}/${kind}`] = file;
    }
  }

  // --- Inpainting and super-resolution on held-out images (the first N of the test set, unseen in training).
  const held = { images: slice(test.images, 0, cfg.restoreImages), labels: test.labels.subarray(0, cfg.restoreImages) };
  const [, , H, W] = held.images.shape;
  const hole = defaultHole(H, W);
  const mask = holeMask(hole, H, W).data;
  const meanFill = fillHole(held.images, { data: mask, shape: [1, 1, H, W] });
  const diffusion = diffusionFill(held.images, mask);
  const restoreRow = async (task: string, method: string, x: ImageBatch, region?: Float32Array) => {
    const j = await judgeView(judge, x, held.labels);
    const n = x.shape[0];
    return {
      task,
      method,
      psnr: round(mean(Array.from({ length: n }, (_, i) => psnr(x, held.images, i, region))), 2),
      ssim: round(mean(Array.from({ length: n }, (_, i) => ssim(x, held.images, i, region)))),
      judgeAccuracy: round(agreement(j.preds, held.labels)),
    };
  };
  report.inpaint.push(await restoreRow('inpaint', 'mean fill (baseline)', meanFill, mask));
  report.inpaint.push(await restoreRow('inpaint', 'diffusion fill (baseline)', diffusion, mask));
  const nearest = downUp(held.images, cfg.srFactor);
  const cubic = await bicubic(held.images, cfg.srFactor);
  report.superResolve.push(await restoreRow('superResolve', 'nearest (baseline)', nearest));
  report.superResolve.push(await restoreRow('superResolve', 'bicubic (baseline)', cubic));
  const first10 = (b: ImageBatch) => slice(b, 0, Math.min(10, b.shape[0]));
  for (const clf of models) {
    const ri = await inpaint({ classifier: clf, image: held.images, hole, label: Array.from(held.labels), bf16, onProgress });
    tick(ri);
    report.inpaint.push({ ...(await restoreRow('inpaint', clf.name, ri.images, mask)), settings: ri.settings });
    writeFileAtomic(join(out, `inpaint-${clf.name}.png`), await gridPng([first10(ri.starts), first10(ri.images), first10(held.images)], { columns: 10, scale: 2 }));
    grids[`inpaint/${clf.name}`] = `inpaint-${clf.name}.png`;
    const rs = await superResolve({ classifier: clf, image: held.images, factor: cfg.srFactor, label: Array.from(held.labels), bf16, onProgress });
    tick(rs);
    report.superResolve.push({ ...(await restoreRow('superResolve', clf.name, rs.images)), settings: rs.settings });
    writeFileAtomic(join(out, `super-resolve-${clf.name}.png`), await gridPng([first10(nearest), first10(cubic), first10(rs.images), first10(held.images)], { columns: 10, scale: 2 }));
    grids[`superResolve/${clf.name}`] = `super-resolve-${clf.name}.png`;
  }

  // --- Translation: real held-out images of every class to every other class.
  const srcIdx: number[] = [];
  for (let k = 0; k < classes.length; k++) {
    let got = 0;
    for (let i = cfg.restoreImages; i < test.labels.length && got < cfg.translatePerClass; i++) if (test.labels[i] === k) srcIdx.push(i), got++;
  }
  const pairs: Array<[number, number]> = [];
  for (const i of srcIdx) for (let b = 0; b < classes.length; b++) if (b !== test.labels[i]) pairs.push([i, b]);
  const src = concat(pairs.map(([i]) => slice(test.images, i, i + 1)));
  const srcLabels = Int32Array.from(pairs, ([i]) => test.labels[i]!);
  const to = Int32Array.from(pairs, ([, b]) => b);
  for (const clf of models) {
    for (const eps of cfg.translateEps) {
      const r = await translate({ classifier: clf, image: src, to: Array.from(to), eps, bf16, onProgress });
      tick(r);
      const j = await judgeView(judge, r.images, to);
      const dist = Array.from({ length: pairs.length }, (_, i) => {
        let d = 0;
        const s = src.data.length / pairs.length;
        for (let k = i * s; k < (i + 1) * s; k++) d += (r.images.data[k]! - src.data[k]!) ** 2;
        return Math.sqrt(d);
      });
      report.translate.push({
        model: clf.name,
        eps,
        pairs: pairs.length,
        judgeTargetAgreement: round(agreement(j.preds, to)),
        judgeSourceAgreement: round(agreement(j.preds, srcLabels)),
        selfTargetAgreement: round(agreement(r.predictions, to)),
        judgeConfidence: round(mean(j.confidence)),
        meanL2: round(mean(dist), 3),
        settings: r.settings,
      });
      if (eps === cfg.translateEps[cfg.translateEps.length - 1]) {
        // One source per class, translated to each other class: rows = sources.
        const rows: ImageBatch[] = [];
        for (let k = 0; k < classes.length; k++) {
          const start = pairs.findIndex(([i]) => test.labels[i] === k);
          rows.push(slice(src, start, start + 1), slice(r.images, start, start + 9));
        }
        writeFileAtomic(join(out, `translate-${clf.name}.png`), await gridPng(rows, { columns: 10, scale: 2 }));
        grids[`translate/${clf.name}`] = `translate-${clf.name}.png`;
      }
    }
  }
  // --- Feature visualization: does the chosen unit rise, and to what, against its largest value
  // on 1,000 real test images; how smooth (robust) or noisy (standard) the result is.
  const real1000 = slice(test.images, 0, Math.min(1000, test.images.shape[0]));
  for (const clf of models) {
    const max = columnMax(await representation(clf, real1000));
    const d = max.length;
    const units = spreadUnits(clf, cfg.featureUnits, d);
    const r = await visualizeFeature({ classifier: clf, feature: units, count: cfg.featureStarts, randomSeed: cfg.seed, bf16, onProgress });
    tick(r);
    const ratio = (v: Float32Array) => Array.from(v, (a, i) => a / Math.max(1e-6, max[r.features[i]!]!));
    report.visualizeFeature.push({
      model: clf.name,
      units: units.length,
      runs: r.features.length,
      rose: round(Array.from(r.after).filter((a, i) => a > r.before[i]!).length / r.after.length),
      startRatio: round(median(ratio(r.before)), 3),
      finalRatio: round(median(ratio(r.after)), 3),
      roughness: round(roughness(r.images), 3),
      startRoughness: round(roughness(r.starts), 3),
      settings: r.settings,
    });
    const show = Math.min(8, units.length);
    const cells: ImageBatch[] = [];
    for (let u = 0; u < show; u++) cells.push(slice(r.images, u * cfg.featureStarts, u * cfg.featureStarts + 1));
    writeFileAtomic(join(out, `visualize-feature-${clf.name}.png`), await gridPng(cells, { columns: show, scale: 2 }));
    grids[`visualizeFeature/${clf.name}`] = `visualize-feature-${clf.name}.png`;
  }

  // --- Inversion: held-out targets (after the translation sources), from noise and from an image
  // of the next class. The judge reads the result: the target's class, or the start's?
  const pick = (per: number, from: number) => {
    const idx: number[] = [];
    for (let k = 0; k < classes.length; k++) for (let i = from, got = 0; i < test.labels.length && got < per; i++) if (test.labels[i] === k) idx.push(i), got++;
    return idx;
  };
  const invIdx = pick(cfg.invertPerClass, cfg.restoreImages + 1000);
  const invTargets = concat(invIdx.map((i) => slice(test.images, i, i + 1)));
  const invLabels = Int32Array.from(invIdx, (i) => test.labels[i]!);
  // Each target's "other" start: the image of the next class at the same position.
  const otherIdx = invIdx.map((_, j) => invIdx[(j + cfg.invertPerClass) % invIdx.length]!);
  const invOthers = concat(otherIdx.map((i) => slice(test.images, i, i + 1)));
  const otherLabels = Int32Array.from(otherIdx, (i) => test.labels[i]!);
  for (const clf of models) {
    for (const from of ['noise', 'another image'] as const) {
      const r = await invert({ classifier: clf, target: invTargets, ...(from === 'noise' ? { randomSeed: cfg.seed } : { start: invOthers }), bf16, onProgress });
      tick(r);
      const j = await judgeView(judge, r.images, invLabels);
      report.invert.push({
        model: clf.name,
        from,
        targets: invIdx.length,
        distanceBefore: round(median(r.distanceBefore), 3),
        distanceAfter: round(median(r.distanceAfter), 3),
        judgeTargetAgreement: round(agreement(j.preds, invLabels)),
        judgeStartAgreement: from === 'noise' ? null : round(agreement(j.preds, otherLabels)),
        selfTargetAgreement: round(agreement(r.predictions, invLabels)),
        psnrToTarget: round(mean(Array.from({ length: invIdx.length }, (_, i) => psnr(r.images, invTargets, i))), 2),
        settings: r.settings,
      });
      if (from === 'another image') {
        writeFileAtomic(join(out, `invert-${clf.name}.png`), await gridPng([first10(invOthers), first10(r.images), first10(invTargets)], { columns: 10, scale: 2 }));
        grids[`invert/${clf.name}`] = `invert-${clf.name}.png`;
      }
    }
  }

  // --- Sketch-to-image: held-out images sketched by edge detection (Sobel magnitude,
  // thresholded), both polarities; does the judge see the sketched class after PGD?
  const skIdx = pick(cfg.sketchPerClass, cfg.restoreImages + 2000);
  const skImages = concat(skIdx.map((i) => slice(test.images, i, i + 1)));
  const skLabels = Int32Array.from(skIdx, (i) => test.labels[i]!);
  for (const polarity of ['dark on white', 'white on black'] as const) {
    const sketch = sketchFromImage(skImages, { invert: polarity === 'dark on white' });
    report.sketchToImage.push({ model: 'sketch alone', polarity, sketches: skIdx.length, judgeAgreement: round(agreement((await judgeView(judge, sketch, skLabels)).preds, skLabels)), selfAgreement: null });
    for (const clf of models) {
      const r = await sketchToImage({ classifier: clf, sketch, to: Array.from(skLabels), bf16, onProgress });
      tick(r);
      const j = await judgeView(judge, r.images, skLabels);
      report.sketchToImage.push({ model: clf.name, polarity, sketches: skIdx.length, judgeAgreement: round(agreement(j.preds, skLabels)), selfAgreement: round(agreement(r.predictions, skLabels)), settings: r.settings });
      const file = `sketch-to-image-${clf.name}-${polarity === 'dark on white' ? 'dark' : 'white'}.png`;
      const every = (b: ImageBatch) => concat(Array.from({ length: classes.length }, (_, k) => slice(b, k * cfg.sketchPerClass, k * cfg.sketchPerClass + 1)));
      writeFileAtomic(join(out, file), await gridPng([every(skImages), every(sketch), every(r.images)], { columns: classes.length, scale: 2 }));
      grids[`sketchToImage/${clf.name}/${polarity}`] = file;
    }
  }

  progress.done();
  for (const m of [...models, judge]) await m.dispose();
  report.seconds = round((performance.now() - t0) / 1000, 1);
  report.grids = grids;
  writeFileAtomic(join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  const md = reportMarkdown(report);
  writeFileAtomic(join(out, 'report.md'), md);
  writeFileAtomic(join(out, 'report.html'), reportHtml(report));
  console.log(md);
  console.log(`report written to ${out} (${report.seconds} s)`);
  return 0;
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

function table(head: string[], rows: Array<Array<string | number>>): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function reportMarkdown(r: Record<string, any>): string {
  const gen = table(
    ['model', 'seed', 'judge agrees', 'self agrees', 'seed alone (judge)', 'gain', 'judge confidence', 'Fréchet (judge feats)', 'diversity'],
    r.generate.map((g: any) => [g.model, g.seed, pct(g.judgeAgreement), pct(g.selfAgreement), pct(g.seedJudgeAgreement), pct(g.gain), g.judgeConfidence.toFixed(3), g.frechet.toFixed(1), g.diversity.toFixed(2)]),
  );
  const restore = (rows: any[]) => table(['method', 'PSNR (dB)', 'SSIM', 'judge accuracy'], rows.map((x) => [x.method, x.psnr.toFixed(2), x.ssim.toFixed(3), pct(x.judgeAccuracy)]));
  const tr = table(
    ['model', 'eps', 'pairs', 'judge: target', 'judge: source', 'self: target', 'judge confidence', 'mean L2 from source'],
    r.translate.map((t: any) => [t.model, t.eps, t.pairs, pct(t.judgeTargetAgreement), pct(t.judgeSourceAgreement), pct(t.selfTargetAgreement), t.judgeConfidence.toFixed(3), t.meanL2.toFixed(2)]),
  );
  return `# robust-synth evaluation (${r.mode}${r.bf16 ? ', bf16 autocast' : ''})

Judge: \`${r.judge}\` (a different architecture, never used to synthesize). ${r.config.perClass} generated images per class, seed and model; held-out Fashion-MNIST test images. ${r.seconds} s.

## Generation
${gen}

## Inpainting (${r.inpaint[0] ? 'metrics inside the hole' : ''})
${restore(r.inpaint)}

## Super-resolution (${r.config.srFactor}x)
${restore(r.superResolve)}

## Translation (every class to every other class)
${tr}
${featureSections(r)}`;
}

/** The feature tasks' sections of the report (absent from reports made before they existed). */
function featureSections(r: Record<string, any>): string {
  const parts: string[] = [];
  if (r.visualizeFeature?.length) {
    parts.push(`## Feature visualization (a unit maximized from noise)
${table(
  ['model', 'units', 'runs', 'unit rose', 'unit / its max on real images: start', 'final', 'roughness: start', 'final'],
  r.visualizeFeature.map((v: any) => [v.model, v.units, v.runs, pct(v.rose), v.startRatio.toFixed(2), v.finalRatio.toFixed(2), v.startRoughness.toFixed(3), v.roughness.toFixed(3)]),
)}
`);
  }
  if (r.invert?.length) {
    parts.push(`## Inversion (toward held-out targets' representations)
${table(
  ['model', 'from', 'targets', 'relative distance: start', 'final', 'judge: target class', 'judge: start class', 'self: target class', 'PSNR to target (dB)'],
  r.invert.map((v: any) => [v.model, v.from, v.targets, v.distanceBefore.toFixed(3), v.distanceAfter.toFixed(3), pct(v.judgeTargetAgreement), v.judgeStartAgreement === null ? '-' : pct(v.judgeStartAgreement), pct(v.selfTargetAgreement), v.psnrToTarget.toFixed(2)]),
)}
`);
  }
  if (r.sketchToImage?.length) {
    parts.push(`## Sketch-to-image (Sobel sketches of held-out images)
${table(
  ['model', 'sketch', 'sketches', 'judge agrees', 'self agrees'],
  r.sketchToImage.map((v: any) => [v.model, v.polarity, v.sketches, pct(v.judgeAgreement), v.selfAgreement === null ? '-' : pct(v.selfAgreement)]),
)}
`);
  }
  return parts.join('\n');
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function reportHtml(r: Record<string, any>): string {
  const md = reportMarkdown(r);
  // Tables from the Markdown, images beside them.
  const htmlTable = (block: string) => {
    const lines = block.trim().split('\n').filter((l) => l.startsWith('|'));
    const cells = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
    return `<table><tr>${cells(lines[0]!).map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${lines.slice(2).map((l) => `<tr>${cells(l).map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
  };
  const sections = md.split('\n## ').slice(1).map((s) => {
    const [title, ...rest] = s.split('\n');
    const key = title!.startsWith('Generation') ? 'generate' : title!.startsWith('Inpainting') ? 'inpaint' : title!.startsWith('Super') ? 'superResolve'
      : title!.startsWith('Feature') ? 'visualizeFeature' : title!.startsWith('Inversion') ? 'invert' : title!.startsWith('Sketch') ? 'sketchToImage' : 'translate';
    const imgs = Object.entries(r.grids as Record<string, string>).filter(([k]) => k.startsWith(key + '/'));
    return `<section><h2>${esc(title!)}</h2>${htmlTable(rest.join('\n'))}<div class="grids">${imgs.map(([k, f]) => `<figure><img src="${esc(f)}" alt="${esc(k)}"><figcaption>${esc(k.split('/').slice(1).join(', '))}</figcaption></figure>`).join('')}</div></section>`;
  });
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>robust-synth evaluation</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
.grids{display:flex;flex-wrap:wrap;gap:1.5em}img{image-rendering:pixelated}figure{margin:0}</style></head><body>
<h1>robust-synth evaluation (${esc(r.mode)})</h1><p>Judge: <code>${esc(r.judge)}</code>; generated ${esc(r.generatedAt)} in ${r.seconds} s. Inpainting rows: input, output, original. Super-resolution rows: nearest, bicubic, output, original. Translation rows: a source, then it translated to each other class.</p>
${sections.join('\n')}</body></html>
`;
}
