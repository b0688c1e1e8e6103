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
import { JUDGES, judgeLabel } from '../lib/eval/judges.js';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
const { values: opts, positionals: args } = parseArgs({ allowPositionals: true, options: { robust: { type: 'string', default: 'fashion-robust' }, step: { type: 'string' }, iterations: { type: 'string' }, threads: { type: 'string' } } });
if (opts.threads) setThreads(Number(opts.threads));
const judges: Classifier[] = [];
for (const name of JUDGES) judges.push(await Classifier.load(name));
const robust = await Classifier.load(opts.robust!);
const standard = await Classifier.load('fashion-standard');
const agree = (p: Int32Array, t: Int32Array) => p.filter((v, i) => v === t[i]).length / p.length;
/** Each judge's agreement of `images` with `targets`, then the least: "CNN 0.84 / MLP 0.57 / kNN 0.32 (least 0.32)". */
const judge = {
  async predict(images: ImageBatch): Promise<Int32Array[]> {
    const out: Int32Array[] = [];
    for (const j of judges) out.push(await j.predict(images));
    return out;
  },
};
const agreeAll = (ps: Int32Array[], t: Int32Array) => {
  const a = ps.map((p) => agree(p, t));
  return { toFixed: (d: number) => `${a.map((v, i) => `${judgeLabel(judges[i]!.name)} ${v.toFixed(d)}`).join(' / ')} (least ${Math.min(...a).toFixed(d)})` };
};
const mode = args[0];
if (mode === 'factor') {
  for (const f of [1, 2, 4]) {
    const seeds = fitSeeds(readFashionMnist('train'), { factor: f });
    for (const clf of [robust, standard]) {
      const r = await generate({ classifier: clf, classes: [...Array(10).keys()], count: 10, seed: 'mvn', seeds, randomSeed: 3 });
      const before = agreeAll(await judge.predict(r.starts), r.targets);
      const after = agreeAll(await judge.predict(r.images), r.targets);
      console.log(`factor ${f} ${clf.name}: seed-only judge ${before.toFixed(2)} after ${after.toFixed(2)} self ${agree(r.predictions, r.targets).toFixed(2)}`);
    }
  }
} else if (mode === 'eps') {
  for (const eps of (args[1] ?? '2,4,8').split(',').map(Number)) {
    for (const kind of ['uniform', 'mvn'] as const) {
      for (const clf of [robust, standard]) {
        const r = await generate({ classifier: clf, classes: [...Array(10).keys()], count: 10, seed: kind, randomSeed: 3, eps, step: opts.step ? Number(opts.step) : eps / 16, iterations: opts.iterations ? Number(opts.iterations) : 60 });
        const before = agreeAll(await judge.predict(r.starts), r.targets);
        const after = agreeAll(await judge.predict(r.images), r.targets);
        console.log(`eps ${eps} ${kind} ${clf.name}: seed judge ${before.toFixed(2)} after ${after.toFixed(2)} self ${agree(r.predictions, r.targets).toFixed(2)}`);
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
      console.log(`translate eps ${eps} ${clf.name}: judge->target ${agreeAll(await judge.predict(r.images), r.targets).toFixed(2)} judge->source ${agreeAll(await judge.predict(r.images), t.labels.subarray(100, 200)).toFixed(2)} self ${agree(r.predictions, r.targets).toFixed(2)}`);
    }
  }
}
