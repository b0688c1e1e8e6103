// models/export_resnet50.py on checkpoints in every layout it must read (random weights,
// written by test/fixtures/make_checkpoints.py, the MadryLab ones as the state_dict() of a module
// tree with the robustness library's attribute names, saved as its train.py saves them): the
// exported TorchScript, loaded in Node, computes what the eager model computes (the AttackerModel,
// or torchvision on (x - mean) / std), and its model card says so.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
  /** The checkpoint dict's entries (null: a bare state dict). */
  checkpointEntries: string[] | null;
  /** Module paths of the state dict's keys ('module.model', 'module.attacker.normalize', ...); null for torchvision. */
  keyGroups: string[] | null;
  normalizerShapes: Record<string, number[]>;
  /** What `logits` were computed with: the AttackerModel tree the checkpoint came from, or torchvision. */
  eager: 'AttackerModel' | 'torchvision';
  logits: number[];
  features: number[];
  logitsNoNorm: number[];
  logitsTwiceNorm: number[];
  python: {
    logitsDiff: number; eagerVsTorchvisionDiff: number; featuresDiff: number;
    preNormalizedVsTwiceDiff: number; preNormalizedVsOnceDiff: number; logitScale: number;
  };
}

interface Manifest {
  input: { path: string; shape: Shape4 };
  torchVersion: string;
  models: Record<string, Reference>;
  fakeRelu: Record<string, number>;
  dillPlainPickleError: string;
}

