// The main job end to end, at its smallest: every panel for both models, and the gallery page.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { runDemo } from '../lib/demo.js';
import { tempDir } from './helpers.js';

it('demo writes every grid for robust and standard, and an index.html that shows them', async () => {
  const out = tempDir();
  expect(await runDemo(['--out', out, '--count', '1'])).toBe(0);
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
  const meta = await sharp(join(out, 'fashion-robust-generate-mvn.png')).metadata();
  expect(meta.height).toBeGreaterThan(10 * 28 * 3); // ten rows of 28-pixel images at scale 3
  expect(existsSync(join(out, 'comparison-mvn.png'))).toBe(true);
}, 600_000);
