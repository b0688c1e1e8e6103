/**
 * `robust-synth demo`: every task of the study on the embedded Fashion-MNIST pair, robust
 * beside standard, written as one gallery (PNG grids + index.html). No argument, no network.
 */
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { Classifier, type Device } from './classifier.js';
import { progressReporter, type ProgressReporter } from './progress.js';
import { readFashionExamples } from './datasets.js';
import { gridPng, writeFileAtomic } from './images.js';
import { SEED_KINDS, type SeedKind } from './seeds.js';
import type { TaskResult } from './tasks/common.js';
import { generate } from './tasks/generate.js';
import { inpaint } from './tasks/inpaint.js';
import { superResolve } from './tasks/superResolve.js';
import { translate } from './tasks/translate.js';
import { invert } from './tasks/invert.js';
import { paintFeature } from './tasks/paintFeature.js';
import { sketchToImage } from './tasks/sketchToImage.js';
import { representation, spreadUnits, visualizeFeature } from './tasks/visualizeFeature.js';
import { sketchFromImage } from './sketch.js';
import { columnMax, median } from './eval/metrics.js';
import { concat, slice, type ImageBatch } from './tensor.js';
import * as is from './validate.js';

export interface Panel {
  title: string;
  caption: string;
  /** model name -> file */
  files: Record<string, string>;
  /** model name -> short figure line */
  notes: Record<string, string>;
}

/** Picks the first `perClass` test images of each class, in class order. */
export function examplesPerClass(images: ImageBatch, labels: Int32Array, classes: number, perClass = 1): { images: ImageBatch; labels: Int32Array } {
  const picked: number[] = [];
  for (let k = 0; k < classes; k++) {
    let got = 0;
    for (let i = 0; i < labels.length && got < perClass; i++) if (labels[i] === k) picked.push(i), got++;
  }
  return { images: concat(picked.map((i) => slice(images, i, i + 1))), labels: Int32Array.from(picked, (i) => labels[i]!) };
}

function agreement(r: TaskResult): string {
  let hit = 0;
  r.predictions.forEach((p, i) => (hit += p === r.targets[i] ? 1 : 0));
  return `${hit}/${r.targets.length} classified as the target by the model itself`;
}

export interface DemoOptions {
  /** The gallery's directory (created if absent). */
  out: string;
  /** Generated images per class and seed kind (default 6). */
  count?: number;
  device?: Device;
  /** Reports each step's progress (default: lines on stderr). */
  progress?: (label: string) => ProgressReporter;
}

export interface DemoResult {
  /** index.html in `out`. */
  index: string;
  seconds: number;
  panels: Panel[];
}

/**
 * Every task on the embedded robust and standard models, as one gallery in `out`. Needs no
 * data set: its images are the Fashion-MNIST test images the package ships.
 */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const out = resolve(o.out);
  const count = is.integer('count', o.count ?? 6, { min: 1 });
  const device = o.device ?? 'auto';
  const progress = o.progress ?? progressReporter;
  const models: Classifier[] = [];
  try {
    for (const name of ['fashion-robust', 'fashion-standard']) models.push(await Classifier.load(name, { device }));
    return await gallery(out, count, models, progress);
  } finally {
    for (const m of models) await m.dispose();
  }
}

