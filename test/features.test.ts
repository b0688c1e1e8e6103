// The paper's other applications: feature visualization, paint-with-features, representation
// inversion, sketch-to-image. Library functions and CLI commands on the embedded models, with
// few iterations (the reference checks of their objectives are in engine-reference.test.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  Classifier, defaultSettings, FASHION_28, invert, noiseStart, paintFeature, readFashionMnist, REFERENCE_224, sketchFromImage, sketchToImage,
  visualizeFeature, writePng, type ImageBatch,
} from '../lib/index.js';
import { main } from '../lib/cli/index.js';
import { slice } from '../lib/tensor.js';
import { representationShape, representationSize, spreadUnits } from '../lib/tasks/visualizeFeature.js';
import { maxAbsDiff, tempDir, TEST_DEVICE } from './helpers.js';

let robust: Classifier;
const test = readFashionMnist('test', { limit: 20 });
const four: ImageBatch = slice(test.images, 0, 4);

beforeAll(async () => {
  robust = await Classifier.load('fashion-robust', { device: TEST_DEVICE });
});
afterAll(async () => {
  await robust?.dispose();
});

const FEATURE_TASKS = ['visualizeFeature', 'paintFeature', 'invert', 'sketchToImage'] as const;

/** The rows of docs/algorithm.md's settings tables: task -> eps, step, iterations (and useBest where given). */
function documentedSettings(): Map<string, { eps: number; step: number; iterations: number; useBest?: boolean }> {
  const doc = readFileSync(join(import.meta.dirname, '..', 'docs/algorithm.md'), 'utf8');
  const rows = new Map<string, { eps: number; step: number; iterations: number; useBest?: boolean }>();
  for (const line of doc.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // | task | start | loss | eps | step | iterations | [useBest |]
    if (cells.length < 8 || !/^[a-zA-Z]+$/.test(cells[1]!) || !/^[\d.]+$/.test(cells[4]!)) continue;
    const [eps, step, iterations] = [cells[4]!, cells[5]!, cells[6]!].map((c) => Number(c.replace(/,/g, '')));
    const useBest = cells.length > 8 && cells[7] ? cells[7] === 'on' : undefined;
    rows.set(cells[1]!, { eps: eps!, step: step!, iterations: iterations!, ...(useBest === undefined ? {} : { useBest }) });
  }
  return rows;
}

describe('settings', () => {
  it('every feature task has its reference settings at 224, as docs/algorithm.md states them, and measured ones at 28', () => {
    const documented = documentedSettings();
    for (const t of FEATURE_TASKS) {
      expect(documented.get(t), `docs/algorithm.md has no row for ${t}`).toBeTruthy();
      expect(REFERENCE_224[t], t).toMatchObject(documented.get(t)!);
      expect(defaultSettings(t, [3, 224, 224])).toEqual(REFERENCE_224[t]);
      expect(defaultSettings(t, [1, 28, 28])).toEqual(FASHION_28[t]);
      expect(FASHION_28[t].constraint).toBe(REFERENCE_224[t].constraint);
    }
    // The synthesis tasks' rows agree as well (the first table).
    for (const t of ['generate', 'inpaint', 'superResolve', 'translate'] as const) expect(REFERENCE_224[t], t).toMatchObject(documented.get(t)!);
    // Without a measured size, the 224 settings with eps and step scaled by sqrt(pixels).
    const s = defaultSettings('paintFeature', [3, 112, 112]);
    expect(s.eps).toBeCloseTo(REFERENCE_224.paintFeature.eps / 2, 9);
    expect(s.step).toBeCloseTo(REFERENCE_224.paintFeature.step / 2, 9);
    expect(s.iterations).toBe(REFERENCE_224.paintFeature.iterations);
  });
});

