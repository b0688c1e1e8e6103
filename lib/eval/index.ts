/**
 * `robust-synth eval`: measures the study's claims on the embedded Fashion-MNIST models, with a
 * panel of judges of unrelated families that never synthesize (lib/eval/judges.ts): every judged
 * figure is given per judge and as the least favourable one.
 */
import { join, resolve } from 'node:path';
import { Classifier } from '../classifier.js';
import { progressReporter } from '../progress.js';
import { readFashionMnist, type LabeledImages } from '../datasets.js';
import { gridPng, writeFileAtomic } from '../images.js';
import { SEED_KINDS, type SeedKind } from '../seeds.js';
import type { TaskProgress, TaskResult } from '../tasks/common.js';
import { generate } from '../tasks/generate.js';
import { fillHole, holeMask, defaultHole, inpaint } from '../tasks/inpaint.js';
import { bicubic, downUp, superResolve } from '../tasks/superResolve.js';
import { translate } from '../tasks/translate.js';
import { invert } from '../tasks/invert.js';
import { representation, spreadUnits, visualizeFeature } from '../tasks/visualizeFeature.js';
import { sketchToImage } from '../tasks/sketchToImage.js';
import { sketchFromImage } from '../sketch.js';
import { concat, slice, type ImageBatch } from '../tensor.js';
import { JudgePanel, type Judged, type JudgeView } from './judges.js';
import { agreement, columnMax, diffusionFill, diversity, frechetDistance, median, psnr, roughness, ssim } from './metrics.js';
import { reportHtml, reportMarkdown } from './report.js';

export { reportMarkdown } from './report.js';

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

/**
 * Puts judged figures into a report row: `row[key]` is the least favourable judge's value (what
 * the claims rest on), `row.byJudge[key]` every judge's, `row.leastJudge[key]` which one it was.
 */
function put(row: Record<string, any>, figures: Record<string, Judged | null>): Record<string, any> {
  row.byJudge ??= {};
  row.leastJudge ??= {};
  for (const [key, j] of Object.entries(figures)) {
    row[key] = j ? j.least : null;
    row.byJudge[key] = j ? j.byJudge : null;
    row.leastJudge[key] = j ? j.leastJudge : null;
  }
  return row;
}

/** The CNN judge's view (the first of the panel): the feature space of the Fréchet distance. */
const cnn = (views: JudgeView[]) => views[0]!;

function byClass(ds: LabeledImages, label: number, limit: number): ImageBatch {
  const idx: number[] = [];
  for (let i = 0; i < ds.labels.length && idx.length < limit; i++) if (ds.labels[i] === label) idx.push(i);
  return concat(idx.map((i) => slice(ds.images, i, i + 1)));
}

/** What `robust-synth eval` runs with (the command checks its flags and hands them over). */
export interface EvalOptions {
  /** A smaller sample: fewer images per measurement. */
  quick?: boolean;
  /** Where report.json, report.md, report.html and the grids go (default robust-synth-eval). */
  out?: string;
  device?: string;
  /** Synthesize in bf16 autocast (the judges stay fp32). */
  bf16?: boolean;
  /** The robust model evaluated beside fashion-standard (default fashion-robust). */
  robust?: string;
}

export async function runEval(options: EvalOptions = {}): Promise<number> {
  const values = { quick: false, out: 'robust-synth-eval', device: 'auto', bf16: false, robust: 'fashion-robust', ...options };
  // --bf16: every synthesis runs with bf16 autocast (the judges do not), to see whether the
  // findings hold in the faster compute mode.
  const cfg = values.quick ? QUICK : FULL;
  const t0 = performance.now();
  const device = values.device as 'auto';
  const models: Classifier[] = [];
  let panel: JudgePanel | undefined;
  // Everything loaded is disposed however the run ends (an error, a cancel): native memory is not
  // left to the garbage collector.
  try {
    panel = await JudgePanel.load(device);
    // --robust NAME|PATH: evaluate another robust candidate (e.g. one of a training sweep) in place of the embedded one.
    models.push(await Classifier.load(values.robust!, { device }));
    models.push(await Classifier.load('fashion-standard', { device }));
    return await evaluate(values, cfg, models, panel, t0);
  } finally {
    for (const m of models) await m.dispose();
    await panel?.dispose();
  }
}

