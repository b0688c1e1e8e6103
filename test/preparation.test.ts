// Load-time preparation (channels-last, freeze), the TorchScript executor switch and bf16
// autocast: what bench/ measures, checked for correctness here (not for speed).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindingInfo, kernelCheckFile, listBinaries, loadBinding } from '../binding/index.js';
import { KERNEL_TOLERANCE, kernelSettings, runKernelCheck, type Outcome, type Trial } from '../binding/kernel-check.js';
import { findLibTorch } from '../lib/libtorch/discover.js';
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
    expect(clf.preparation).toMatchObject({ channelsLast: true, freeze: true });
    const plain = await load({ channelsLast: false, freeze: false });
    expect(plain.preparation).toMatchObject({ channelsLast: false, freeze: false });
    expect(plain.preparation.kernels).toBe(bindingInfo()!.kernels);
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

describe('kernel self-check', () => {
  const ok: Outcome = { kind: 'ok', worst: 1e-7 };
  const rules = (outcomes: Outcome[], avx512 = true) => {
    const seen: Trial[] = [];
    const r = runKernelCheck({
      libtorch: findLibTorch().chosen!, binary: 'unused', preload: [], avx512,
      runChild: (t) => (seen.push({ ...t }), outcomes[seen.length - 1] ?? ok),
    });
    return { r, seen };
  };

  it('changes a setting only for the fault it avoids, and keeps the first settings that pass', () => {
    expect(rules([ok]).r).toMatchObject({ status: 'passed', fuser: true, isaCap: null, mkldnn: true });
    // Debian 13's LibTorch 2.6 here: a hang in the fuser, then wrong AVX-512 gradients.
    const hangThenWrong = rules([
      { kind: 'hang', stage: 'model' },
      { kind: 'wrong', cases: ['3x3 16->24, standard layout: forward 1e-7, gradient 5e-1'], layouts: { standard: false, channelsLast: true } },
    ]);
    expect(hangThenWrong.r).toMatchObject({ status: 'adjusted', fuser: false, isaCap: 'AVX2', mkldnn: true });
    expect(hangThenWrong.seen).toEqual([
      { fuser: true, isaCap: null, mkldnn: true }, { fuser: false, isaCap: null, mkldnn: true }, { fuser: false, isaCap: 'AVX2', mkldnn: true },
    ]);
    expect(hangThenWrong.r.attempts[0]).toBe('fuser on, oneDNN on: did not finish (hang) at model');
    // A crash (SIGFPE in oneDNN) turns oneDNN off; wrong results without AVX-512 too.
    expect(rules([{ kind: 'crash', stage: 'case 5 standard', why: 'SIGFPE' }]).r).toMatchObject({ status: 'adjusted', fuser: true, mkldnn: false });
    expect(rules([{ kind: 'wrong', cases: ['x'], layouts: { standard: false, channelsLast: true } }], false).r).toMatchObject({ mkldnn: false, isaCap: null });
    // Nothing passes: the safest settings, said so.
    const never: Outcome = { kind: 'crash', stage: 'case 0 standard', why: 'SIGSEGV' };
    expect(rules([never, never, never, never, never]).r).toMatchObject({ status: 'failed', fuser: false, mkldnn: false });
    // The check itself cannot run (an old binary): the defaults, and nothing cached.
    expect(rules([{ kind: 'error', why: 'b.kernelCheckCases is not a function' }]).r).toMatchObject({ status: 'error', fuser: true, mkldnn: true });
  });

  it('passes on this LibTorch in a child process, and its settings are the ones this process runs with', () => {
    loadBinding();
    const info = bindingInfo()!;
    const k = info.kernels!;
    expect(['passed', 'adjusted']).toContain(k.status);
    // Each child run is listed; the last one passed, within the tolerance against float64 without oneDNN.
    expect(k.attempts.at(-1), k.attempts.join('\n')).toMatch(/: passed \(largest relative error \S+\)$/);
    expect(k.largestError).toBeLessThanOrEqual(KERNEL_TOLERANCE);
    const native = loadBinding();
    if (native.getTensorExprFuser) expect(native.getTensorExprFuser()).toBe(k.fuser);
    if (k.isaCap) expect(process.env.ONEDNN_MAX_CPU_ISA).toBe(k.isaCap);
    // Debian 12's LibTorch 1.13 has none of the faults: there the check changes nothing.
    if (/^1\.13\./.test(info.record.torchVersion)) expect(k).toMatchObject({ status: 'passed', fuser: true, isaCap: null, mkldnn: true });
  }, 240_000);

  it('is cached per LibTorch build, binary and CPU: a second process runs no child', () => {
    const cache = tempDir('rs-kcache-');
    const env = { ...process.env, ROBUST_SYNTH_CACHE: cache };
    const info = bindingInfo() ?? (loadBinding(), bindingInfo()!);
    const input = { libtorch: info.libtorch, binary: info.path, preload: info.preloaded, env };
    const first = kernelSettings(input);
    expect(first.cached).toBe(false);
    const file = JSON.parse(readFileSync(kernelCheckFile(env), 'utf8')) as Record<string, { status: string; libtorch: string }>;
    expect(Object.values(file)).toHaveLength(1);
    expect(Object.values(file)[0]!.status).toBe(first.status);
    const second = kernelSettings({ ...input, runChild: () => { throw new Error('ran a child'); } });
    expect(second).toEqual({ ...first, cached: true });
    // Another binary (a rebuild) is checked again.
    const other = listBinaries().find((b) => b.path !== info.path && b.record);
    if (other) expect(kernelSettings({ ...input, binary: other.path, runChild: () => ok }).cached).toBe(false);
  }, 240_000);
});
