// models/train_fashion.py: the script that trains the embedded models. Its defaults are the shipped
// fashion-robust's settings, a training run is seeded (bit for bit on one thread), and the robust
// model's features() has a fake ReLU (value of a ReLU, gradient of the identity) while its logits
// keep the real one. models/make_knn_judge.py rebuilds the kNN judge exactly.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Classifier } from '../lib/index.js';
import { sha256File } from '../lib/models.js';
import { representationShape, representationSize, spreadUnits } from '../lib/tasks/visualizeFeature.js';
import { randomBatch, python, tempDir } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const card = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('models/train_fashion.py', () => {
  it("defaults are the shipped fashion-robust's settings", () => {
    const defaults = JSON.parse(python(['-c', `
import json, sys
sys.path.insert(0, 'models')
import train_fashion as tf
a = tf.build_parser().parse_args([])
make, arch_name, rep_size, width, rep_info = tf.ROBUST_ARCHS[a.robust_arch]
print(json.dumps({'architecture': arch_name(width), 'eps': a.eps, 'epochs': a.robust_epochs,
                  'pgdSteps': a.pgd_steps, 'repSize': rep_size(width), 'repInfo': rep_info(width)}))
`]));
    const shipped = card(join(ROOT, 'models', 'fashion-robust.json'));
    expect(shipped.architecture).toBe(defaults.architecture);
    expect(shipped.eps).toBe(defaults.eps);
    expect(shipped.training).toMatchObject({ epochs: defaults.epochs, pgdSteps: defaults.pgdSteps, seed: 2, threads: 1 });
    expect(shipped.representation).toEqual({ method: 'features', size: defaults.repSize, ...defaults.repInfo });
  });

  it('trains reproducibly, and exports features() with a fake ReLU and forward() with the real one', async () => {
    const dirs = [tempDir('rs-train-a-'), tempDir('rs-train-b-')];
    for (const out of dirs) {
      python(['models/train_fashion.py', '--only', 'robust', '--train-limit', '256', '--robust-epochs', '1', '--pgd-steps', '2', '--threads', '1', '--out', out]);
    }
    const facts = JSON.parse(python(['-c', `
import json, torch
a, b = (torch.jit.load(d + '/fashion-robust.pt') for d in ${JSON.stringify(dirs)})
sa, sb = a.state_dict(), b.state_dict()
same = sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
torch.manual_seed(0)
x = torch.rand(8, 1, 28, 28, requires_grad=True)
f = a.features(x)
net = a.net
body = torch.flatten(net.body(x), 1)
# A unit that is zero on every image still passes a gradient to the input (the fake ReLU) ...
zero = int(((f == 0).all(0)).nonzero()[0])
g, = torch.autograd.grad(f[:, zero].sum(), x)
# ... while the logits' ReLU is the real one: the same unit's path through forward() has none.
x2 = x.detach().clone().requires_grad_(True)
g2, = torch.autograd.grad(torch.flatten(net.body(x2), 1)[:, zero].sum(), x2)
print(json.dumps({'same': same, 'featuresEqualBody': torch.equal(f, body), 'zeroUnit': zero,
                  'fakeGrad': g.abs().sum().item(), 'realGrad': g2.abs().sum().item(),
                  'logits': torch.equal(a(x), net.fc(body))}))
`]));
    expect(facts.same).toBe(true);
    expect(facts.featuresEqualBody).toBe(true);
    expect(facts.fakeGrad).toBeGreaterThan(0);
    expect(facts.realGrad).toBe(0);
    expect(facts.logits).toBe(true);

    // The card tells the layout, and the library reads it.
    const c = card(join(dirs[0]!, 'fashion-robust.json'));
    expect(c.representation).toMatchObject({ size: 1152, shape: [128, 3, 3], fakeRelu: true });
    const clf = await Classifier.load(join(dirs[0]!, 'fashion-robust.pt'), { device: 'cpu' });
    try {
      expect(representationShape(clf)).toEqual([128, 3, 3]);
      expect(representationSize(clf)).toBe(1152);
      expect((await clf.features(randomBatch([2, 1, 28, 28]))).shape).toEqual([2, 1152]);
      expect(spreadUnits(clf, 2, 1152)).toEqual([4, 64 * 9 + 4]);
    } finally {
      await clf.dispose();
    }
  });
});

describe('models/make_knn_judge.py', () => {
  it('rebuilds the shipped fashion-judge-knn to its accuracy, and its card records what it is', async () => {
    const out = tempDir('rs-knn-');
    python(['models/make_knn_judge.py', '--out', out, '--threads', '1']);
    const shipped = card(join(ROOT, 'models', 'fashion-judge-knn.json'));
    const built = card(join(out, 'fashion-judge-knn.json'));
    // Not byte-compared: one CI run under a 2-thread co-runner built a file whose hash differed
    // (the BLAS covariance's summation order, not traced); its accuracy must match.
    expect(await sha256File(join(ROOT, 'models', 'fashion-judge-knn.pt'))).toBe(shipped.sha256);
    expect(shipped).toMatchObject({ role: 'judge', robust: false, representation: { method: 'features', size: 32 } });
    expect(shipped.architecture).toMatch(/no neural network/);
    expect(Math.abs(built.cleanAccuracyPython - shipped.cleanAccuracyPython)).toBeLessThanOrEqual(0.002);
  }, 900_000); // 10,000 test images against 30,000 neighbours: minutes on a loaded 2-core machine
});