async function gallery(out: string, count: number, models: Classifier[], progressReporter: (label: string) => ProgressReporter): Promise<DemoResult> {
  const test = readFashionExamples();
  const ex = examplesPerClass(test.images, test.labels, 10);
  const translateTo = Int32Array.from(ex.labels, (y) => [3, 0, 4, 0, 2, 7, 3, 9, 1, 5][y]!); // T-shirt->Dress, Trouser->T-shirt, ...
  const panels: Panel[] = [];
  const t0 = performance.now();
  const panel = (title: string, caption: string): Panel => {
    const p = { title, caption, files: {}, notes: {} };
    panels.push(p);
    return p;
  };
  const gens = Object.fromEntries(SEED_KINDS.map((k) => [k, panel(`Generation from ${k === 'mvn' ? 'multivariate normal' : k === 'normal' ? 'univariate normal' : 'uniform'} seeds`, `One row per class (${test.classes.join(', ')}); ${count} samples each. The first column is a seed, the rest are PGD results.`)])) as Record<SeedKind, Panel>;
  const inp = panel('Inpainting', 'Rows: original, with the hole filled by the mean, inpainted.');
  const sr = panel('Super-resolution (4x)', 'Rows: low-res start (block average 4x4, nearest upsampling), super-resolved, original.');
  const tr = panel('Image-to-image translation', `Rows: source, translated. Targets: ${Array.from(translateTo, (k) => test.classes[k]).join(', ')}.`);
  const fv = panel('Feature visualization', "Eight units spread over each model's representation, each maximized from noise (two starts per unit: two rows).");
  const pf = panel('Paint with features', "Rows: original, then the model's strongest unit painted into the centre (14x14) while the rest is held in place.");
  const iv = panel('Representation inversion', "Rows: target, inverted from noise, a start image of another class, inverted from it.");
  const sk = panel('Sketch to image', 'Rows: original, its sketch (Sobel edges, thresholded, white on black as Fashion-MNIST draws garments), the result toward the original\'s class.');
  const real = test.images;
  const sketches = sketchFromImage(ex.images, { invert: false });
  const otherStarts = concat(Array.from(ex.labels, (_, i) => slice(ex.images, (i + 1) % 10, (i + 1) % 10 + 1)));

  for (const clf of models) {
    const name = clf.name;
    const run = async <R extends TaskResult>(label: string, f: (p: ReturnType<typeof progressReporter>) => Promise<R>): Promise<R> => {
      const p = progressReporter(`${name} ${label}`);
      const r = await f(p);
      p.done();
      return r;
    };
    for (const kind of SEED_KINDS) {
      const r = await run(`generate (${kind})`, (p) => generate({ classifier: clf, classes: [...Array(10).keys()], count, seed: kind, randomSeed: 1, onProgress: p.update }));
      // Per class: its first seed, then the generated images.
      const cells: ImageBatch[] = [];
      for (let k = 0; k < 10; k++) cells.push(slice(r.starts, k * count, k * count + 1), slice(r.images, k * count, (k + 1) * count));
      const file = `${name}-generate-${kind}.png`;
      writeFileAtomic(join(out, file), await gridPng(cells, { columns: count + 1, scale: 3 }));
      gens[kind].files[name] = file;
      gens[kind].notes[name] = agreement(r);
    }
    const ri = await run('inpaint', (p) => inpaint({ classifier: clf, image: ex.images, label: Array.from(ex.labels), onProgress: p.update }));
    writeFileAtomic(join(out, `${name}-inpaint.png`), await gridPng([ex.images, ri.starts, ri.images], { columns: 10, scale: 3 }));
    inp.files[name] = `${name}-inpaint.png`;
    inp.notes[name] = agreement(ri);
    const rs = await run('super-resolve', (p) => superResolve({ classifier: clf, image: ex.images, factor: 4, label: Array.from(ex.labels), onProgress: p.update }));
    writeFileAtomic(join(out, `${name}-super-resolve.png`), await gridPng([rs.starts, rs.images, ex.images], { columns: 10, scale: 3 }));
    sr.files[name] = `${name}-super-resolve.png`;
    sr.notes[name] = agreement(rs);
    const rt = await run('translate', (p) => translate({ classifier: clf, image: ex.images, to: Array.from(translateTo), onProgress: p.update }));
    writeFileAtomic(join(out, `${name}-translate.png`), await gridPng([ex.images, rt.images], { columns: 10, scale: 3 }));
    tr.files[name] = `${name}-translate.png`;
    tr.notes[name] = agreement(rt);
    // The feature tasks. The scale of a unit: its largest value on the shipped real test images.
    const unitMax = columnMax(await representation(clf, real));
    const d = unitMax.length;
    const units = spreadUnits(clf, 8, d);
    const rv = await run('visualize-feature', (p) => visualizeFeature({ classifier: clf, feature: units, count: 2, randomSeed: 1, onProgress: p.update }));
    const byStart = [0, 1].map((k) => concat(units.map((_, u) => slice(rv.images, 2 * u + k, 2 * u + k + 1))));
    writeFileAtomic(join(out, `${name}-visualize-feature.png`), await gridPng(byStart, { columns: 8, scale: 3 }));
    fv.files[name] = `${name}-visualize-feature.png`;
    fv.notes[name] = `median unit value ${median(Array.from(rv.after, (a, i) => a / Math.max(1e-6, unitMax[rv.features[i]!]!))).toFixed(2)}x its largest on real images (from ${median(Array.from(rv.before, (a, i) => a / Math.max(1e-6, unitMax[rv.features[i]!]!))).toFixed(2)}x)`;
    // Among every channel's centre unit for a feature map (the paint region is the centre), else every unit.
    const strongest = spreadUnits(clf, d, d).reduce((a, b) => (unitMax[b]! > unitMax[a]! ? b : a));
    const rp = await run('paint-feature', (p) => paintFeature({ classifier: clf, image: ex.images, feature: strongest, region: { x: 7, y: 7, width: 14, height: 14 }, onProgress: p.update }));
    writeFileAtomic(join(out, `${name}-paint-feature.png`), await gridPng([ex.images, rp.images], { columns: 10, scale: 3 }));
    pf.files[name] = `${name}-paint-feature.png`;
    pf.notes[name] = `unit ${strongest}: median ${median(rp.before).toFixed(2)} -> ${median(rp.after).toFixed(2)} (its largest on real images: ${unitMax[strongest]!.toFixed(2)})`;
    const rn = await run('invert (noise)', (p) => invert({ classifier: clf, target: ex.images, randomSeed: 1, onProgress: p.update }));
    const ro = await run('invert (image)', (p) => invert({ classifier: clf, target: ex.images, start: otherStarts, onProgress: p.update }));
    writeFileAtomic(join(out, `${name}-invert.png`), await gridPng([ex.images, rn.images, otherStarts, ro.images], { columns: 10, scale: 3 }));
    iv.files[name] = `${name}-invert.png`;
    // The target of an inversion is the class the model gives the target image.
    iv.notes[name] = `from noise ${agreement(rn)}; from another image ${agreement(ro).split(' ')[0]}; relative representation distance ${median(ro.distanceBefore).toFixed(2)} -> ${median(ro.distanceAfter).toFixed(2)}`;
    const rk = await run('sketch-to-image', (p) => sketchToImage({ classifier: clf, sketch: sketches, to: Array.from(ex.labels), onProgress: p.update }));
    writeFileAtomic(join(out, `${name}-sketch-to-image.png`), await gridPng([ex.images, sketches, rk.images], { columns: 10, scale: 3 }));
    sk.files[name] = `${name}-sketch-to-image.png`;
    sk.notes[name] = agreement(rk);
  }
  writeFileAtomic(join(out, 'comparison-mvn.png'), await sideBySide(models.map((m) => join(out, gens.mvn.files[m.name]!))));
  const seconds = (performance.now() - t0) / 1000;
  writeFileAtomic(join(out, 'index.html'), galleryHtml(panels, models.map((m) => m.name), seconds));
  writeFileAtomic(join(out, 'gallery.json'), JSON.stringify({ seconds, panels }, null, 2) + '\n');
  return { index: join(out, 'index.html'), seconds, panels };
}

