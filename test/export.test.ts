// models/export_resnet50.py on checkpoints in every layout it must read (random weights,
// written by test/fixtures/make_checkpoints.py): the exported TorchScript, loaded in Node,
// computes what torchvision computes on (x - mean) / std, and its model card says so.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, type ImageBatch, type Shape4 } from '../lib/index.js';
import { maxAbsDiff, PYTHON, python, tempDir } from './helpers.js';

interface Reference {
  pt: string;
  arch: string;
  checkpoint: string;
  checkpointSha256: string;
  mean: number[];
  std: number[];
  robust: boolean;
  eps: number;
  constraint: string | null;
  fakeRelu: boolean;
  featureSize: number;
  logits: number[];
  features: number[];
  logitsNoNorm: number[];
  logitsTwiceNorm: number[];
  python: { logitsDiff: number; featuresDiff: number; preNormalizedVsTwiceDiff: number; preNormalizedVsOnceDiff: number; logitScale: number };
}

interface Manifest {
  input: { path: string; shape: Shape4 };
  torchVersion: string;
  models: Record<string, Reference>;
  fakeRelu: Record<string, number>;
  dillPlainPickleError: string;
}

const EXPORT = 'models/export_resnet50.py';
// shared/REFERENCE.md, "The study's classes (Imagenette) and their ImageNet indices".
const IMAGENETTE = [
  { name: 'tench', index: 0, wnid: 'n01440764' },
  { name: 'English springer', index: 217, wnid: 'n02102040' },
  { name: 'cassette player', index: 482, wnid: 'n02979186' },
  { name: 'chain saw', index: 491, wnid: 'n03000684' },
  { name: 'church', index: 497, wnid: 'n03028079' },
  { name: 'French horn', index: 566, wnid: 'n03394916' },
  { name: 'garbage truck', index: 569, wnid: 'n03417042' },
  { name: 'gas pump', index: 571, wnid: 'n03425413' },
  { name: 'golf ball', index: 574, wnid: 'n03445777' },
  { name: 'parachute', index: 701, wnid: 'n03888605' },
];
const LAYOUTS = [
  'madry-r50-realistic', // resnet50; key 'model'; legacy format; dill; eps from the file name
  'madry-model',
  'madry-model-fake-relu',
  'madry-state-dict',
  'madry-attacker-only', // only module.attacker.*, with its own (non-default) normalizer
  'madry-legacy',
  'madry-dill',
  'madry-custom-norm',
  'madry-bare',
  'torchvision-r18',
  'torchvision-r18-old',
];

let dir: string;
let manifest: Manifest;
let x: ImageBatch;
const measured: Record<string, { logits: number; features: number }> = {};

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

beforeAll(() => {
  dir = tempDir('rs-export-');
  python(['test/fixtures/make_checkpoints.py', dir]);
  manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const buf = readFileSync(manifest.input.path);
  x = { data: new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)), shape: manifest.input.shape };
});

