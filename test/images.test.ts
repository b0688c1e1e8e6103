import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { gridPng, readFashionMnist, readImage, readImageFolder, writePng } from '../lib/index.js';
import { randomBatch, tempDir } from './helpers.js';

const q = (b: Float32Array) => Array.from(b, (v) => Math.round(v * 255));

describe('image I/O', () => {
  it('PNG round trip is exact at 8 bits, grey and RGB', async () => {
    const dir = tempDir();
    for (const c of [1, 3]) {
      const b = randomBatch([1, c, 9, 7], c);
      const path = join(dir, `x${c}.png`);
      await writePng(path, b);
      const back = await readImage(path, { channels: c, height: 9, width: 7 });
      expect(q(back.data)).toEqual(q(b.data));
    }
  });

  it('reads JPEG and WebP, resizing and converting channels', async () => {
    const dir = tempDir();
    const rgb = Buffer.alloc(40 * 30 * 3, 128);
    await sharp(rgb, { raw: { width: 40, height: 30, channels: 3 } }).jpeg().toFile(join(dir, 'a.jpg'));
    await sharp(rgb, { raw: { width: 40, height: 30, channels: 3 } }).webp().toFile(join(dir, 'a.webp'));
    for (const f of ['a.jpg', 'a.webp']) {
      const g = await readImage(join(dir, f), { channels: 1, height: 28, width: 28 });
      expect(g.shape).toEqual([1, 1, 28, 28]);
      expect(Math.abs(g.data[100]! - 128 / 255)).toBeLessThan(0.03);
    }
  });

  it('bad files fail with ERR_BAD_IMAGE: truncated PNG, garbage JPEG, text named .png, a directory, a missing file', async () => {
    const dir = tempDir();
    const good = join(dir, 'good.png');
    await writePng(good, randomBatch([1, 3, 32, 32]));
    writeFileSync(join(dir, 'trunc.png'), readFileSync(good).subarray(0, 200));
    writeFileSync(join(dir, 'garbage.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(300, 7)]));
    writeFileSync(join(dir, 'text.png'), 'hello, not an image');
    mkdirSync(join(dir, 'folder.png'));
    writeFileSync(join(dir, 'head.png'), readFileSync(good).subarray(0, 40)); // cut inside the header
    for (const f of ['trunc.png', 'garbage.jpg', 'text.png', 'folder.png', 'missing.png', 'head.png']) {
      const err = await readImage(join(dir, f), { channels: 3, height: 32, width: 32 }).then(() => undefined, (e: unknown) => e as Error & { code: string });
      expect(err, f).toMatchObject({ code: 'ERR_BAD_IMAGE' });
      // One line that says what is wrong: never a message ending at a colon, nor a decoder's repeated lines.
      expect(err!.message, f).toContain(join(dir, f));
      expect(err!.message, f).not.toMatch(/:\s*$|\n/);
      expect(err!.message, f).not.toMatch(/Vips\w+:/);
    }
    const head = await readImage(join(dir, 'head.png'), { channels: 3, height: 32, width: 32 }).catch((e: Error) => e.message);
    expect(head).toMatch(/corrupt header \(.+\)$/);
  });

  it('a grid holds every cell at the requested scale', async () => {
    const png = await gridPng([randomBatch([4, 1, 5, 5]), randomBatch([2, 1, 5, 5])], { columns: 3, scale: 2, gap: 1 });
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height]).toEqual([3 * 10 + 4, 2 * 10 + 3]);
  });
});

describe('datasets', () => {
  it('Fashion-MNIST: 10k test images in [0, 1], ten balanced labels', () => {
    const t = readFashionMnist('test');
    expect(t.images.shape).toEqual([10000, 1, 28, 28]);
    const counts = new Array(10).fill(0);
    for (const y of t.labels) counts[y]++;
    expect(counts).toEqual(new Array(10).fill(1000));
    expect(Math.max(...t.images.data.subarray(0, 784))).toBeLessThanOrEqual(1);
    const part = readFashionMnist('test', { offset: 100, limit: 5 });
    expect(part.images.data).toEqual(t.images.data.subarray(100 * 784, 105 * 784));
  });

  it('ImageFolder: Imagenette WordNet folders map to ImageNet indices; bad files are skipped and reported', async () => {
    const root = tempDir();
    const classes = Array.from({ length: 1000 }, (_, i) => `class${i}`);
    mkdirSync(join(root, 'n01440764'));
    mkdirSync(join(root, 'n03888605'));
    mkdirSync(join(root, 'not-a-class'));
    await writePng(join(root, 'n01440764', 'a.png'), randomBatch([1, 3, 20, 20]));
    await writePng(join(root, 'n03888605', 'b.png'), randomBatch([1, 3, 20, 20]));
    writeFileSync(join(root, 'n03888605', 'broken.jpg'), 'nope');
    const skipped: string[] = [];
    const ds = await readImageFolder(root, { channels: 3, height: 16, width: 16, classes, onSkip: (p) => skipped.push(p) });
    expect(Array.from(ds.labels)).toEqual([0, 701]);
    expect(ds.images.shape).toEqual([2, 3, 16, 16]);
    expect(skipped.some((p) => p.endsWith('broken.jpg'))).toBe(true);
    expect(skipped.some((p) => p.endsWith('not-a-class'))).toBe(true);
  });
});