async function evaluate(values: { quick?: boolean; out?: string; bf16?: boolean }, cfg: EvalConfig, models: Classifier[], panel: JudgePanel, t0: number): Promise<number> {
  const bf16 = values.bf16!;
  const out = resolve(values.out!);
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
    models: Object.fromEntries([...models, ...panel.judges].map((m) => [m.name, { path: m.path, robust: m.card?.robust ?? false, eps: m.card?.eps, accuracy: m.card?.accuracy }])),
    judges: panel.names,
    generate: [] as any[],
    inpaint: [] as any[],
    superResolve: [] as any[],
    translate: [] as any[],
    visualizeFeature: [] as any[],
    invert: [] as any[],
    sketchToImage: [] as any[],
  };
  const grids: Record<string, string> = {};

  // Real images of each class in the CNN judge's feature space (the Fréchet reference).
  const realFeats = await Promise.all(classes.map(async (_, k) => (await panel.judges[0]!.features(byClass(test, k, cfg.realPerClass))).data));

  // --- Generation
  for (const clf of models) {
    for (const kind of SEED_KINDS) {
      const r = await generate({ classifier: clf, classes: [...classes.keys()], count: cfg.perClass, seed: kind as SeedKind, randomSeed: cfg.seed, bf16, onProgress });
      tick(r);
      const after = await panel.view(r.images, r.targets);
      const before = await panel.view(r.starts, r.targets);
      const d = cnn(after).featureSize;
      const perClass = classes.map((name, k) => {
        const s = k * cfg.perClass;
        const e = s + cfg.perClass;
        const t = r.targets.subarray(s, e);
        const row = {
          class: name,
          selfAgreement: round(agreement(r.predictions.subarray(s, e), t)),
          frechet: round(frechetDistance(cnn(after).features.subarray(s * d, e * d), cfg.perClass, realFeats[k]!, realFeats[k]!.length / d, d), 2),
          diversity: round(diversity(slice(r.images, s, e)), 3),
        };
        return put(row, {
          judgeAgreement: panel.agreement(after, r.targets, s, e),
          seedJudgeAgreement: panel.agreement(before, r.targets, s, e),
          judgeConfidence: panel.judged(after, (v) => mean(v.confidence.subarray(s, e))),
        }) as typeof row;
      });
      const judgeAgreement = panel.agreement(after, r.targets);
      // The gain over the seeds alone, per judge; the least favourable one is the claim.
      const gain = panel.judged(after, (v, i) => agreement(v.preds, r.targets) - agreement(before[i]!.preds, r.targets));
      report.generate.push(put({
        model: clf.name,
        seed: kind,
        selfAgreement: round(agreement(r.predictions, r.targets)),
        frechet: round(mean(perClass.map((p) => p.frechet)), 2),
        diversity: round(mean(perClass.map((p) => p.diversity)), 3),
        settings: r.settings,
        perClass,
      }, { judgeAgreement, seedJudgeAgreement: panel.agreement(before, r.targets), gain, judgeConfidence: panel.judged(after, (v) => mean(v.confidence)) }));
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
    const j = await panel.view(x, held.labels);
    const n = x.shape[0];
    const row = {
      task,
      method,
      psnr: round(mean(Array.from({ length: n }, (_, i) => psnr(x, held.images, i, region))), 2),
      ssim: round(mean(Array.from({ length: n }, (_, i) => ssim(x, held.images, i, region)))),
    };
    return put(row, { judgeAccuracy: panel.agreement(j, held.labels) });
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
      const j = await panel.view(r.images, to);
      const dist = Array.from({ length: pairs.length }, (_, i) => {
        let d = 0;
        const s = src.data.length / pairs.length;
        for (let k = i * s; k < (i + 1) * s; k++) d += (r.images.data[k]! - src.data[k]!) ** 2;
        return Math.sqrt(d);
      });
      // The least favourable source agreement is the largest: the most judges still see the source.
      report.translate.push(put({
        model: clf.name,
        eps,
        pairs: pairs.length,
        selfTargetAgreement: round(agreement(r.predictions, to)),
        meanL2: round(mean(dist), 3),
        settings: r.settings,
      }, { judgeTargetAgreement: panel.agreement(j, to), judgeSourceAgreement: panel.agreement(j, srcLabels, 0, srcLabels.length, true), judgeConfidence: panel.judged(j, (v) => mean(v.confidence)) }));
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
      const j = await panel.view(r.images, invLabels);
      report.invert.push(put({
        model: clf.name,
        from,
        targets: invIdx.length,
        distanceBefore: round(median(r.distanceBefore), 3),
        distanceAfter: round(median(r.distanceAfter), 3),
        selfTargetAgreement: round(agreement(r.predictions, invLabels)),
        psnrToTarget: round(mean(Array.from({ length: invIdx.length }, (_, i) => psnr(r.images, invTargets, i))), 2),
        settings: r.settings,
      }, { judgeTargetAgreement: panel.agreement(j, invLabels), judgeStartAgreement: from === 'noise' ? null : panel.agreement(j, otherLabels, 0, otherLabels.length, true) }));
      if (from === 'another image') {
        writeFileAtomic(join(out, `invert-${clf.name}.png`), await gridPng([first10(invOthers), first10(r.images), first10(invTargets)], { columns: 10, scale: 2 }));
        grids[`invert/${clf.name}`] = `invert-${clf.name}.png`;
      }
    }
  }

  // --- Sketch-to-image: held-out images sketched by edge detection (Sobel magnitude,
  // thresholded), both polarities; do the judges see the sketched class after PGD?
  const skIdx = pick(cfg.sketchPerClass, cfg.restoreImages + 2000);
  const skImages = concat(skIdx.map((i) => slice(test.images, i, i + 1)));
  const skLabels = Int32Array.from(skIdx, (i) => test.labels[i]!);
  for (const polarity of ['dark on white', 'white on black'] as const) {
    const sketch = sketchFromImage(skImages, { invert: polarity === 'dark on white' });
    report.sketchToImage.push(put({ model: 'sketch alone', polarity, sketches: skIdx.length, selfAgreement: null }, { judgeAgreement: panel.agreement(await panel.view(sketch, skLabels), skLabels) }));
    for (const clf of models) {
      const r = await sketchToImage({ classifier: clf, sketch, to: Array.from(skLabels), bf16, onProgress });
      tick(r);
      const j = await panel.view(r.images, skLabels);
      report.sketchToImage.push(put({ model: clf.name, polarity, sketches: skIdx.length, selfAgreement: round(agreement(r.predictions, skLabels)), settings: r.settings }, { judgeAgreement: panel.agreement(j, skLabels) }));
      const file = `sketch-to-image-${clf.name}-${polarity === 'dark on white' ? 'dark' : 'white'}.png`;
      const every = (b: ImageBatch) => concat(Array.from({ length: classes.length }, (_, k) => slice(b, k * cfg.sketchPerClass, k * cfg.sketchPerClass + 1)));
      writeFileAtomic(join(out, file), await gridPng([every(skImages), every(sketch), every(r.images)], { columns: classes.length, scale: 2 }));
      grids[`sketchToImage/${clf.name}/${polarity}`] = file;
    }
  }

  progress.done();
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

