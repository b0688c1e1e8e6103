/**
 * The measurements behind FASHION_28's feature-task settings (visualizeFeature, paintFeature,
 * invert, sketchToImage in lib/tasks/common.ts), recorded in models/README.md. Robust against
 * standard, with every judge of the eval (CNN / MLP / kNN, lib/eval/judges.ts) where a class is at
 * stake; settings are chosen on the least favourable.
 *
 *   npx tsx scripts/tune-feature-settings.ts visualize [0.05,0.1,0.25,0.5]   # step, 200 iterations, eps 1000
 *   npx tsx scripts/tune-feature-settings.ts paint [2.5,5,10]                # eps (step 0.028 eps, 140 iterations, penalty 90)
 *   npx tsx scripts/tune-feature-settings.ts invert [0.05,0.1,0.25]          # step (eps 1000; 200, 500 and 1000 iterations)
 *   npx tsx scripts/tune-feature-settings.ts sketch [2,4,8,12]               # eps (step eps/20, 60 iterations), both sketch polarities
 *     [--robust NAME|PATH]  a robust candidate other than the embedded fashion-robust
 *     [--threads N] [--grids]  (--grids: PNG grids into the temp directory)
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { Classifier, gridPng, invert, paintFeature, readFashionMnist, setThreads, sketchFromImage, sketchToImage, visualizeFeature, type ImageBatch } from '../lib/index.js';
import { columnMax, median, psnr, roughness } from '../lib/eval/metrics.js';
import { concat, slice } from '../lib/tensor.js';
import { representation, spreadUnits } from '../lib/tasks/visualizeFeature.js';
import { JudgePanel, judgedLine, type Judged } from '../lib/eval/judges.js';

const { values: opts, positionals: args } = parseArgs({ allowPositionals: true, options: { robust: { type: 'string', default: 'fashion-robust' }, threads: { type: 'string' }, grids: { type: 'boolean', default: false } } });
if (opts.threads) setThreads(Number(opts.threads));
const panel = await JudgePanel.load('auto');
const models = [await Classifier.load(opts.robust!), await Classifier.load('fashion-standard')];
const test = readFashionMnist('test', { limit: 2000 });
const agree = (p: ArrayLike<number>, t: ArrayLike<number>) => Array.from(p).filter((v, i) => v === t[i]).length / p.length;
const mean = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0) / a.length;
const list = (s: string | undefined, d: string) => (s ?? d).split(',').map(Number);
const f2 = (v: number) => v.toFixed(2);
const f3 = (v: number) => v.toFixed(3);
/** Every judge's agreement of `images` with `labels`, and the least (what settings are chosen on). */
const judgedBy = async (images: ImageBatch, labels: ArrayLike<number>): Promise<Judged> => panel.agreement(await panel.view(images, labels), labels);
/** The first `per` held-out images of each class (from index 1000 on: not the ones the eval shows first). */
function perClass(per: number): { images: ImageBatch; labels: Int32Array } {
  const idx: number[] = [];
  for (let k = 0; k < 10; k++) for (let i = 1000, got = 0; i < test.labels.length && got < per; i++) if (test.labels[i] === k) idx.push(i), got++;
  return { images: concat(idx.map((i) => slice(test.images, i, i + 1))), labels: Int32Array.from(idx, (i) => test.labels[i]!) };
}
/** Per unit, its largest value over 1000 test images: the scale a visualization's value is read against. */
async function realMax(clf: Classifier): Promise<Float32Array> {
  return columnMax(await representation(clf, slice(test.images, 0, 1000)));
}
async function grid(name: string, rows: ImageBatch[], columns: number): Promise<void> {
  if (opts.grids) writeFileSync(`${tmpdir()}/tune-${name}.png`, await gridPng(rows, { columns, scale: 2 }));
}

