/**
 * The measurements behind FASHION_28 (lib/tasks/common.ts) and the seed factor, recorded in
 * models/README.md. Agreement of every judge of the eval (CNN / MLP / kNN, lib/eval/judges.ts) with
 * robust and standard generations and translations; settings are chosen on the least favourable.
 *
 *   npx tsx scripts/tune-fashion-settings.ts factor | eps 2,4,8 | translate 3,5,10
 *     [--robust NAME|PATH]  a robust candidate other than the embedded fashion-robust
 *     [--step S]            step (default eps/16 for generation, eps/20 for translation)
 *     [--iterations N]      steps (default 60 for generation, 100 for translation); [--threads N]
 */
import { Classifier, fitSeeds, generate, translate, readFashionMnist, gridPng, setThreads } from '../lib/index.js';
import { slice, type ImageBatch } from '../lib/tensor.js';
import { JudgePanel, judgedLine } from '../lib/eval/judges.js';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
const { values: opts, positionals: args } = parseArgs({ allowPositionals: true, options: { robust: { type: 'string', default: 'fashion-robust' }, step: { type: 'string' }, iterations: { type: 'string' }, threads: { type: 'string' } } });
if (opts.threads) setThreads(Number(opts.threads));
const panel = await JudgePanel.load('auto');
const robust = await Classifier.load(opts.robust!);
const standard = await Classifier.load('fashion-standard');
const agree = (p: Int32Array, t: Int32Array) => p.filter((v, i) => v === t[i]).length / p.length;
/** Each judge's agreement of `images` with `targets`, then the least: "CNN 0.84 / MLP 0.57 / kNN 0.32 (least 0.32)". */
const judged = async (images: ImageBatch, targets: Int32Array) => judgedLine(panel.agreement(await panel.view(images, targets), targets));
const mode = args[0];
if (mode === 'factor') {
  for (const f of [1, 2, 4]) {
    const seeds = fitSeeds(readFashionMnist('train'), { factor: f });
    for (const clf of [robust, standard]) {
      const r = await generate({ classifier: clf, classes: [...Array(10).keys()], count: 10, seed: 'mvn', seeds, randomSeed: 3 });
      console.log(`factor ${f} ${clf.name}: seed-only judge ${await judged(r.starts, r.targets)} after ${await judged(r.images, r.targets)} self ${agree(r.predictions, r.targets).toFixed(2)}`);
    }
  }
} else if (mode === 'eps') {
  for (const eps of (args[1] ?? '2,4,8').split(',').map(Number)) {
    for (const kind of ['uniform', 'mvn'] as const) {
      for (const clf of [robust, standard]) {
        const r = await generate({ classifier: clf, classes: [...Array(10).keys()], count: 10, seed: kind, randomSeed: 3, eps, step: opts.step ? Number(opts.step) : eps / 16, iterations: opts.iterations ? Number(opts.iterations) : 60 });
        console.log(`eps ${eps} ${kind} ${clf.name}: seed judge ${await judged(r.starts, r.targets)} after ${await judged(r.images, r.targets)} self ${agree(r.predictions, r.targets).toFixed(2)}`);
        const cells = [];
        for (let k = 0; k < 10; k++) cells.push(slice(r.images, k * 10, k * 10 + 6));
        writeFileSync(`${tmpdir()}/tune-${kind}-${eps}-${clf.name}.png`, await gridPng(cells, { columns: 6, scale: 2 }));
      }
    }
  }
} else if (mode === 'translate') {
  const t = readFashionMnist('test', { limit: 300 });
  const src = slice(t.images, 100, 200);
  const to = Array.from(t.labels.subarray(100, 200), (y) => (y + 3) % 10);
  for (const eps of (args[1] ?? '3,5,10').split(',').map(Number)) {
    for (const clf of [robust, standard]) {
      const r = await translate({ classifier: clf, image: src, to, eps, step: opts.step ? Number(opts.step) : eps / 20, iterations: opts.iterations ? Number(opts.iterations) : 100 });
      // One view of the results, read against the targets and against the sources.
      const views = await panel.view(r.images, r.targets);
      const source = t.labels.subarray(100, 200);
      console.log(`translate eps ${eps} ${clf.name}: judge->target ${judgedLine(panel.agreement(views, r.targets))} judge->source ${judgedLine(panel.agreement(views, source))} self ${agree(r.predictions, r.targets).toFixed(2)}`);
    }
  }
}
for (const m of [robust, standard]) await m.dispose();
await panel.dispose();