afterAll(() => {
  if (Object.keys(measured).length) console.log('max |logits - reference|, |features - reference| in Node:', measured);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('every checkpoint layout exports to the same function as torchvision', () => {
  it('the fixture covers every layout', () => {
    expect(Object.keys(manifest.models).sort()).toEqual([...LAYOUTS].sort());
    // The dill layout is meaningful only if plain pickle cannot read it.
    expect(manifest.dillPlainPickleError).toMatch(/__main__/);
  });

  it.each(LAYOUTS)('%s: logits and features in Node equal the Python reference', async (name) => {
    const ref = manifest.models[name]!;
    // In Python, the exported module already equals torchvision on (x - mean) / std.
    expect(ref.python.logitsDiff).toBeLessThanOrEqual(1e-4);
    expect(ref.python.featuresDiff).toBeLessThanOrEqual(1e-4);
    const clf = await Classifier.load(ref.pt, { device: 'cpu' }); // also checks the card's sha256
    try {
      expect(clf.numClasses).toBe(1000);
      expect(clf.inputShape).toEqual([3, 224, 224]);
      const logits = await clf.logits(x);
      expect(logits.shape).toEqual([2, 1000]);
      const dLogits = maxAbsDiff(logits.data, ref.logits);
      expect(dLogits).toBeLessThanOrEqual(1e-4);
      // Normalized inside exactly once: neither zero times nor twice.
      expect(maxAbsDiff(logits.data, ref.logitsNoNorm)).toBeGreaterThan(0.1);
      expect(maxAbsDiff(logits.data, ref.logitsTwiceNorm)).toBeGreaterThan(0.1);
      const features = await clf.features(x);
      expect(features.shape).toEqual([2, ref.featureSize]);
      expect(ref.featureSize).toBe(ref.arch === 'resnet50' ? 2048 : 512);
      // Features are larger than the logits here (up to ~30); compare relative to their scale
      // (the r50's differ from Python's by ~7e-5 at a scale of ~8, float32 summation order).
      const dFeatures = maxAbsDiff(features.data, ref.features);
      expect(dFeatures).toBeLessThanOrEqual(1e-4 * Math.max(1, ...ref.features.map(Math.abs)));
      measured[name] = { logits: dLogits, features: dFeatures };

      const card = clf.card!;
      // The module's float32 buffers hold the mean/std; the card, the checkpoint's values (float32)
      // or the nominal ImageNet constants.
      expect(card.normalization!.inside).toBe(true);
      expect(maxAbsDiff(card.normalization!.mean, ref.mean)).toBeLessThanOrEqual(1e-7);
      expect(maxAbsDiff(card.normalization!.std, ref.std)).toBeLessThanOrEqual(1e-7);
      expect(card.sourceSha256).toBe(ref.checkpointSha256);
      expect(card.source).toBe(ref.checkpoint);
      expect(card.robust).toBe(ref.robust);
      expect(card.eps).toBe(ref.eps);
      expect(card.constraint ?? null).toBe(ref.constraint);
      expect(card.architecture).toBe(ref.arch);
      expect(card.representation).toMatchObject({ method: 'features', size: ref.featureSize, fakeRelu: ref.fakeRelu });
      expect(card.sha256).toBe(sha256(ref.pt));
    } finally {
      await clf.dispose();
    }
    if (!name.startsWith('madry-model')) rmSync(ref.pt); // the fake-ReLU tests below use madry-model*
  });
});

describe('normalization happens inside the model, exactly once', () => {
  it('feeding it pre-normalized pixels normalizes twice (the double-normalization trap)', () => {
    for (const [name, ref] of Object.entries(manifest.models)) {
      // exported((x - mean) / std) is torchvision on ((x - mean) / std - mean) / std ...
      expect(ref.python.preNormalizedVsTwiceDiff, name).toBeLessThanOrEqual(1e-4);
      // ... which is far from the right answer.
      expect(ref.python.preNormalizedVsOnceDiff, name).toBeGreaterThan(1);
    }
  });

  it('non-default normalizer mean/std in the checkpoint end up inside the module', () => {
    for (const name of ['madry-custom-norm', 'madry-attacker-only']) {
      const ref = manifest.models[name]!;
      expect(ref.mean).not.toEqual(manifest.models['madry-model']!.mean);
      // The Node logits matched torchvision applied with THESE mean/std (checked above).
      expect(measured[name]?.logits).toBeLessThanOrEqual(1e-4);
    }
  });
});

describe('fake ReLU (--fake-relu)', () => {
  it('same forward values; gradient of the robustness FakeReLU, not of a ReLU', () => {
    const f = manifest.fakeRelu;
    expect(f.forwardDiff).toBe(0);
    expect(f.logitsDiff).toBe(0);
    expect(f.gradFakeVsReferenceFake).toBeLessThanOrEqual(1e-4);
    expect(f.gradPlainVsReferencePlain).toBeLessThanOrEqual(1e-4);
    expect(f.gradFakeVsPlain).toBeGreaterThan(1e-2);
  });

  it('a feature PGD step in Node follows the fake gradient', async () => {
    const plain = await Classifier.load(manifest.models['madry-model']!.pt, { device: 'cpu' });
    const fake = await Classifier.load(manifest.models['madry-model-fake-relu']!.pt, { device: 'cpu' });
    try {
      const x0: ImageBatch = { data: x.data.subarray(0, 3 * 224 * 224), shape: [1, 3, 224, 224] };
      expect(maxAbsDiff((await fake.features(x0)).data, (await plain.features(x0)).data)).toBe(0);
      const opts = { x0, targets: [0], eps: 10, step: 1, iterations: 1, useBest: false, feature: { index: 7 } };
      const a = await plain.pgd(opts);
      const b = await fake.pgd(opts);
      expect(maxAbsDiff(a.images.data, b.images.data)).toBeGreaterThan(1e-4);
    } finally {
      await plain.dispose();
      await fake.dispose();
    }
  });
});

describe('the model card', () => {
  it('names the 1000 ImageNet classes, the Imagenette subset, versions and checksums', () => {
    const card = JSON.parse(readFileSync(join(dir, 'madry-r50-realistic.json'), 'utf8'));
    expect(card.name).toBe('madry-r50-realistic');
    expect(card.inputShape).toEqual([3, 224, 224]);
    expect(card.channels).toBe(3);
    expect(card.classes).toHaveLength(1000);
    expect(card.classes[0]).toBe('tench');
    const nette = card.subsets.imagenette as Array<{ name: string; index: number; wnid: string }>;
    expect(nette.map((c) => c.index)).toEqual([0, 217, 482, 491, 497, 566, 569, 571, 574, 701]);
    expect(nette).toEqual(IMAGENETTE);
    for (const c of nette) expect(card.classes[c.index]).toBe(c.name);
    expect(card.torchVersion).toBe(manifest.torchVersion);
    expect(card.sourceSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(card.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The study's file: robust, L2, eps 3 read from the name imagenet_l2_3_0.pt.
    expect(card).toMatchObject({ robust: true, eps: 3, constraint: '2', role: 'robust', weights: 'madrylab-robustness' });
    expect(card.sourceLayout).toEqual({ entry: 'model', weights: 'module.model.*', normalization: 'module.normalizer.new_mean/new_std' });
    const std = JSON.parse(readFileSync(join(dir, 'torchvision-r18.json'), 'utf8'));
    expect(std).toMatchObject({ robust: false, eps: 0, constraint: null, role: 'standard', weights: 'torchvision' });
  });

  it('records where in the checkpoint the weights and the normalization came from', () => {
    const layout = (name: string) => JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')).sourceLayout;
    expect(layout('madry-state-dict')).toMatchObject({ entry: 'state_dict', weights: 'module.model.*' });
    expect(layout('madry-attacker-only')).toEqual({
      entry: 'model', weights: 'module.attacker.model.*', normalization: 'module.attacker.normalizer.new_mean/new_std',
    });
    expect(layout('madry-bare')).toMatchObject({ entry: null, weights: 'model.*', normalization: 'normalizer.new_mean/new_std' });
    const custom = JSON.parse(readFileSync(join(dir, 'madry-custom-norm.json'), 'utf8'));
    expect(custom).toMatchObject({ robust: true, eps: 0.5, constraint: 'inf' });
  });
});

function runExport(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(PYTHON, [EXPORT, ...args], { timeout: 120_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stderr });
    });
  });
}

