/**
 * Measures the embedded models on the Fashion-MNIST test images through the native engine
 * and records the figures in their model cards (models/<name>.json, field `accuracy`):
 * clean accuracy, and accuracy under an untargeted 20-step L2 PGD (random start) at eps 0.5, 1.0, 1.5.
 *
 *   npx tsx scripts/measure-models.ts [fashion-robust fashion-standard fashion-judge fashion-judge-mlp fashion-judge-knn] [--limit N] [--attack-limit 2000]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Classifier } from '../lib/classifier.js';
import { readFashionMnist } from '../lib/datasets.js';
import { slice } from '../lib/tensor.js';
import { JUDGES } from '../lib/eval/judges.js';

export const ATTACK_EPS = [0.5, 1.0, 1.5];
export const ATTACK_STEPS = 20;

/** Fraction of `images` still classified correctly after an untargeted L2 PGD at `eps` (eps 0: clean). */
export async function robustAccuracy(clf: Classifier, images: ReturnType<typeof readFashionMnist>, eps: number, batch = 500): Promise<number> {
  let correct = 0;
  const n = images.images.shape[0];
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const x = slice(images.images, s, e);
    const y = images.labels.subarray(s, e);
    const pred =
      eps === 0
        ? await clf.predict(x)
        : (await clf.pgd({ x0: x, targets: y, targeted: false, eps, step: (2.5 * eps) / ATTACK_STEPS, iterations: ATTACK_STEPS, randomStart: true, seed: s, useBest: true })).predictions;
    pred.forEach((p, i) => (correct += p === y[i] ? 1 : 0));
  }
  return correct / n;
}

async function main() {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { limit: { type: 'string' }, 'attack-limit': { type: 'string', default: '2000' } } });
  const names = positionals.length ? positionals : ['fashion-robust', 'fashion-standard', ...JUDGES];
  const test = readFashionMnist('test', { limit: values.limit ? Number(values.limit) : undefined });
  // Attacks cost 20 forward+backward passes per image and eps: on 2 cores the first 2000 test
  // images (balanced classes, +-1 % at these rates) keep the whole run near 10 minutes.
  const attackSet = readFashionMnist('test', { limit: Math.min(Number(values['attack-limit']), test.images.shape[0]) });
  for (const name of names) {
    const clf = await Classifier.load(name, { device: 'cpu', verifyChecksum: false });
    const accuracy: Record<string, number> = { clean: await robustAccuracy(clf, test, 0) };
    for (const eps of ATTACK_EPS) accuracy[`l2-${eps.toFixed(1)}`] = await robustAccuracy(clf, attackSet, eps);
    await clf.dispose();
    const cardPath = clf.path.replace(/\.pt$/, '.json');
    const card = JSON.parse(readFileSync(cardPath, 'utf8'));
    card.accuracy = accuracy;
    card.accuracyProtocol = `clean: ${test.images.shape[0]} Fashion-MNIST test images; attacks: the first ${attackSet.images.shape[0]}; untargeted L2 PGD, ${ATTACK_STEPS} steps of 2.5*eps/${ATTACK_STEPS}, random start, useBest (robust-synth engine)`;
    writeFileSync(cardPath, JSON.stringify(card, null, 2) + '\n');
    console.log(name, Object.entries(accuracy).map(([k, v]) => `${k} ${(100 * v).toFixed(2)}%`).join('  '));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
