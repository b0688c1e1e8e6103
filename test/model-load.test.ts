// Models without a card: the input shape is inferred where the model allows it, else one line
// says what to pass. And the seed error names both the library option and the CLI flag.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, generate } from '../lib/index.js';
import { modelsDir } from '../lib/models.js';
import { maxAbsDiff, python, randomBatch, tempDir } from './helpers.js';

let dir: string;
const open: Classifier[] = [];
async function load(path: string, options: Parameters<typeof Classifier.load>[1] = {}): Promise<Classifier> {
  const c = await Classifier.load(path, { device: 'cpu', ...options });
  open.push(c);
  return c;
}

beforeAll(() => {
  dir = tempDir('rs-cardless-');
  copyFileSync(join(modelsDir(), 'fashion-robust.pt'), join(dir, 'my-model.pt'));
  // A CIFAR-sized classifier whose linear head takes flattened 3x32x32 maps: only one size works.
  python(['-c', [
    'import sys, torch, torch.nn as nn',
    'torch.manual_seed(0)',
    'net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 32, 10)).eval()',
    'torch.jit.script(net).save(sys.argv[1])',
  ].join('\n'), join(dir, 'cifar-head.pt')]);
  python(['test/fixtures/bad_models.py', join(dir, 'bad')]);
  // A head that flattens with view(): it needs NCHW-contiguous maps, so channels-last breaks it.
  writeFileSync(join(dir, 'view_head.py'), [
    'import sys, torch, torch.nn as nn',
    'class ViewNet(nn.Module):',
    '    def __init__(self):',
    '        super().__init__()',
    '        self.conv = nn.Conv2d(3, 4, 3, padding=1)',
    '        self.fc = nn.Linear(4 * 32 * 32, 10)',
    '    def forward(self, x):',
    '        h = torch.relu(self.conv(x))',
    '        return self.fc(h.view(h.size(0), -1))',
    'torch.manual_seed(0)',
    'net = ViewNet().eval()',
    'torch.jit.script(net).save(sys.argv[1])',
    'x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))',
    'open(sys.argv[2], "wb").write(x.numpy().tobytes())',
    'open(sys.argv[3], "wb").write(net(x).detach().numpy().tobytes())',
  ].join('\n'));
  // (TorchScript reads the class's source, so it has to live in a file.)
  python([join(dir, 'view_head.py'), join(dir, 'view-head.pt'), join(dir, 'view-x.f32'), join(dir, 'view-logits.f32')]);
});
afterAll(async () => {
  for (const c of open) await c.dispose();
});

describe('a TorchScript file without a model card', () => {
  it('1x28x28: the shape is inferred, and the logits are those of the carded model', async () => {
    const bare = await load(join(dir, 'my-model.pt'));
    expect(bare.inputShape).toEqual([1, 28, 28]);
    expect(bare.card).toBeUndefined();
    const carded = await load('fashion-robust');
    const x = randomBatch([3, 1, 28, 28], 5);
    expect(Array.from((await bare.logits(x)).data)).toEqual(Array.from((await carded.logits(x)).data));
  });

  it('3x32x32 with a linear head: inferred from the first convolution and the probe', async () => {
    const bare = await load(join(dir, 'cifar-head.pt'));
    expect(bare.inputShape).toEqual([3, 32, 32]);
    const r = await bare.pgd({ x0: randomBatch([1, 3, 32, 32]), targets: [1], eps: 1, step: 0.5, iterations: 2 });
    expect(r.images.shape).toEqual([1, 3, 32, 32]);
  });

  it('a view() head loads without channels-last, unless channels-last was asked for', async () => {
    const f32 = (name: string) => {
      const b = readFileSync(join(dir, name));
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    for (const inputShape of [undefined, [3, 32, 32] as [number, number, number]]) {
      const clf = await load(join(dir, 'view-head.pt'), { inputShape });
      expect(clf.inputShape).toEqual([3, 32, 32]);
      expect(clf.preparation.channelsLast).toBe(false);
      const logits = await clf.logits({ data: f32('view-x.f32'), shape: [2, 3, 32, 32] });
      expect(maxAbsDiff(logits.data, f32('view-logits.f32'))).toBeLessThan(1e-5);
    }
    await expect(load(join(dir, 'view-head.pt'), { inputShape: [3, 32, 32], channelsLast: true })).rejects.toMatchObject({
      code: 'ERR_MODEL_OUTPUT',
      message: expect.stringMatching(/view/),
    });
    // Other models keep the default.
    expect((await load(join(dir, 'cifar-head.pt'))).preparation.channelsLast).toBe(true);
  });

  it('an explicit inputShape still wins', async () => {
    const bare = await load(join(dir, 'my-model.pt'), { inputShape: [1, 28, 28] });
    expect(bare.inputShape).toEqual([1, 28, 28]);
  });

  it('a model that takes none of the common shapes fails with one ERR_MODEL_LOAD line naming the fixes', async () => {
    const err = await load(join(dir, 'bad', 'raises.pt')).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err).toBeDefined();
    expect(err!.code).toBe('ERR_MODEL_LOAD');
    expect(err!.message.split('\n')).toHaveLength(1);
    expect(err!.message).toContain('has no model card');
    expect(err!.message).toContain('[3, 224, 224]');
    expect(err!.message).toContain('pass inputShape: [c, h, w]');
    expect(err!.message).toContain('--input-shape C,H,W');
    expect(err!.message).toContain('model card');
  });

  it('generation from fitted seeds names the library option and the CLI flag when there are none', async () => {
    const bare = await load(join(dir, 'my-model.pt'), { classes: 'abcdefghij'.split('') });
    await expect(generate({ classifier: bare, classes: ['a'], seed: 'mvn' })).rejects.toMatchObject({
      code: 'ERR_BAD_INPUT',
      message: expect.stringMatching(/`seeds: FILE`.*`--seeds FILE`/),
    });
    // Uniform seeds need no statistics.
    const r = await generate({ classifier: bare, classes: ['a'], seed: 'uniform', iterations: 2 });
    expect(r.images.shape).toEqual([1, 1, 28, 28]);
  });
});
