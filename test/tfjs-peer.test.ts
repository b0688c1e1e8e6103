// The TensorFlow.js peer of the benchmark (bench/tfjs-peer.ts, bench/tfjs-worker.ts,
// bench/export_tfjs_weights.py): it must compute what the native library computes, so that
// `npm run bench`'s native/TF.js column compares the same work. No timings are checked here.
// The peer runs in child processes, as in the bench (the wasm runtime installs process-wide
// handlers that do not belong in the test runner).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TfjsJob, TfjsResult } from '../bench/tfjs-worker.js';
import { PYTHON, python, randomBatch, tempDir } from './helpers.js';

const MODEL = 'models/fashion-robust.pt';
let dir: string;
let x0File: string;
let targetsFile: string;

beforeAll(() => {
  dir = tempDir('rs-tfjs-');
  x0File = join(dir, 'x0.f32');
  targetsFile = join(dir, 't.i32');
  writeFileSync(x0File, Buffer.from(randomBatch([4, 1, 28, 28], 11).data.buffer));
  writeFileSync(targetsFile, Buffer.from(new Int32Array([0, 3, 7, 9]).buffer));
});

function runPeer(job: Partial<TfjsJob> & Pick<TfjsJob, 'model' | 'manifest'>): TfjsResult {
  const full: TfjsJob = {
    inputShape: [1, 28, 28], batch: 4, x0File, targetsFile, eps: 8, step: 0.5, steps: 5, runs: 1, warmup: 1, compareNative: true, ...job,
  };
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/tfjs-worker.ts', JSON.stringify(full)], {
    encoding: 'utf8', timeout: 170_000, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as TfjsResult;
}

describe('TF.js peer', () => {
  it('export_tfjs_weights.py walks the TorchScript graph and checks its op list against the module', () => {
    const manifest = join(dir, 'robust.tfjs.json');
    const r = JSON.parse(python(['bench/export_tfjs_weights.py', '--model', MODEL, '--shape', '1,28,28', '--out', manifest]).trim());
    expect(r.exportDiff).toBeLessThanOrEqual(1e-4);
    expect(r.opCounts.conv2d).toBeGreaterThan(0);
    const m = JSON.parse(readFileSync(manifest, 'utf8'));
    expect(m.format).toBe('robust-synth-tfjs/1');
    expect(m.numClasses).toBe(10);
    // Conv weights are stored HWIO: [kh, kw, in, out].
    const conv = m.ops.find((o: { op: string }) => o.op === 'conv2d');
    const w = m.tensors.find((t: { name: string }) => t.name === conv.w);
    expect(w.shape[2]).toBe(1); // the first convolution takes the 1-channel image
  }, 120_000);

  it('matches the native library: logits to 1e-4, the same predictions and (nearly) the same images after a few PGD steps', () => {
    const r = runPeer({ model: MODEL, manifest: join(dir, 'robust.tfjs.json') });
    expect(r.backend.backend).toBe('wasm');
    expect(r.stepMs.stock).toHaveLength(1);
    expect(r.stepMs['forward-conv']).toHaveLength(1);
    const c = r.compare!;
    expect(c.logitsMaxDiff).toBeLessThanOrEqual(1e-4);
    // Both are fp32 with different kernels: a ReLU whose input sits at 0 can flip and move a
    // trajectory by ~1e-3 within a few steps; a different loop moves it by ~0.1 or more.
    expect(c.lossesMaxDiff).toBeLessThanOrEqual(1e-3);
    expect(c.predictionsAgree).toBe(1);
    expect(c.tfjsPredictions).toEqual(c.nativePredictions);
    expect(c.imagesMaxDiff).toBeLessThanOrEqual(1e-3);
    // The convolutions' input gradient written as forward convolutions computes the same loop.
    expect(c.convGradsMaxDiff).toBeLessThanOrEqual(1e-5);
  }, 180_000);

  it('exports a plain convolution stack too (max pooling, reshape, leaky ReLU, normalization inside, BatchNorm), and refuses what it cannot run', () => {
    writeFileSync(join(dir, 'archs.py'), `
import sys, torch, torch.nn as nn, torch.nn.functional as F
class Plain(nn.Module):
    """A plain convolution stack like models/train_fashion.py's ConvNet3 (28 -> 14 -> 7 -> 3: max
    pooling and a strided convolution), with BatchNorm and a normalization inside."""
    def __init__(s):
        super().__init__()
        s.c1 = nn.Conv2d(1, 8, 3, padding=1); s.b1 = nn.BatchNorm2d(8)
        s.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        s.c3 = nn.Conv2d(16, 16, 3, stride=1, padding=1)
        s.fc = nn.Linear(16 * 3 * 3, 10)
        s.register_buffer('mean', torch.tensor([0.3]).view(1, 1, 1, 1))
        s.register_buffer('std', torch.tensor([0.35]).view(1, 1, 1, 1))
    def forward(s, x):
        x = (x - s.mean) / s.std
        x = F.max_pool2d(F.relu(s.b1(s.c1(x))), 2)
        x = F.relu(s.c2(x))
        x = F.max_pool2d(F.leaky_relu(s.c3(x), 0.1), 2)
        return s.fc(x.reshape(x.size(0), -1))
class Gelu(nn.Module):
    def __init__(s):
        super().__init__(); s.c = nn.Conv2d(1, 4, 3); s.fc = nn.Linear(4, 10)
    def forward(s, x):
        return s.fc(F.gelu(s.c(x)).mean([2, 3]))
torch.manual_seed(0)
m = Plain()
for b in (m.b1,):
    b.running_mean.uniform_(-0.5, 0.5); b.running_var.uniform_(0.5, 2.0)
torch.jit.script(m.eval()).save(sys.argv[1] + '/plain.pt')
torch.jit.script(Gelu().eval()).save(sys.argv[1] + '/gelu.pt')
`);
    python([join(dir, 'archs.py'), dir]);
    const plain = runPeer({ model: join(dir, 'plain.pt'), manifest: join(dir, 'plain.tfjs.json') });
    expect(plain.exportOps).toMatchObject({ conv2d: 3, maxPool: 2, leakyRelu: 1, flatten: 1, linear: 1, sub: 1, div: 1 });
    expect(plain.compare!.logitsMaxDiff).toBeLessThanOrEqual(1e-4);
    expect(plain.compare!.predictionsAgree).toBe(1);
    expect(plain.compare!.convGradsMaxDiff).toBeLessThanOrEqual(1e-5);

    const bad = spawnSync(PYTHON, ['bench/export_tfjs_weights.py', '--model', join(dir, 'gelu.pt'), '--out', join(dir, 'gelu.tfjs.json')], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/cannot export .*gelu\.pt for TF\.js: unsupported op aten::gelu/);
  }, 180_000);
});
