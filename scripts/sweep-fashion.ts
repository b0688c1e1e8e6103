/**
 * Measures one robust Fashion-MNIST candidate (a .pt written by models/train_fashion.py
 * --only robust --out DIR) the way the shipped model is judged, and writes DIR/measure.json:
 *
 * - clean accuracy (10,000 test images) and robust accuracy under scripts/measure-models.ts's
 *   attack (20-step untargeted L2 PGD, random start) at eps 0.5, 1.0, 1.5 (first 2,000 images);
 * - agreement of every judge (eval's: the CNN, the MLP and the kNN judge, lib/eval/judges.ts)
 *   with generations from uniform, normal and mvn seeds, with `robust-synth eval`'s full protocol
 *   (30 per class, randomSeed 1) at each --gen-eps (step 0.5, 60 iterations unless --gen-step /
 *   --gen-iterations);
 * - every judge's agreement with the target of translations (eval's 450 pairs: 5 held-out sources
 *   per class, each to every other class) at each --translate-eps (step 0.5, 100 iterations).
 * Each judged figure is recorded per judge (`byJudge`) and as the least favourable one (`least`),
 * on which candidates are chosen.
 *
 *   npx tsx scripts/sweep-fashion.ts scratch/sweep/NAME/fashion-robust.pt [--threads 1] [--gen-eps 10] [--attack-eps 1.0]
 *     [--attack-limit 2000] [--judges NAME,NAME,...]   (writes measure.json next to the model, or --out FILE)
 *     [--per-class 30] [--sources 5]   a smaller sample for a quick pass: generations per class and
 *                                      seed kind, translation sources per class (each to 9 classes)
 *   npx tsx scripts/sweep-fashion.ts table scratch/sweep/*\/measure.json     # the Markdown table, one column per judge
 *     [--gen-eps 15]   the generation columns at this radius (default 10, else the first measured)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { Classifier, setThreads } from '../lib/classifier.js';
import { readFashionMnist } from '../lib/datasets.js';
import { FULL } from '../lib/eval/index.js';
import { JUDGES, JudgePanel, judgeLabel, type JudgeView } from '../lib/eval/judges.js';
import { SEED_KINDS } from '../lib/seeds.js';
import { generate } from '../lib/tasks/generate.js';
import { translate } from '../lib/tasks/translate.js';
import { concat, slice } from '../lib/tensor.js';
import { robustAccuracy } from './measure-models.js';

const agree = (p: ArrayLike<number>, t: ArrayLike<number>) => {
  let n = 0;
  for (let i = 0; i < p.length; i++) n += p[i] === t[i] ? 1 : 0;
  return n / p.length;
};
const r4 = (v: number) => Math.round(v * 1e4) / 1e4;

type Judged = { least: number; byJudge: Record<string, number> };

async function measure(path: string, o: { genEps: number[]; genStep: number; genIterations: number; translateEps: number[]; attackEps: number[]; attackLimit: number; judges: string[]; perClass: number; sources: number }) {
  const t0 = performance.now();
  const clf = await Classifier.load(path, { device: 'cpu', verifyChecksum: false });
  const panel = await JudgePanel.load('cpu', o.judges);
  // Each judge's agreement with `targets` (rows s..e), and the least, as measure.json records it.
  const record = (views: JudgeView[], targets: Int32Array, s?: number, e?: number): Judged => {
    const { least, byJudge } = panel.agreement(views, targets, s, e);
    return { least, byJudge };
  };
  const test = readFashionMnist('test');
  const out: Record<string, any> = { path, judges: panel.names, card: clf.card, perClass: o.perClass, sources: o.sources, accuracy: {}, generation: {}, translation: {} };
  const lap = (what: string) => console.log(`${what} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

  out.accuracy.clean = r4(await robustAccuracy(clf, test, 0));
  const attackSet = readFashionMnist('test', { limit: o.attackLimit });
  // The attacks measure the model alone, no judge (--attack-limit 0 skips them; the table then shows the card's figure).
  if (o.attackLimit > 0) for (const eps of o.attackEps) out.accuracy[`l2-${eps.toFixed(1)}`] = r4(await robustAccuracy(clf, attackSet, eps));
  lap(`accuracy ${JSON.stringify(out.accuracy)}`);

  for (const eps of o.genEps) {
    const row: Record<string, any> = {};
    const perClass: Record<string, Record<string, number[]>> = {};
    for (const kind of SEED_KINDS) {
      const r = await generate({ classifier: clf, classes: [...Array(10).keys()], count: o.perClass, seed: kind, randomSeed: FULL.seed, eps, step: o.genStep, iterations: o.genIterations });
      const views = await panel.view(r.images, r.targets);
      row[kind] = record(views, r.targets);
      row[`${kind}Self`] = r4(agree(r.predictions, r.targets));
      // Each judge's agreement per class (10 classes, o.perClass images each, in class order).
      const n = o.perClass;
      const byClass = Array.from({ length: 10 }, (_, k) => record(views, r.targets, k * n, (k + 1) * n));
      perClass[kind] = Object.fromEntries(panel.names.map((name) => [name, byClass.map((c) => c.byJudge[name]!)]));
    }
    out.generation[`eps${eps}`] = { eps, step: o.genStep, iterations: o.genIterations, ...row, perClass };
    lap(`generation eps ${eps} ${JSON.stringify(row)}`);
  }

  // eval's translation pairs: the first translatePerClass test images of each class after the
  // restoreImages held out for inpainting, each to every other class.
  const srcIdx: number[] = [];
  for (let k = 0; k < 10; k++) {
    let got = 0;
    for (let i = FULL.restoreImages; i < test.labels.length && got < o.sources; i++) if (test.labels[i] === k) srcIdx.push(i), got++;
  }
  const pairs: Array<[number, number]> = [];
  for (const i of srcIdx) for (let b = 0; b < 10; b++) if (b !== test.labels[i]) pairs.push([i, b]);
  const src = concat(pairs.map(([i]) => slice(test.images, i, i + 1)));
  const to = Int32Array.from(pairs, ([, b]) => b);
  for (const eps of o.translateEps) {
    const r = await translate({ classifier: clf, image: src, to: Array.from(to), eps, step: 0.5, iterations: 100 });
    out.translation[`eps${eps}`] = { eps, pairs: pairs.length, judgeTarget: record(await panel.view(r.images, to), to), selfTarget: r4(agree(r.predictions, to)) };
    lap(`translation eps ${eps} ${JSON.stringify(out.translation[`eps${eps}`])}`);
  }
  out.seconds = Math.round((performance.now() - t0) / 1000);
  await clf.dispose();
  await panel.dispose();
  return out;
}

const pct = (v: number | undefined) => (v === undefined ? '' : `${(100 * v).toFixed(1)}`);
/** A judged figure: "a / b / c" in the judges' order and the least (older files: one number). */
const judgedCells = (v: Judged | number | undefined, judges: string[]) =>
  v === undefined ? ['', ''] : typeof v === 'number' ? [pct(v), pct(v)] : [judges.map((j) => pct(v.byJudge[j])).join(' / '), `**${pct(v.least)}**`];

