/**
 * Measures one robust Fashion-MNIST candidate (a .pt written by models/train_fashion.py
 * --only robust --out DIR) the way the shipped model is judged, and writes DIR/measure.json:
 *
 * - clean accuracy (10,000 test images) and robust accuracy under scripts/measure-models.ts's
 *   attack (20-step untargeted L2 PGD, random start) at eps 0.5, 1.0, 1.5 (first 2,000 images);
 * - judge agreement (fashion-judge) of generations from uniform, normal and mvn seeds, with
 *   `robust-synth eval`'s full protocol (30 per class, randomSeed 1) at each --gen-eps
 *   (step 0.5, 60 iterations unless --gen-step / --gen-iterations);
 * - judge agreement with the target of translations (eval's 450 pairs: 5 held-out sources per
 *   class, each to every other class) at eps 5 and 10 (step 0.5, 100 iterations).
 *
 *   npx tsx scripts/sweep-fashion.ts scratch/sweep/NAME/fashion-robust.pt [--threads 1] [--gen-eps 8,10] [--attack-limit 2000]
 *     [--judge NAME|PATH]   another judge (writes measure-<judge>.json; --attack-limit 0 skips the attacks)
 *   npx tsx scripts/sweep-fashion.ts table scratch/sweep/*\/measure.json     # the Markdown table
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { Classifier, setThreads } from '../lib/classifier.js';
import { readFashionMnist } from '../lib/datasets.js';
import { FULL } from '../lib/eval/index.js';
import { SEED_KINDS } from '../lib/seeds.js';
import { generate } from '../lib/tasks/generate.js';
import { translate } from '../lib/tasks/translate.js';
import { concat, slice } from '../lib/tensor.js';
import { ATTACK_EPS, robustAccuracy } from './measure-models.js';

const agree = (p: ArrayLike<number>, t: ArrayLike<number>) => {
  let n = 0;
  for (let i = 0; i < p.length; i++) n += p[i] === t[i] ? 1 : 0;
  return n / p.length;
};
const r4 = (v: number) => Math.round(v * 1e4) / 1e4;

async function measure(path: string, o: { genEps: number[]; genStep: number; genIterations: number; translateEps: number[]; attackLimit: number; judge: string }) {
  const t0 = performance.now();
  const clf = await Classifier.load(path, { device: 'cpu' });
  const judge = await Classifier.load(o.judge, { device: 'cpu' });
  const test = readFashionMnist('test');
  const out: Record<string, any> = { path, judge: judge.name, card: clf.card, accuracy: {}, generation: {}, translation: {} };
  const lap = (what: string) => console.log(`${what} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

  out.accuracy.clean = r4(await robustAccuracy(clf, test, 0));
  const attackSet = readFashionMnist('test', { limit: o.attackLimit });
  // The attacks do not involve the judge: measured with the project's judge only (attack-limit 0 skips them).
  if (o.attackLimit > 0) for (const eps of ATTACK_EPS) out.accuracy[`l2-${eps.toFixed(1)}`] = r4(await robustAccuracy(clf, attackSet, eps));
  lap(`accuracy ${JSON.stringify(out.accuracy)}`);

  for (const eps of o.genEps) {
    const row: Record<string, number> = {};
    const perClass: Record<string, number[]> = {};
    for (const kind of SEED_KINDS) {
      const r = await generate({ classifier: clf, classes: [...Array(10).keys()], count: FULL.perClass, seed: kind, randomSeed: FULL.seed, eps, step: o.genStep, iterations: o.genIterations });
      const judged = await judge.predict(r.images);
      row[kind] = r4(agree(judged, r.targets));
      row[`${kind}Self`] = r4(agree(r.predictions, r.targets));
      // Judge agreement per class (10 classes, FULL.perClass images each, in class order).
      perClass[kind] = Array.from({ length: 10 }, (_, k) => r4(agree(judged.subarray(k * FULL.perClass, (k + 1) * FULL.perClass), r.targets.subarray(k * FULL.perClass, (k + 1) * FULL.perClass))));
    }
    out.generation[`eps${eps}`] = { eps, step: o.genStep, iterations: o.genIterations, ...row, perClass };
    lap(`generation eps ${eps} ${JSON.stringify(row)}`);
  }

  // eval's translation pairs: the first translatePerClass test images of each class after the
  // restoreImages held out for inpainting, each to every other class.
  const srcIdx: number[] = [];
  for (let k = 0; k < 10; k++) {
    let got = 0;
    for (let i = FULL.restoreImages; i < test.labels.length && got < FULL.translatePerClass; i++) if (test.labels[i] === k) srcIdx.push(i), got++;
  }
  const pairs: Array<[number, number]> = [];
  for (const i of srcIdx) for (let b = 0; b < 10; b++) if (b !== test.labels[i]) pairs.push([i, b]);
  const src = concat(pairs.map(([i]) => slice(test.images, i, i + 1)));
  const to = Int32Array.from(pairs, ([, b]) => b);
  for (const eps of o.translateEps) {
    const r = await translate({ classifier: clf, image: src, to: Array.from(to), eps, step: 0.5, iterations: 100 });
    out.translation[`eps${eps}`] = { eps, pairs: pairs.length, judgeTarget: r4(agree(await judge.predict(r.images), to)), selfTarget: r4(agree(r.predictions, to)) };
    lap(`translation eps ${eps} ${JSON.stringify(out.translation[`eps${eps}`])}`);
  }
  out.seconds = Math.round((performance.now() - t0) / 1000);
  await clf.dispose();
  await judge.dispose();
  return out;
}

const pct = (v: number | undefined) => (v === undefined ? '' : `${(100 * v).toFixed(1)}`);

function table(files: string[]): string {
  const rows = files.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  const genEps = [...new Set(rows.flatMap((r) => Object.keys(r.generation)))];
  const head = ['candidate', 'arch', 'train eps', 'epochs', 'steps', 'clean', 'L2 0.5', 'L2 1.0', 'L2 1.5', ...genEps.flatMap((g) => [`uniform ${g}`, `normal ${g}`, `mvn ${g}`]), 'translate eps 5', 'translate eps 10', 'train min'];
  const lines = rows.map((r) => {
    const c = r.card ?? {};
    return [
      basename(dirname(r.path)),
      c.architecture,
      c.eps,
      c.training?.epochs,
      c.training?.pgdSteps,
      pct(r.accuracy.clean),
      pct(r.accuracy['l2-0.5']),
      pct(r.accuracy['l2-1.0']),
      pct(r.accuracy['l2-1.5']),
      ...genEps.flatMap((g) => [pct(r.generation[g]?.uniform), pct(r.generation[g]?.normal), pct(r.generation[g]?.mvn)]),
      pct(r.translation.eps5?.judgeTarget),
      pct(r.translation.eps10?.judgeTarget),
      c.training?.seconds !== undefined ? (c.training.seconds / 60).toFixed(0) : '',
    ];
  });
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string' },
    'gen-eps': { type: 'string', default: '8,10' },
    'gen-step': { type: 'string', default: '0.5' },
    'gen-iterations': { type: 'string', default: '60' },
    'translate-eps': { type: 'string', default: '5,10' },
    'attack-limit': { type: 'string', default: '2000' },
    judge: { type: 'string', default: 'fashion-judge' },
  },
});
if (positionals[0] === 'table') {
  console.log(table(positionals.slice(1)));
} else {
  if (values.threads) setThreads(Number(values.threads));
  const list = (s: string) => s.split(',').map(Number);
  for (const path of positionals) {
    if (!existsSync(path)) throw new Error(`no such model: ${path}`);
    const m = await measure(path, {
      genEps: list(values['gen-eps']!),
      genStep: Number(values['gen-step']),
      genIterations: Number(values['gen-iterations']),
      translateEps: list(values['translate-eps']!),
      attackLimit: Number(values['attack-limit']),
      judge: values.judge!,
    });
    // Another judge's figures go beside the project judge's: measure-<judge>.json.
    const file = `${dirname(path)}/${values.judge === 'fashion-judge' ? 'measure' : `measure-${basename(values.judge!).replace(/\.pt$/, '')}`}.json`;
    writeFileSync(file, JSON.stringify(m, null, 2) + '\n');
    console.log(`wrote ${file} (${m.seconds} s)`);
  }
}