describe('visualizeFeature', () => {
  it('raises every chosen unit from noise, every unit from every start, unit-major', async () => {
    const r = await visualizeFeature({ classifier: robust, feature: [0, 8], count: 2, randomSeed: 3, iterations: 15 });
    expect(r.task).toBe('visualizeFeature');
    expect(r.images.shape).toEqual([4, 1, 28, 28]);
    expect(Array.from(r.features)).toEqual([0, 0, 8, 8]);
    r.after.forEach((a, i) => expect(a).toBeGreaterThan(r.before[i]! + 0.05));
    // losses are the loop's: -unit
    r.losses.forEach((l, i) => expect(l).toBeCloseTo(-r.after[i]!, 4));
    expect(r.settings).toMatchObject({ ...FASHION_28.visualizeFeature, iterations: 15 });
    // The noise start is N(0.5, 1/20^2), seeded.
    expect(maxAbsDiff(r.starts.data.subarray(0, 784), noiseStart(2, [1, 28, 28], 3).data.subarray(0, 784))).toBe(0);
    const mean = r.starts.data.subarray(0, 784).reduce((a, b) => a + b, 0) / 784;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
  });

  it('starts from given images, and refuses a unit past the representation', async () => {
    const r = await visualizeFeature({ classifier: robust, feature: 8, image: slice(four, 0, 2), iterations: 5 });
    expect(maxAbsDiff(r.starts.data, slice(four, 0, 2).data)).toBe(0);
    expect(Array.from(r.targets)).toEqual(Array.from(await robust.predict(slice(four, 0, 2))));
    const size = representationSize(robust)!;
    expect(size).toBe((await robust.features(slice(four, 0, 1))).shape[1]);
    const last = await visualizeFeature({ classifier: robust, feature: size - 1, iterations: 1 });
    expect(Array.from(last.features)).toEqual([size - 1]);
    expect(last.images.shape).toEqual([1, 1, 28, 28]);
    await expect(visualizeFeature({ classifier: robust, feature: size, iterations: 1 })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/feature/) });
    await expect(visualizeFeature({ classifier: robust, feature: [1, -1], iterations: 1 })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/feature\[1\]/) });
    await expect(visualizeFeature({ classifier: robust, feature: 1, image: four, count: 2 })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
  });
});

describe('spreadUnits', () => {
  it("spreads over the channels of a feature map at its centre, else over the units", async () => {
    // fashion-robust's card gives its flattened map's layout.
    const shape = representationShape(robust);
    const size = representationSize(robust)!;
    const card = robust.card!.representation as { size: number; shape: [number, number, number] };
    expect(shape).toEqual(card.shape);
    const [c, h, w] = shape!;
    expect(c * h * w).toBe(size);
    const units = spreadUnits(robust, 4, size);
    const centre = Math.floor(h / 2) * w + Math.floor(w / 2);
    expect(units).toEqual([0, 1, 2, 3].map((i) => Math.floor((i * c) / 4) * h * w + centre));
    expect(spreadUnits(robust, 10 * c, size)).toHaveLength(c);
    // Without a card's layout: evenly over the units.
    const cardless = { card: undefined } as unknown as Classifier;
    expect(spreadUnits(cardless, 4, 64)).toEqual([0, 16, 32, 48]);
    expect(spreadUnits(cardless, 8, 3)).toEqual([0, 1, 2]);
    expect(representationShape({ card: { representation: { size: 10, shape: [2, 2, 2] } } } as unknown as Classifier)).toBeUndefined();
  });
});

describe('paintFeature', () => {
  it('raises the unit by changing the region, and leaves the rest nearly as it was', async () => {
    const region = { x: 7, y: 7, width: 14, height: 14 };
    // A unit the four images already raise (a centre unit for a feature map): a unit at exactly 0
    // may stay there, the best iterate then being the start.
    const d = representationSize(robust)!;
    const f = await robust.features(four);
    const least = (u: number) => Math.min(...[0, 1, 2, 3].map((i) => f.data[i * d + u]!));
    const unit = spreadUnits(robust, d, d).reduce((a, b) => (least(b) > least(a) ? b : a));
    expect(least(unit)).toBeGreaterThan(0);
    const r = await paintFeature({ classifier: robust, image: four, feature: unit, region, iterations: 20 });
    expect(r.mask.shape).toEqual([4, 1, 28, 28]);
    expect(r.mask.data.reduce((a, b) => a + b, 0)).toBe(4 * 14 * 14);
    r.after.forEach((a, i) => expect(a).toBeGreaterThan(r.before[i]!));
    let inside = 0;
    let outside = 0;
    for (let i = 0; i < r.images.data.length; i++) {
      const d = Math.abs(r.images.data[i]! - four.data[i]!);
      if (r.mask.data[i]) inside = Math.max(inside, d);
      else outside = Math.max(outside, d);
    }
    expect(inside).toBeGreaterThan(0.1);
    expect(outside).toBeLessThan(inside / 2);
    expect(r.settings.penaltyWeight).toBe(90);
  });

  it('checks its options', async () => {
    await expect(paintFeature({ classifier: robust, image: four, feature: 0, region: { x: 0, y: 0, width: 2, height: 2 }, mask: four })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
    await expect(paintFeature({ classifier: robust, image: four, feature: [0, 1] })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/feature/) });
    await expect(paintFeature({ classifier: robust, image: four, feature: 0, region: { x: 20, y: 0, width: 10, height: 2 } })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/region\.width/) });
    await expect(paintFeature({ classifier: robust, image: four, feature: 0, featureWeight: 0 })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/featureWeight/) });
  });
});

