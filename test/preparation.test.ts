// Load-time preparation (channels-last, freeze), the TorchScript executor switch and bf16
// autocast: what bench/ measures, checked for correctness here (not for speed).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, getJitExecutor, setJitExecutor } from '../lib/index.js';
import { maxAbsDiff, python, randomBatch, tempDir } from './helpers.js';

let dir: string;
const opts = (x0: ReturnType<typeof randomBatch>) => ({ x0, targets: [1, 4, 2], eps: 2, step: 0.3, iterations: 15 });
const loaded: Classifier[] = [];

async function load(options: { channelsLast?: boolean; freeze?: boolean } = {}): Promise<Classifier> {
  const clf = await Classifier.load(join(dir, 'model.pt'), { device: 'cpu', inputShape: [3, 16, 16], ...options });
  loaded.push(clf);
  return clf;
}

beforeAll(() => {
  dir = tempDir();
  python(['test/fixtures/reference_pgd.py', dir]);
});

afterAll(async () => {
  for (const c of loaded) await c.dispose();
});

describe('load-time preparation', () => {
  it('defaults on the CPU: channels-last and frozen', async () => {
    const clf = await load();
    expect(clf.preparation).toEqual({ channelsLast: true, freeze: true });
    const plain = await load({ channelsLast: false, freeze: false });
    expect(plain.preparation).toEqual({ channelsLast: false, freeze: false });
  });

  it('changes results only at the float rounding level, features() included', async () => {
    const x0 = randomBatch([3, 3, 16, 16], 11);
    const plain = await load({ channelsLast: false, freeze: false });
    for (const options of [{ channelsLast: true, freeze: false }, { channelsLast: false, freeze: true }, {}]) {
      const clf = await load(options);
      const [a, b] = [await plain.pgd(opts(x0)), await clf.pgd(opts(x0))];
      expect(maxAbsDiff(a.images.data, b.images.data)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff((await plain.features(x0)).data, (await clf.features(x0)).data)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff((await plain.logits(x0)).data, (await clf.logits(x0)).data)).toBeLessThanOrEqual(1e-5);
    }
  });

  it("a features() that detaches (fake ReLU) keeps its gradient: forward() runs frozen, features() does not", async () => {
    const script = join(dir, 'fake_relu.py');
    writeFileSync(script, [
      'import sys, torch, torch.nn as nn, torch.nn.functional as F',
      'torch.manual_seed(0)',
      'class Net(nn.Module):',
      '    def __init__(self):',
      '        super().__init__()',
      '        self.c = nn.Conv2d(3, 8, 3, padding=1); self.bn = nn.BatchNorm2d(8); self.fc = nn.Linear(8, 5)',
      '    def pre(self, x):',
      '        return self.bn(self.c(x))',
      '    def forward(self, x):',
      '        return self.fc(torch.flatten(F.adaptive_avg_pool2d(torch.relu(self.pre(x)), 1), 1))',
      '    @torch.jit.export',
      '    def features(self, x):',
      '        out = self.pre(x)',
      '        out = out + (torch.relu(out) - out).detach()',
      '        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)',
      'net = Net().eval()',
      'net.bn.running_mean.uniform_(-1, 1); net.bn.running_var.uniform_(0.5, 2)',
      'torch.jit.script(net).save(sys.argv[1])',
    ].join('\n'));
    const path = join(dir, 'fake-relu.pt');
    python([script, path]);
    const frozen = await Classifier.load(path, { device: 'cpu', inputShape: [3, 16, 16] });
    loaded.push(frozen);
    expect(frozen.preparation.freeze).toBe(true);
    const plain = await Classifier.load(path, { device: 'cpu', inputShape: [3, 16, 16], freeze: false, channelsLast: false });
    loaded.push(plain);
    const x0 = randomBatch([3, 3, 16, 16], 14);
    const feature = { x0, targets: [0, 0, 0], eps: 2, step: 0.3, iterations: 8, feature: { index: 2 } };
    const [a, b] = [await plain.pgd(feature), await frozen.pgd(feature)];
    expect(maxAbsDiff(a.images.data, x0.data)).toBeGreaterThan(0.05);
    expect(maxAbsDiff(a.images.data, b.images.data)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff((await plain.logits(x0)).data, (await frozen.logits(x0)).data)).toBeLessThanOrEqual(1e-5);
  });

  it('rejects non-boolean options', async () => {
    await expect(load({ freeze: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
    await expect(load({ channelsLast: 1 as never })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
  });
});

describe('bf16 autocast', () => {
  it('reaches the TorchScript module: results move a little, not a lot', async () => {
    const clf = await load();
    const x0 = randomBatch([3, 3, 16, 16], 12);
    const fp32 = await clf.pgd(opts(x0));
    const bf16 = await clf.pgd({ ...opts(x0), bf16: true });
    const d = maxAbsDiff(fp32.images.data, bf16.images.data);
    expect(d).toBeGreaterThan(0); // autocast applied to the scripted ops
    expect(d).toBeLessThan(0.5);
    const floor = await clf.floor(x0, [1, 4, 2], 2, true);
    expect(floor).toHaveLength(2);
  });
});

describe('TorchScript executor', () => {
  it("is 'profiling' by default; 'simple' gives the same results", async () => {
    expect(getJitExecutor()).toBe('profiling');
    const x0 = randomBatch([3, 3, 16, 16], 13);
    const a = await (await load()).pgd(opts(x0));
    setJitExecutor('simple');
    try {
      expect(getJitExecutor()).toBe('simple');
      const b = await (await load()).pgd(opts(x0));
      expect(maxAbsDiff(a.images.data, b.images.data)).toBeLessThanOrEqual(1e-5);
    } finally {
      setJitExecutor('profiling');
    }
    expect(() => setJitExecutor('fast' as never)).toThrow(/one of 'profiling', 'simple', 'legacy'/);
  });
});

describe('malloc tuning', () => {
  // Each step allocates its activations again; glibc's defaults hand freed blocks back to the
  // kernel, so every step page-faults them in anew (bench/: 10-30 % of a step at batch 64-256).
  const faultsPerStep = (env: NodeJS.ProcessEnv) => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'test/fixtures/page_faults.ts'], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env },
    });
    return (JSON.parse(out.trim().split('\n').at(-1)!) as { faultsPerStep: number }).faultsPerStep;
  };

  it('warm PGD steps reuse their memory: next to no page faults, unlike glibc defaults', () => {
    const tuned = faultsPerStep({});
    // glibc's default mmap threshold (128 KB), held there: left free, glibc raises it as big
    // blocks are freed, and by how much depends on which arena the compute thread drew (18,000 to
    // 34,000 faults a step in four runs, once 64 beside other test files), which no test can rely on.
    const untuned = faultsPerStep({ MALLOC_MMAP_THRESHOLD_: String(128 * 1024) });
    // A batch-256 step touches ~100 MB of activations: ~25,000 pages if none were kept.
    expect(untuned).toBeGreaterThan(2000);
    expect(tuned).toBeLessThan(untuned / 20);
  }, 240_000);
});
