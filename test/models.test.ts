// The embedded models as they ship: found by name, cards intact, accurate, and the robust one robust
// at its own training eps, as robust as its card says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, listModels, readFashionMnist } from '../lib/index.js';
import { JUDGES } from '../lib/eval/judges.js';
import { sha256File } from '../lib/models.js';
import { slice } from '../lib/tensor.js';

const test = readFashionMnist('test', { limit: 1000 });
const models: Record<string, Classifier> = {};

beforeAll(async () => {
  for (const name of ['fashion-robust', 'fashion-standard', 'fashion-judge']) models[name] = await Classifier.load(name, { device: 'cpu' });
});
afterAll(async () => {
  for (const m of Object.values(models)) await m.dispose();
});

async function accuracy(clf: Classifier, eps: number, n: number): Promise<number> {
  const x = slice(test.images, 0, n);
  const y = test.labels.subarray(0, n);
  const pred = eps === 0 ? await clf.predict(x) : (await clf.pgd({ x0: x, targets: y, targeted: false, eps, step: (2.5 * eps) / 20, iterations: 20, randomStart: true })).predictions;
  return pred.filter((p, i) => p === y[i]).length / n;
}

describe('embedded models', () => {
  it('are listed with their cards, and each card matches its file', async () => {
    const listed = listModels().filter((m) => m.name.startsWith('fashion-'));
    expect(listed.map((m) => m.name).sort()).toEqual(['fashion-robust', 'fashion-standard', ...JUDGES].sort());
    for (const m of listed) {
      expect(m.inputShape).toEqual([1, 28, 28]);
      expect(m.classes).toHaveLength(10);
      expect(await sha256File(m.path)).toBe(m.sha256);
      expect(m.accuracy?.clean).toBeGreaterThan(0.8);
    }
  });

  it('meet the accuracy floors on held-out images (standard, judge >= 90 %, robust >= 80 %)', async () => {
    expect(await accuracy(models['fashion-standard']!, 0, 1000)).toBeGreaterThanOrEqual(0.9);
    expect(await accuracy(models['fashion-judge']!, 0, 1000)).toBeGreaterThanOrEqual(0.9);
    expect(await accuracy(models['fashion-robust']!, 0, 1000)).toBeGreaterThanOrEqual(0.8);
  });

  it("the robust model keeps its card's accuracy under an L2 attack at its training eps; the standard one collapses", async () => {
    // The card's own figures: its training radius and its measured accuracy at that radius
    // (scripts/measure-models.ts, 2,000 images); 200 images here, so a margin of 0.08 (about 2.5
    // standard errors at these rates).
    const card = models['fashion-robust']!.card!;
    const eps = Number(card.eps);
    const measured = card.accuracy?.[`l2-${eps.toFixed(1)}`];
    expect(eps).toBeGreaterThan(0);
    expect(measured).toBeGreaterThan(0.5);
    const robust = await accuracy(models['fashion-robust']!, eps, 200);
    const standard = await accuracy(models['fashion-standard']!, eps, 200);
    expect(robust).toBeGreaterThan(measured! - 0.08);
    expect(standard).toBeLessThan(0.1);
    expect(robust - standard).toBeGreaterThan(measured! - 0.2);
  });
});