describe('invert', () => {
  it('lowers the representation distance from noise and from another image', async () => {
    const fromNoise = await invert({ classifier: robust, target: four, iterations: 30 });
    expect(fromNoise.task).toBe('invert');
    expect(Array.from(fromNoise.targets)).toEqual(Array.from(await robust.predict(four)));
    fromNoise.distanceAfter.forEach((d, i) => expect(d).toBeLessThan(fromNoise.distanceBefore[i]! * 0.9));
    const other = slice(test.images, 10, 11);
    const fromImage = await invert({ classifier: robust, target: four, start: other, iterations: 30 });
    expect(fromImage.starts.shape).toEqual([4, 1, 28, 28]);
    expect(maxAbsDiff(fromImage.starts.data.subarray(784 * 3), other.data)).toBe(0);
    fromImage.distanceAfter.forEach((d, i) => expect(d).toBeLessThan(fromImage.distanceBefore[i]!));
  });

  it('checks its options', async () => {
    await expect(invert({ classifier: robust, target: four, start: slice(four, 0, 2) })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/start/) });
    await expect(invert({ classifier: robust, target: { data: new Float32Array(3 * 28 * 28), shape: [1, 3, 28, 28] } })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/target/) });
  });

  it('clf.pgd takes the target as images or as representations, one row for all', async () => {
    const x0 = noiseStart(2, [1, 28, 28], 5);
    const target = slice(four, 0, 1);
    const rep = await robust.features(target);
    const common = { x0, targets: [0, 0], eps: 1000, step: 0.1, iterations: 5 };
    const a = await robust.pgd({ ...common, inversion: { target } });
    const b = await robust.pgd({ ...common, inversion: { target: rep } });
    expect(maxAbsDiff(a.images.data, b.images.data)).toBe(0);
    await expect(robust.pgd({ ...common, inversion: { target: { data: new Float32Array(10), shape: [1, 10] } } })).rejects.toMatchObject({
      code: 'ERR_BAD_INPUT', message: expect.stringMatching(/inversion\.target has 10 values per sample/),
    });
    await expect(robust.pgd({ ...common, inversion: { target: rep, extra: 1 } as never })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringMatching(/inversion/) });
    const d = rep.shape[1];
    await expect(robust.pgd({ ...common, inversion: { target: { data: new Float32Array(3 * d), shape: [3, d] } } })).rejects.toMatchObject({
      code: 'ERR_BAD_INPUT', message: expect.stringMatching(/inversion\.target has 3 rows/),
    });
  });
});

