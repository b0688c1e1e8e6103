// The eval's judges: three families, each accurate on real images; an adversarial image made on
// the CNN judge fools it but not the kNN judge; the embedded robust model paints its classes on the
// least favourable judge and the standard one does not; figures are stated on the least favourable judge;
// the report shows every judge; and the eval disposes what it loaded when it fails.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Classifier, setThreads } from '../lib/classifier.js';
import { readFashionMnist } from '../lib/datasets.js';
import { JUDGES, JudgePanel } from '../lib/eval/judges.js';
import { reportMarkdown } from '../lib/eval/report.js';
import { agreement } from '../lib/eval/metrics.js';
import { concat, slice } from '../lib/tensor.js';
import { generate } from '../lib/tasks/generate.js';
import { translate } from '../lib/tasks/translate.js';

const test = readFashionMnist('test', { limit: 300 });
let panel: JudgePanel;

beforeAll(async () => {
  setThreads(1);
  panel = await JudgePanel.load('cpu');
});
afterAll(async () => {
  await panel.dispose();
});

describe('judge panel', () => {
  it('has a convolutional, an MLP and a non-neural judge, each with a card, all accurate on real images', async () => {
    expect(panel.names).toEqual([...JUDGES]);
    const families = panel.judges.map((j) => String(j.card?.architecture));
    expect(families[0]).toMatch(/VGG/);
    expect(families[1]).toMatch(/Mlp/);
    expect(families[2]).toMatch(/kNN.*no neural network/);
    for (const j of panel.judges) expect(j.card?.role).toBe('judge');
    const views = await panel.view(test.images, test.labels);
    const acc = panel.agreement(views, test.labels);
    for (const name of JUDGES) expect(acc.byJudge[name]).toBeGreaterThan(0.8);
    // The least favourable figure is the smallest judge's, and names that judge.
    const min = Math.min(...Object.values(acc.byJudge));
    expect(acc.least).toBe(min);
    expect(acc.byJudge[acc.leastJudge]).toBe(min);
    // features(): the CNN's hidden layer, the MLP's, the kNN judge's PCA projection.
    expect(views.map((v) => v.featureSize)).toEqual([128, 256, 32]);
  });

  it('an adversarial image made on the CNN judge fools it, not the kNN judge', async () => {
    const n = 40;
    const x = slice(test.images, 0, n);
    const y = test.labels.subarray(0, n);
    const to = Int32Array.from(y, (c) => (c + 1) % 10);
    const cnn = panel.judges[0]!;
    const r = await cnn.pgd({ x0: x, targets: to, eps: 2, step: 0.25, iterations: 30 });
    const views = await panel.view(r.images, to);
    const fooled = panel.agreement(views, to);
    expect(fooled.byJudge['fashion-judge']).toBeGreaterThan(0.9);
    expect(fooled.byJudge['fashion-judge-knn']).toBeLessThan(0.2);
    expect(fooled.least).toBe(fooled.byJudge['fashion-judge-knn']);
    expect(fooled.leastJudge).toBe('fashion-judge-knn');
    // The kNN judge still sees the real class in most of them.
    expect(agreement(views[2]!.preds, y)).toBeGreaterThan(0.6);
    // Source agreement: the least favourable is the largest.
    expect(panel.agreement(views, y, 0, n, true).leastJudge).toBe('fashion-judge-knn');
  });
});

describe('the embedded pair, on the least favourable judge', () => {
  // What models/README.md chose fashion-robust for, on a small sample with the shipped defaults:
  // the full eval measures 66.0 % (uniform seeds) and 74.0 % (translation) for it and 10.0 % and
  // 2.9 % for fashion-standard. The floors sit about three standard errors below the robust
  // figures of 50 images (here: 66 % and 78 %); the eps 1.0 model that shipped before fails the
  // uniform floor (40 % on this sample).
  it('the robust model paints its classes from uniform noise and in translation; the standard one does not', async () => {
    const least: Record<string, { uniform: number; translation: number }> = {};
    // Five held-out sources per class (after the first 100 test images), each to the next class.
    const idx: number[] = [];
    for (let k = 0; k < 10; k++) for (let i = 100, got = 0; i < test.labels.length && got < 5; i++) if (test.labels[i] === k) idx.push(i), got++;
    const src = concat(idx.map((i) => slice(test.images, i, i + 1)));
    const to = Int32Array.from(idx, (i) => (test.labels[i]! + 1) % 10);
    for (const name of ['fashion-robust', 'fashion-standard']) {
      const clf = await Classifier.load(name, { device: 'cpu' });
      try {
        const g = await generate({ classifier: clf, classes: [...Array(10).keys()], count: 5, seed: 'uniform', randomSeed: 1 });
        const t = await translate({ classifier: clf, image: src, to: Array.from(to) });
        least[name] = {
          uniform: panel.agreement(await panel.view(g.images, g.targets), g.targets).least,
          translation: panel.agreement(await panel.view(t.images, to), to).least,
        };
      } finally {
        await clf.dispose();
      }
    }
    expect(least['fashion-robust']!.uniform).toBeGreaterThanOrEqual(0.46);
    expect(least['fashion-robust']!.translation).toBeGreaterThanOrEqual(0.54);
    expect(least['fashion-standard']!.uniform).toBeLessThanOrEqual(0.2);
    expect(least['fashion-standard']!.translation).toBeLessThanOrEqual(0.2);
  }, 120_000);
});

describe('eval report', () => {
  it("shows each judge's figure and the least favourable one", () => {
    const judges = [...JUDGES];
    const row = (v: number[]) => ({ least: Math.min(...v), byJudge: Object.fromEntries(judges.map((j, i) => [j, v[i]])) });
    const g = row([0.9, 0.6, 0.4]);
    const md = reportMarkdown({
      mode: 'quick', bf16: false, seconds: 1, judges, config: { perClass: 1, srFactor: 4 },
      generate: [{ model: 'm', seed: 'uniform', judgeAgreement: g.least, byJudge: { judgeAgreement: g.byJudge, seedJudgeAgreement: row([0.1, 0.1, 0.1]).byJudge }, leastJudge: { judgeAgreement: 'fashion-judge-knn' }, seedJudgeAgreement: 0.1, gain: 0.3, selfAgreement: 1, judgeConfidence: 0.5, frechet: 1, diversity: 1 }],
      inpaint: [], superResolve: [], translate: [],
    });
    expect(md).toMatch(/judges agree \(CNN \/ MLP \/ kNN, %\)/);
    expect(md).toMatch(/\| 90\.0 \/ 60\.0 \/ 40\.0 \| 40\.0 % \(kNN\) \|/);
    expect(md).toMatch(/`fashion-judge-knn` \(kNN\)/);
  });

  it('disposes the judges it loaded when the run fails (issue 24, item 2)', async () => {
    const { runEval } = await import('../lib/eval/index.js');
    const out = mkdtempSync(join(tmpdir(), 'rs-eval-'));
    const dispose = vi.spyOn(Classifier.prototype, 'dispose');
    try {
      await expect(runEval({ quick: true, device: 'cpu', out, robust: join(out, 'missing.pt') })).rejects.toMatchObject({ code: 'ERR_MODEL_NOT_FOUND' });
      const disposed = dispose.mock.contexts.map((c) => (c as Classifier).name);
      expect(disposed.sort()).toEqual([...JUDGES].sort());
    } finally {
      dispose.mockRestore();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