const mode = args[0];
if (mode === 'visualize') {
  // Eight units spread over the representation, two noise starts each.
  for (const clf of models) {
    const max = await realMax(clf);
    const d = max.length;
    const units = spreadUnits(clf, 8, d);
    for (const step of list(args[1], '0.05,0.1,0.25,0.5')) {
      const r = await visualizeFeature({ classifier: clf, feature: units, count: 2, randomSeed: 1, step });
      const ratio = Array.from(r.after, (a, i) => a / Math.max(1e-6, max[r.features[i]!]!));
      console.log(`visualize step ${step} ${clf.name}: unit / its max on real images: median ${f2(median(ratio))} (start ${f2(median(Array.from(r.before, (b, i) => b / Math.max(1e-6, max[r.features[i]!]!))))}), roughness ${f3(roughness(r.images))} (start ${f3(roughness(r.starts))})`);
      await grid(`visualize-${step}-${clf.name}`, [r.images], 8);
    }
  }
} else if (mode === 'paint') {
  // Ten images (one per class), each painted with the units the model's real images raise most.
  const ex = perClass(1);
  const [, , h, w] = ex.images.shape;
  const region = { x: 7, y: 7, width: 14, height: 14 };
  const inside = new Float32Array(h * w);
  for (let y = region.y; y < region.y + region.height; y++) for (let x = region.x; x < region.x + region.width; x++) inside[y * w + x] = 1;
  for (const clf of models) {
    const max = await realMax(clf);
    // The three strongest among the candidates spreadUnits gives (every channel's centre unit for a feature map).
    const units = spreadUnits(clf, max.length, max.length).sort((a, b) => max[b]! - max[a]!).slice(0, 3);
    for (const eps of list(args[1], '2.5,5,10')) {
      for (const penaltyWeight of [90]) {
        const rows: ImageBatch[] = [ex.images];
        const rise: number[] = [];
        const inRms: number[] = [];
        const outRms: number[] = [];
        for (const unit of units) {
          const r = await paintFeature({ classifier: clf, image: ex.images, feature: unit, region, eps, step: 0.028 * eps, iterations: 140, penaltyWeight });
          rows.push(r.images);
          r.after.forEach((a, i) => rise.push((a - r.before[i]!) / Math.max(1e-6, max[unit]!)));
          for (let i = 0; i < 10; i++) {
            let si = 0, so = 0, ni = 0, no = 0;
            for (let p = 0; p < h * w; p++) {
              const dd = (r.images.data[i * h * w + p]! - ex.images.data[i * h * w + p]!) ** 2;
              if (inside[p]) (si += dd), ni++;
              else (so += dd), no++;
            }
            inRms.push(Math.sqrt(si / ni));
            outRms.push(Math.sqrt(so / no));
          }
        }
        // Every unit's painted images judged together (equal groups: the mean of the units' figures).
        const painted = rows.slice(1);
        const kept = await judgedBy(concat(painted), Int32Array.from(painted.flatMap(() => Array.from(ex.labels))));
        console.log(`paint eps ${eps} penalty ${penaltyWeight} ${clf.name}: unit rise / its real max: median ${f2(median(rise))}; RMS change inside ${f3(mean(inRms))}, outside ${f3(mean(outRms))}; judges still see the class ${judgedLine(kept)}`);
        await grid(`paint-${eps}-${clf.name}`, rows, 10);
      }
    }
  }
} else if (mode === 'invert') {
  // Fifty targets (five per class) from noise; judge agreement with each target's true class.
  const ex = perClass(5);
  for (const clf of models) {
    for (const step of list(args[1], '0.05,0.1,0.25')) {
      for (const iterations of [200, 500, 1000]) {
        const r = await invert({ classifier: clf, target: ex.images, step, iterations, randomSeed: 2 });
        const j = await judgedBy(r.images, ex.labels);
        const p = mean(Array.from({ length: ex.labels.length }, (_, i) => psnr(r.images, ex.images, i)));
        console.log(`invert step ${step} iterations ${iterations} ${clf.name}: relative distance ${f3(median(r.distanceBefore))} -> ${f3(median(r.distanceAfter))}; judges agree with the target's class ${judgedLine(j)}; self ${f2(agree(r.predictions, ex.labels))}; PSNR to target ${f2(p)} dB`);
        await grid(`invert-${step}-${iterations}-${clf.name}`, [slice(ex.images, 0, 50), slice(r.images, 0, 50)], 10);
      }
    }
  }
} else if (mode === 'sketch') {
  // A hundred held-out images (ten per class), sketched; judge agreement with their true class.
  const ex = perClass(10);
  for (const invertSketch of [true, false]) {
    const sketch = sketchFromImage(ex.images, { invert: invertSketch });
    console.log(`sketches (${invertSketch ? 'dark on white' : 'white on black'}) alone: judges ${judgedLine(await judgedBy(sketch, ex.labels))}`);
    for (const eps of list(args[1], '2,4,8,12')) {
      for (const clf of models) {
        const r = await sketchToImage({ classifier: clf, sketch, to: Array.from(ex.labels), eps, step: eps / 20, iterations: 60 });
        console.log(`sketch eps ${eps} ${invertSketch ? 'dark-on-white' : 'white-on-black'} ${clf.name}: judges ${judgedLine(await judgedBy(r.images, ex.labels))} self ${f2(agree(r.predictions, ex.labels))}`);
        const rows: ImageBatch[] = [];
        for (let k = 0; k < 10; k++) rows.push(slice(sketch, k * 10, k * 10 + 1), slice(r.images, k * 10, k * 10 + 5));
        await grid(`sketch-${eps}-${invertSketch ? 'dark' : 'white'}-${clf.name}`, rows, 6);
      }
    }
  }
} else {
  console.error('usage: npx tsx scripts/tune-feature-settings.ts visualize|paint|invert|sketch [values]');
  process.exitCode = 2;
}
for (const m of models) await m.dispose();
await panel.dispose();