/** The same panel for each model, left to right, as one PNG (the README's picture). */
async function sideBySide(files: string[], gap = 24): Promise<Buffer> {
  const metas = await Promise.all(files.map((f) => sharp(f).metadata()));
  const width = metas.reduce((a, m) => a + m.width!, 0) + gap * (files.length - 1);
  const height = Math.max(...metas.map((m) => m.height!));
  let left = 0;
  const layers = files.map((f, i) => {
    const l = { input: f, left, top: 0 };
    left += metas[i]!.width! + gap;
    return l;
  });
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite(layers).png().toBuffer();
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function galleryHtml(panels: Panel[], models: string[], seconds: number): string {
  const sections = panels
    .map(
      (p) => `<section><h2>${esc(p.title)}</h2><p>${esc(p.caption)}</p><div class="row">${models
        .map((m) => `<figure><img src="${esc(p.files[m] ?? '')}" alt="${esc(`${p.title}, ${m}`)}"><figcaption><b>${esc(m)}</b>: ${esc(p.notes[m] ?? '')}</figcaption></figure>`)
        .join('')}</div></section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>robust-synth demo</title>
<style>body{font:15px system-ui,sans-serif;margin:2em;max-width:1400px}.row{display:flex;gap:2em;flex-wrap:wrap}
figure{margin:0}img{image-rendering:pixelated;border:1px solid #ccc}figcaption{margin-top:.4em}h2{margin-top:2em}</style></head>
<body><h1>robust-synth: one robust classifier, many tasks</h1>
<p>Every picture below comes from the same projected-gradient-descent loop run on a classifier: on the left the
adversarially robust one (<code>fashion-robust</code>, L2 PGD training), on the right the standard one
(<code>fashion-standard</code>). The robust classifier's gradients paint visible class features; the standard
one reaches the same target class with changes a person can barely see. Made in ${seconds.toFixed(0)} s.</p>
${sections}
</body></html>
`;
}