// By absolute path, run from another directory (the test's temporary one): as shipped in the
// npm package, the script must find its helpers (models/_common.py) by itself.
const EXPORT = resolve('models/export_resnet50.py');
// The study's classes (Imagenette) and their ImageNet indices.
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
// The robustness library's AttackerModel as train.py saves it (a DataParallel): its `normalizer`
// and `model`, and its Attacker's `model` (the same net) and `normalize` (not `normalizer`).
const ATTACKER_MODEL = ['module.attacker.model', 'module.attacker.normalize', 'module.model', 'module.normalizer'];
const NORMALIZED_BY = 'module.normalizer.new_mean/new_std';
// Each layout, the key groups of its state dict, and where the card must say the weights and the
// normalization came from.
const LAYOUTS: Record<string, { groups: string[] | null; layout: Record<string, unknown> | null }> = {
  // resnet50; the first release's train.py dict; legacy format; dill with an entry only dill reads; eps from the name
  'madry-r50-realistic': { groups: ATTACKER_MODEL, layout: { entry: 'model', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  'madry-model': { groups: ATTACKER_MODEL, layout: { entry: 'model', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  'madry-model-fake-relu': { groups: ATTACKER_MODEL, layout: { entry: 'model', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  'madry-state-dict': { groups: ATTACKER_MODEL, layout: { entry: 'state_dict', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  // only module.attacker.*, with a non-default normalizer (no library version writes this: the exporter's fallback)
  'madry-attacker-only': {
    groups: ['module.attacker.model', 'module.attacker.normalize'],
    layout: { entry: 'model', weights: 'module.attacker.model.*', normalization: 'module.attacker.normalize.new_mean/new_std' },
  },
  'madry-legacy': { groups: ATTACKER_MODEL, layout: { entry: 'model', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  'madry-dill': { groups: ATTACKER_MODEL, layout: { entry: 'model', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  'madry-custom-norm': { groups: ATTACKER_MODEL, layout: { entry: 'model', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  'madry-linf': { groups: ATTACKER_MODEL, layout: { entry: 'model', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  // an AttackerModel not wrapped in a DataParallel: the train.py dict, and a bare state dict
  'madry-no-prefix': {
    groups: ['attacker.model', 'attacker.normalize', 'model', 'normalizer'],
    layout: { entry: 'model', weights: 'model.*', normalization: 'normalizer.new_mean/new_std' },
  },
  'madry-bare': {
    groups: ['attacker.model', 'attacker.normalize', 'model', 'normalizer'],
    layout: { entry: null, weights: 'model.*', normalization: 'normalizer.new_mean/new_std' },
  },
  // the AttackerModel of the library's development branches that have no `attacker`
  'madry-no-attacker': { groups: ['module.model', 'module.normalizer'], layout: { entry: 'model', weights: 'module.model.*', normalization: NORMALIZED_BY } },
  'torchvision-r18': { groups: null, layout: null },
  'torchvision-r18-old': { groups: null, layout: null },
};
const NAMES = Object.keys(LAYOUTS);

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
    expect(Object.keys(manifest.models).sort()).toEqual([...NAMES].sort());
    // The dill layout is meaningful only if plain pickle cannot read it without dill.
    expect(manifest.dillPlainPickleError).toMatch(/__main__|dill/);
  });

  it('the MadryLab checkpoints have the real library\'s keys and entries', () => {
    for (const [name, { groups }] of Object.entries(LAYOUTS)) {
      const ref = manifest.models[name]!;
      expect(ref.keyGroups, name).toEqual(groups);
      if (groups === null) continue;
      expect(ref.eager, name).toBe('AttackerModel');
      // InputNormalize's buffers: the data set's mean/std as [3, 1, 1].
      const norms = Object.keys(ref.normalizerShapes);
      expect(norms.length, name).toBe(2 * groups.filter((g) => /normaliz/.test(g)).length);
      for (const k of norms) expect(ref.normalizerShapes[k], `${name} ${k}`).toEqual([3, 1, 1]);
    }
    // The train.py dicts: today's, and the first release's (no 'amp'), and older files' 'state_dict'.
    expect(manifest.models['madry-model']!.checkpointEntries).toEqual(['adv_prec1', 'amp', 'epoch', 'model', 'optimizer', 'schedule']);
    expect(manifest.models['madry-r50-realistic']!.checkpointEntries).toEqual(['adv_prec1', 'epoch', 'model', 'optimizer', 'schedule']);
    expect(manifest.models['madry-state-dict']!.checkpointEntries).toContain('state_dict');
    expect(manifest.models['madry-bare']!.checkpointEntries).toBeNull();
  });

  it.each(NAMES)('%s: logits and features in Node equal the Python reference', async (name) => {
    const ref = manifest.models[name]!;
    // In Python, the exported module already equals the eager model (the AttackerModel the
    // checkpoint was saved from, or torchvision on (x - mean) / std).
    expect(ref.python.logitsDiff).toBeLessThanOrEqual(1e-4);
    expect(ref.python.eagerVsTorchvisionDiff).toBeLessThanOrEqual(1e-4);
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
    for (const [name, expected] of Object.entries(LAYOUTS)) expect(layout(name) ?? null, name).toEqual(expected.layout);
    const custom = JSON.parse(readFileSync(join(dir, 'madry-custom-norm.json'), 'utf8'));
    expect(custom).toMatchObject({ robust: true, eps: 0.5, constraint: 'inf' });
    // The model zoo's Linf file name: Linf 4/255.
    const linf = JSON.parse(readFileSync(join(dir, 'madry-linf.json'), 'utf8'));
    expect(linf).toMatchObject({ robust: true, eps: 4 / 255, constraint: 'inf', source: 'imagenet_linf_4.pt' });
  });
});

function runExport(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((done) => {
    execFile(PYTHON, [EXPORT, ...args], { timeout: 120_000, cwd: dir }, (err, _stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stderr });
    });
  });
}

// What a robustness checkpoint may hold, as the exporter's error lists it.
const EXPECTED_KEYS = 'module.model.*, module.normalizer.new_mean, module.normalizer.new_std, '
  + 'module.attacker.model.*, module.attacker.normalize.new_mean, module.attacker.normalize.new_std';
const literal = (text: string) => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

describe('broken checkpoints: exit 2, one line naming the problem, no traceback', () => {
  const ck = (f: string) => join(dir, 'checkpoints', f);
  const cases: Array<[string, () => string[], RegExp[]]> = [
    ['missing keys', () => ['--madry', ck('broken-missing.pt'), '--eps', '3', '--arch', 'resnet18'],
      [/missing keys: module\.model\.fc\.bias, module\.model\.layer4\.1\.bn2\.weight$/]],
    ['unexpected keys', () => ['--madry', ck('broken-unexpected.pt'), '--eps', '3', '--arch', 'resnet18'],
      [/unexpected keys: module\.model\.head2\.weight$/]],
    ['keys outside the robustness layout', () => ['--madry', ck('broken-outside.pt'), '--eps', '3', '--arch', 'resnet18'],
      [/unexpected keys for a robustness AttackerModel: module\.extra_head\.weight \(/, literal(`(expected only ${EXPECTED_KEYS})`), /\)$/]],
    // The Attacker's normalizer is `normalize`: named like the AttackerModel's, it is refused, and
    // the one line lists what a checkpoint may hold.
    ['the attacker\'s normalizer misnamed', () => ['--madry', ck('broken-attacker-normalizer.pt'), '--eps', '3', '--arch', 'resnet18'],
      [literal('unexpected keys for a robustness AttackerModel: module.attacker.normalizer.new_mean, module.attacker.normalizer.new_std ('),
        literal(`(expected only ${EXPECTED_KEYS})`), /\)$/]],
    ['a torchvision state dict given as Madry', () => ['--madry', ck('torchvision-as-madry.pt'), '--eps', '3', '--arch', 'resnet18'],
      [/looks like a torchvision state dict .*export it with --torchvision, not --madry$/]],
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