describe('sketches and sketchToImage', () => {
  it('sketchFromImage draws the edges of a square, dark on white by default', () => {
    const data = new Float32Array(2 * 16 * 16);
    for (let y = 4; y < 12; y++) for (let x = 4; x < 12; x++) data[y * 16 + x] = data[256 + y * 16 + x] = 1;
    const img: ImageBatch = { data, shape: [1, 2, 16, 16] };
    const s = sketchFromImage(img);
    expect(s.shape).toEqual([1, 2, 16, 16]);
    expect(new Set(s.data)).toEqual(new Set([0, 1]));
    expect(s.data[0]).toBe(1); // background: white
    expect(s.data[8 * 16 + 4]).toBe(0); // on the square's left edge
    expect(s.data[8 * 16 + 8]).toBe(1); // inside: no edge
    expect(maxAbsDiff(s.data.subarray(0, 256), s.data.subarray(256))).toBe(0); // channels alike
    const w = sketchFromImage(img, { invert: false });
    expect(maxAbsDiff(w.data, s.data.map((v) => 1 - v))).toBe(0);
    const soft = sketchFromImage(img, { threshold: 0 });
    expect(soft.data.some((v) => v > 0 && v < 1)).toBe(true);
    expect(() => sketchFromImage(img, { threshold: 2 })).toThrow(/threshold/);
  });

  it('turns sketches toward their classes', async () => {
    const sketch = sketchFromImage(four, { invert: false });
    const labels = Array.from(test.labels.subarray(0, 4));
    const r = await sketchToImage({ classifier: robust, sketch, to: labels, iterations: 20 });
    expect(r.task).toBe('sketchToImage');
    expect(Array.from(r.targets)).toEqual(labels);
    expect(r.predictions.filter((p, i) => p === labels[i]).length).toBeGreaterThanOrEqual(3);
    expect(r.settings).toMatchObject({ eps: FASHION_28.sketchToImage.eps, iterations: 20 });
    await expect(sketchToImage({ classifier: robust, sketch, to: 'Spaceship' })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
  });
});

describe('CLI', () => {
  async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
    const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      return { code: await main(args), out: out.join('\n'), err: err.join('\n') };
    } finally {
      log.mockRestore();
      error.mockRestore();
      write.mockRestore();
    }
  }
  const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).entries as Array<Record<string, any>>;

  it('each command has a --help that lists its options', async () => {
    for (const name of ['visualize-feature', 'paint-feature', 'invert', 'sketch-to-image']) {
      const r = await cli([name, '--help']);
      expect(r.code, name).toBe(0);
      expect(r.out).toContain(`Usage: robust-synth ${name}`);
    }
    expect((await cli(['--help'])).out).toMatch(/visualize-feature[\s\S]*paint-feature[\s\S]*invert[\s\S]*sketch-to-image/);
  });

  it('visualize-feature, paint-feature, invert and sketch-to-image write their images and manifests', async () => {
    const src = tempDir('rs-src-');
    await writePng(join(src, 'shirt.png'), four, 0);
    await writePng(join(src, 'trouser.png'), four, 2);
    const common = ['--model', 'fashion-robust', '--device', TEST_DEVICE, '--iterations', '3'];

    const vis = tempDir();
    let r = await cli(['visualize-feature', '--feature', '0', '--feature', '8', '--count', '2', '--out', vis, ...common]);
    expect(r.code, r.err).toBe(0);
    expect(manifest(vis).map((e) => e.file).sort()).toEqual(['noise-unit-0-0.png', 'noise-unit-0-1.png', 'noise-unit-8-0.png', 'noise-unit-8-1.png']);
    expect(manifest(vis)[0]).toMatchObject({ task: 'visualizeFeature', settings: { iterations: 3, model: 'fashion-robust' } });
    expect(existsSync(join(vis, 'contact-sheet.png'))).toBe(true);

    const paint = tempDir();
    r = await cli(['paint-feature', '--image', join(src, 'shirt.png'), '--feature', '0', '--region', '7,7,14,14', '--out', paint, ...common]);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(join(paint, 'shirt-unit-0.png')) && existsSync(join(paint, 'shirt-region.png'))).toBe(true);

    const inv = tempDir();
    r = await cli(['invert', '--target', join(src, 'shirt.png'), '--start', join(src, 'trouser.png'), '--out', inv, ...common]);
    expect(r.code, r.err).toBe(0);
    expect(manifest(inv).map((e) => e.file)).toEqual(['shirt-inverted-from-trouser.png']);
    expect(r.out).toMatch(/representation distance, relative: [\d.]+ -> [\d.]+/);

    const sk = tempDir();
    r = await cli(['sketch-to-image', '--photo', join(src, 'trouser.png'), '--no-invert', '--to', 'Trouser', '--out', sk, ...common]);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(join(sk, 'trouser-sketch.png')) && existsSync(join(sk, 'trouser-to-trouser.png'))).toBe(true);
    expect(manifest(sk)[0]).toMatchObject({ task: 'sketchToImage', target: { name: 'Trouser' } });
  });

  it('errors name the flag, exit code 2', async () => {
    const out = tempDir();
    let r = await cli(['visualize-feature', '--feature', '-1', '--out', out, '--iterations', '1']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--feature must be an integer >= 0/);
    r = await cli(['paint-feature', '--feature', '1', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--image is required/);
    r = await cli(['sketch-to-image', '--to', 'Bag', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--sketch FILE or --photo FILE/);
    r = await cli(['invert', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--target is required/);
  });
});