function table(files: string[], genEps?: number): string {
  const rows = files.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  const judges: string[] = rows.find((r) => r.judges)?.judges ?? ['fashion-judge'];
  const labels = judges.map(judgeLabel).join(' / ');
  const gen = genEps !== undefined ? `eps${genEps}` : rows.find((r) => r.generation.eps10) ? 'eps10' : Object.keys(rows[0]?.generation ?? {})[0] ?? 'eps10';
  const head = ['candidate', 'arch', 'train eps', 'epochs', 'attack steps', 'clean', 'L2 1.0',
    ...['uniform', 'normal', 'mvn'].flatMap((k) => [`${k} ${gen.slice(3) ? `eps ${gen.slice(3)}` : ''} (${labels})`, 'least']),
    `translation eps 10 (${labels})`, 'least', 'sample: generations per seed kind / pairs', 'train min'];
  const lines = rows.map((r, i) => {
    const c = r.card ?? {};
    // The candidate's name: its measure file's (--out NAME.json), else its directory's, else its own.
    const file = basename(files[i]!, '.json');
    return [
      file !== 'measure' ? file : basename(dirname(r.path)) === 'models' ? basename(r.path, '.pt') : basename(dirname(r.path)),
      c.architecture,
      c.eps,
      c.training?.epochs,
      c.training?.pgdSteps ?? '-',
      pct(r.accuracy.clean),
      pct(r.accuracy['l2-1.0'] ?? c.accuracy?.['l2-1.0']),
      ...['uniform', 'normal', 'mvn'].flatMap((k) => judgedCells(r.generation[gen]?.[k], judges)),
      ...judgedCells(r.translation.eps10?.judgeTarget, judges),
      `${10 * (r.perClass ?? FULL.perClass)} / ${r.translation.eps10?.pairs ?? ''}`,
      c.training?.seconds !== undefined ? (c.training.seconds / 60).toFixed(0) : '',
    ];
  });
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string' },
    'gen-eps': { type: 'string' },
    'gen-step': { type: 'string', default: '0.5' },
    'gen-iterations': { type: 'string', default: '60' },
    'translate-eps': { type: 'string', default: '10' },
    'attack-eps': { type: 'string', default: '1.0' },
    'attack-limit': { type: 'string', default: '2000' },
    judges: { type: 'string', default: JUDGES.join(',') },
    'per-class': { type: 'string', default: String(FULL.perClass) },
    sources: { type: 'string', default: String(FULL.translatePerClass) },
    out: { type: 'string' },
  },
});
if (positionals[0] === 'table') {
  console.log(table(positionals.slice(1), values['gen-eps'] === undefined ? undefined : Number(values['gen-eps'])));
} else {
  if (values.threads) setThreads(Number(values.threads));
  const list = (s: string) => s.split(',').map(Number);
  for (const path of positionals) {
    if (!existsSync(path)) throw new Error(`no such model: ${path}`);
    const m = await measure(path, {
      genEps: list(values['gen-eps'] ?? '10'),
      genStep: Number(values['gen-step']),
      genIterations: Number(values['gen-iterations']),
      translateEps: list(values['translate-eps']!),
      attackEps: list(values['attack-eps']!),
      attackLimit: Number(values['attack-limit']),
      judges: values.judges!.split(','),
      perClass: Number(values['per-class']),
      sources: Number(values.sources),
    });
    // --out FILE: where the figures go (default DIR/measure.json beside the model).
    const file = values.out ?? `${dirname(path)}/measure.json`;
    writeFileSync(file, JSON.stringify(m, null, 2) + '\n');
    console.log(`wrote ${file} (${m.seconds} s)`);
  }
}
