// Each task as a configuration of the engine: its loss and its constraint, on the embedded
// robust model, and its shapes on a 224x224 ResNet50.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Classifier, defaultHole, downUp, FASHION_28, generate, inpaint, readFashionMnist, REFERENCE_224, superResolve, translate, type ImageBatch,
} from '../lib/index.js';
import { slice } from '../lib/tensor.js';
import { l2PerSample, python, tempDir, TEST_DEVICE } from './helpers.js';

let robust: Classifier;
const test = readFashionMnist('test', { limit: 200 });
const five: ImageBatch = slice(test.images, 0, 5);
const fiveLabels = Array.from(test.labels.subarray(0, 5));

beforeAll(async () => {
  robust = await Classifier.load('fashion-robust', { device: TEST_DEVICE });
});
afterAll(async () => {
  await robust?.dispose();
});

const agree = (r: { predictions: Int32Array; targets: Int32Array }) => r.predictions.filter((p, i) => p === r.targets[i]).length;

/** Per-image cross-entropy of `labels` under logits [n, k]. */
function crossEntropy(logits: { data: Float32Array; shape: number[] }, labels: number[]): number[] {
  const k = logits.shape[1]!;
  return labels.map((y, i) => {
    const z = Array.from(logits.data.subarray(i * k, (i + 1) * k));
    const m = Math.max(...z);
    return m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0)) - z[y]!;
  });
}

describe('generate', () => {
  it('stays inside the eps ball around its seed and reaches the target class', async () => {
    const r = await generate({ classifier: robust, classes: ['Sneaker', 'Bag', 'Trouser'], count: 3, seed: 'mvn', randomSeed: 4 });
    expect(r.images.shape).toEqual([9, 1, 28, 28]);
    expect(Array.from(r.targets)).toEqual([7, 7, 7, 8, 8, 8, 1, 1, 1]);
    const d = l2PerSample(r.images, r.starts);
    expect(Math.max(...d)).toBeLessThanOrEqual(FASHION_28.generate.eps + 1e-3);
    expect(Math.min(...d)).toBeGreaterThan(0.1);
    expect(agree(r)).toBeGreaterThanOrEqual(8);
    expect(r.settings).toMatchObject(FASHION_28.generate);
  });

  it('every seed kind works, settings can be overridden, the same random seed repeats', async () => {
    for (const seed of ['uniform', 'normal', 'mvn'] as const) {
      const a = await generate({ classifier: robust, classes: 3, count: 2, seed, randomSeed: 9, iterations: 3, eps: 1 });
      const b = await generate({ classifier: robust, classes: 3, count: 2, seed, randomSeed: 9, iterations: 3, eps: 1 });
      expect(a.settings.iterations).toBe(3);
      expect(a.images.data).toEqual(b.images.data);
      expect(Math.max(...l2PerSample(a.images, a.starts))).toBeLessThanOrEqual(1 + 1e-4);
    }
  });

  it('rejects bad options with named errors', async () => {
    await expect(generate({ classifier: robust, classes: 'Zebra' })).rejects.toThrow(/Unknown class 'Zebra'/);
    await expect(generate({ classifier: robust, classes: 1, seed: 'gauss' as never })).rejects.toThrow(/for seed/);
    await expect(generate({ classifier: robust, classes: 1, count: 0 })).rejects.toThrow(/for count/);
  });
});

describe('inpaint', () => {
  it('fills the hole and keeps the known pixels close to the source', async () => {
    const hole = defaultHole(28, 28);
    expect(hole).toEqual({ x: 10, y: 10, width: 8, height: 8 });
    const r = await inpaint({ classifier: robust, image: five, label: fiveLabels });
    let outside = 0;
    let inside = 0;
    let nOut = 0;
    let nIn = 0;
    for (let i = 0; i < 5; i++) for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
      const k = i * 784 + y * 28 + x;
      const d = Math.abs(r.images.data[k]! - r.starts.data[k]!);
      const inHole = x >= 10 && x < 18 && y >= 10 && y < 18;
      if (inHole) (inside += d), nIn++;
      else (outside += d), nOut++;
    }
    expect(outside / nOut).toBeLessThan(0.05);
    expect(inside / nIn).toBeGreaterThan(2 * (outside / nOut));
    // The start has the hole filled with the mean of the known pixels.
    const known = Array.from(five.data.subarray(0, 784)).filter((_, p) => !(p % 28 >= 10 && p % 28 < 18 && Math.floor(p / 28) >= 10 && Math.floor(p / 28) < 18));
    expect(r.starts.data[14 * 28 + 14]).toBeCloseTo(known.reduce((a, b) => a + b, 0) / known.length, 5);
  });

  it('takes a mask instead of a hole, and refuses both', async () => {
    const mask: ImageBatch = { data: new Float32Array(784).map((_, p) => (p < 84 ? 1 : 0)), shape: [1, 1, 28, 28] };
    const r = await inpaint({ classifier: robust, image: slice(five, 0, 1), mask, label: fiveLabels[0], iterations: 5 });
    expect(r.starts.data.subarray(84, 784)).toEqual(five.data.subarray(84, 784));
    await expect(inpaint({ classifier: robust, image: five, mask, hole: { x: 0, y: 0, width: 2, height: 2 } })).rejects.toThrow(/either hole or mask/);
    await expect(inpaint({ classifier: robust, image: five, hole: { x: 25, y: 0, width: 8, height: 2 } })).rejects.toThrow(/hole.width/);
  });
});