describe('broken checkpoints: exit 2, one line naming the problem, no traceback', () => {
  const ck = (f: string) => join(dir, 'checkpoints', f);
  const cases: Array<[string, () => string[], RegExp[]]> = [
    ['missing keys', () => ['--madry', ck('broken-missing.pt'), '--eps', '3', '--arch', 'resnet18'],
      [/missing keys: module\.model\.fc\.bias, module\.model\.layer4\.1\.bn2\.weight$/]],
    ['unexpected keys', () => ['--madry', ck('broken-unexpected.pt'), '--eps', '3', '--arch', 'resnet18'],
      [/unexpected keys: module\.model\.head2\.weight$/]],
    ['keys outside the robustness layout', () => ['--madry', ck('broken-outside.pt'), '--eps', '3', '--arch', 'resnet18'],
      [/unexpected keys outside module\.model\.\*, .*: module\.extra_head\.weight$/]],
    ['wrong shapes', () => ['--madry', ck('broken-shape.pt'), '--eps', '3', '--arch', 'resnet18'],
      [/shape mismatch for module\.model\.fc\.weight \(checkpoint \(10, 512\), resnet18 \(1000, 512\)\), module\.model\.fc\.bias/]],
    ['not a checkpoint', () => ['--madry', ck('not-a-checkpoint.pt'), '--eps', '3'], [/cannot read .*not-a-checkpoint\.pt as a torch checkpoint/]],
    ['no model entry', () => ['--madry', ck('no-model-entry.pt'), '--eps', '3'], [/no 'model' or 'state_dict' entry .*epoch, optimizer/]],
    ['a TorchScript file', () => ['--madry', ck('torchscript.pt'), '--eps', '3'], [/is a TorchScript module/]],
    ['no such file', () => ['--torchvision', ck('nope.pth')], [/nope\.pth: no such file/]],
    ['wrong architecture', () => ['--madry', ck('madry-model.pt'), '--eps', '3', '--arch', 'resnet50'],
      [/do not fit a torchvision resnet50; missing keys: module\.model\.layer1\.0\.bn3\.bias, .*\(\+\d+ more\); the weights look like a resnet18: pass --arch resnet18$/]],
    ['a Madry checkpoint given as torchvision', () => ['--torchvision', ck('madry-model.pt'), '--arch', 'resnet18'], [/export it with --madry/]],
    ['radius unknown', () => ['--madry', ck('madry-model.pt'), '--arch', 'resnet18'], [/pass --eps/]],
  ];

  it('all of them', async () => {
    // Run in parallel (each is a Python start-up plus a torch.load), then check one by one.
    const results = await Promise.all(cases.map(([, args], i) => runExport([...args(), '--out', join(dir, `broken-${i}.pt`)])));
    cases.forEach(([name, , patterns], i) => {
      const { code, stderr } = results[i]!;
      const line = stderr.trim();
      expect(code, `${name}: ${stderr}`).toBe(2);
      expect(line, name).not.toContain('\n');
      expect(line, name).not.toMatch(/Traceback/);
      expect(line, name).toMatch(/^export_resnet50: /);
      for (const p of patterns) expect(line, name).toMatch(p);
      expect(existsSync(join(dir, `broken-${i}.pt`)), name).toBe(false);
    });
  });
});
