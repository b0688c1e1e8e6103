// The main job end to end, at its smallest: every panel for both models, and the gallery page,
// with no Fashion-MNIST data set installed (the demo reads the test images the package ships).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { FASHION_EXAMPLES, FASHION_MNIST_ENV, readFashionExamples, readFashionMnist } from '../lib/datasets.js';
import { runDemo } from '../lib/demo.js';
import { checkDemoNotes } from './demo-floors.js';
import { tempDir } from './helpers.js';

it('the shipped Fashion-MNIST examples are the data set\'s first test images, and small', () => {
  const shipped = readFashionExamples();
  const full = readFashionMnist('test', { limit: FASHION_EXAMPLES });
  expect(shipped.images.shape).toEqual([FASHION_EXAMPLES, 1, 28, 28]);
  expect(Buffer.from(shipped.images.data.buffer).equals(Buffer.from(full.images.data.buffer))).toBe(true);
  expect(Array.from(shipped.labels)).toEqual(Array.from(full.labels));
  for (let k = 0; k < 10; k++) expect(shipped.labels.filter((y) => y === k).length, `class ${k}`).toBeGreaterThanOrEqual(2);
  expect(() => readFashionExamples(FASHION_EXAMPLES + 1)).toThrow(expect.objectContaining({ code: 'ERR_BAD_INPUT' }));
});

it('demo writes every grid for robust and standard, and an index.html that shows them, with no data set installed', async () => {
  const out = tempDir();
  const saved = process.env[FASHION_MNIST_ENV];
  process.env[FASHION_MNIST_ENV] = join(tempDir(), 'no-fashion-mnist-here');
  let r;
  try {
    expect(() => readFashionMnist('test', { limit: 1 })).toThrow(/not found/); // the data set is "absent"
    r = await runDemo({ out, count: 1, progress: () => ({ update: () => {}, done: () => {} }) });
  } finally {
    if (saved === undefined) delete process.env[FASHION_MNIST_ENV];
    else process.env[FASHION_MNIST_ENV] = saved;
  }
  expect(r.index).toBe(join(out, 'index.html'));
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  const gallery = JSON.parse(readFileSync(join(out, 'gallery.json'), 'utf8'));
  expect(gallery.panels.map((p: { title: string }) => p.title)).toEqual([
    'Generation from uniform seeds', 'Generation from univariate normal seeds', 'Generation from multivariate normal seeds',
    'Inpainting', 'Super-resolution (4x)', 'Image-to-image translation',
    'Feature visualization', 'Paint with features', 'Representation inversion', 'Sketch to image',
  ]);
  for (const p of gallery.panels) {
    for (const model of ['fashion-robust', 'fashion-standard']) {
      const file = p.files[model];
      expect(existsSync(join(out, file)), file).toBe(true);
      expect(html).toContain(`src="${file}"`);
      // Feature visualization and painting have no target class: their notes give the unit's value.
      expect(p.notes[model]).toMatch(/\d+\/\d+ classified as the target|unit value|unit \d+:/);
    }
  }
  // The robust model reaches the target class on most images of the class-directed panels.
  for (const title of ['Generation from multivariate normal seeds', 'Image-to-image translation', 'Sketch to image']) {
    const note = gallery.panels.find((p: { title: string }) => p.title === title).notes['fashion-robust'] as string;
    const [hit, of] = /(\d+)\/(\d+) classified as the target/.exec(note)!.slice(1).map(Number) as [number, number];
    expect(hit / of, `${title}: ${note}`).toBeGreaterThanOrEqual(0.7);
  }
  // Every panel's note above a floor derived from the models' cards (test/demo-floors.ts): "0/10" fails.
  expect(checkDemoNotes(gallery.panels, ['fashion-robust', 'fashion-standard'])).toEqual([]);
  const meta = await sharp(join(out, 'fashion-robust-generate-mvn.png')).metadata();
  expect(meta.height).toBeGreaterThan(10 * 28 * 3); // ten rows of 28-pixel images at scale 3
  expect(existsSync(join(out, 'comparison-mvn.png'))).toBe(true);
}, 600_000);