describe('superResolve', () => {
  it('starts from the block-averaged image, changes it toward its label, within eps and the pixel range', async () => {
    const r = await superResolve({ classifier: robust, image: five, factor: 4, label: fiveLabels });
    expect(r.starts.data).toEqual(downUp(five, 4).data);
    // Blocks of the start are constant.
    expect(r.starts.data[0]).toBe(r.starts.data[3]);
    expect(r.settings).toMatchObject(FASHION_28.superResolve);
    // It moved: every image by a real part of its budget (returning the start would fail here).
    const moved = l2PerSample(r.images, r.starts);
    expect(Math.min(...moved)).toBeGreaterThan(0.05 * FASHION_28.superResolve.eps);
    // Within the constraint: the L2 ball around the start, and pixels in [0, 1].
    expect(Math.max(...moved)).toBeLessThanOrEqual(FASHION_28.superResolve.eps + 1e-3);
    expect(r.images.data.every((v) => v >= 0 && v <= 1)).toBe(true);
    // Toward the target: the label's cross-entropy falls for every image, and the returned
    // losses are that cross-entropy on the returned images.
    const before = crossEntropy(await robust.logits(r.starts), fiveLabels);
    const after = crossEntropy(await robust.logits(r.images), fiveLabels);
    after.forEach((l, i) => expect(l, `image ${i}`).toBeLessThan(before[i]!));
    after.forEach((l, i) => expect(r.losses[i], `image ${i}`).toBeCloseTo(l, 3));
    expect(Array.from(r.targets)).toEqual(fiveLabels);
    expect(agree(r)).toBeGreaterThanOrEqual(4);
  });

  it('handles factors that do not divide the size (partial edge blocks)', () => {
    const x: ImageBatch = { data: Float32Array.from({ length: 25 }, (_, i) => i / 25), shape: [1, 1, 5, 5] };
    const d = downUp(x, 2);
    expect(d.data[24]).toBeCloseTo(24 / 25, 6); // the corner block holds one pixel
    expect(d.data[0]).toBeCloseTo((0 + 1 + 5 + 6) / 4 / 25, 6);
  });
});

describe('translate', () => {
  it("reaches the target class in the eyes of the classifier that made it", async () => {
    const r = await translate({ classifier: robust, image: five, to: 'Bag' });
    expect(Array.from(r.targets)).toEqual([8, 8, 8, 8, 8]);
    expect(agree(r)).toBe(5);
    expect(Math.max(...l2PerSample(r.images, five))).toBeLessThanOrEqual(FASHION_28.translate.eps + 1e-3);
  });
});

describe('on a 224x224 ResNet50 (random weights: shapes and settings only)', () => {
  let resnet: Classifier;
  beforeAll(async () => {
    const dir = tempDir();
    python(['models/export_resnet50.py', '--random', '--arch', 'resnet18', '--out', join(dir, 'r.pt')]);
    resnet = await Classifier.load(join(dir, 'r.pt'), { device: TEST_DEVICE });
  });
  afterAll(async () => {
    await resnet?.dispose();
  });

  it('uses the reference settings and the study defaults (60x60 hole, 8x super-resolution)', async () => {
    expect(defaultHole(224, 224)).toEqual({ x: 82, y: 82, width: 60, height: 60 });
    const img: ImageBatch = { data: new Float32Array(3 * 224 * 224).map((_, i) => (i % 97) / 97), shape: [1, 3, 224, 224] };
    const g = await generate({ classifier: resnet, classes: 'golf ball', seed: 'uniform', iterations: 2 });
    expect(g.images.shape).toEqual([1, 3, 224, 224]);
    expect(g.settings.eps).toBe(REFERENCE_224.generate.eps);
    const s = await superResolve({ classifier: resnet, image: img, iterations: 1 });
    expect(s.starts.data[0]).toBe(s.starts.data[7]);
    expect(s.starts.data[0]).not.toBe(s.starts.data[8]);
    const ip = await inpaint({ classifier: resnet, image: img, iterations: 1 });
    expect(ip.settings.penaltyWeight).toBe(REFERENCE_224.inpaint.penaltyWeight);
    const t = await translate({ classifier: resnet, image: img, to: 'tench', iterations: 1 });
    expect(t.settings).toEqual({ ...REFERENCE_224.translate, iterations: 1 });
    // A result names its task as the library names the function (and the CLI its command, in kebab-case).
    expect([g.task, s.task, ip.task, t.task]).toEqual(['generate', 'superResolve', 'inpaint', 'translate']);
  });
});
