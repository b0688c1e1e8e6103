// `robust-synth serve`, the web playground: its previews (exact replays), its refusals (model
// paths, uploads, other origins), and the page in a real browser (Debian's chromium through
// playwright-core): draw a hole, watch previews, cancel, queue, download.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, inpaint, readFashionMnist, setThreads } from '../lib/index.js';
import { previewSchedule, withPreviews, type Preview } from '../lib/serve/previews.js';
import { startPlayground, type Playground } from '../lib/serve/server.js';
import { crc32, zipStore } from '../lib/serve/zip.js';
import { representationSize, spreadUnits } from '../lib/tasks/visualizeFeature.js';
import { PYTHON, tempDir } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const OUT = join(ROOT, 'test-output');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

if (!HAS_CHROMIUM) {
  console.warn(
    `test/serve.test.ts: SKIPPING the browser tests: ${CHROMIUM} is missing. Install it with \`apt-get install chromium\` ` +
      '(scripts/setup-debian.sh does); the server tests still run.',
  );
}

describe('previews', () => {
  it('schedules evenly spaced previews ending with the run itself', () => {
    expect(previewSchedule(200, 3)).toEqual([50, 100, 150, 200]);
    expect(previewSchedule(200, 0)).toEqual([200]);
    expect(previewSchedule(3, 8)).toEqual([1, 2, 3]);
    expect(previewSchedule(1, 8)).toEqual([1]);
  });

  it('gives a task exactly the result of a plain run, and previews equal to shorter plain runs', async () => {
    setThreads(1); // bit-identical runs need a fixed thread count (README, Threads)
    const clf = await Classifier.load('fashion-robust', { device: 'cpu' });
    try {
      const image = readFashionMnist('test', { offset: 7, limit: 1 }).images;
      const hole = { x: 8, y: 8, width: 12, height: 12 };
      const previews: Preview[] = [];
      const progress: number[] = [];
      const viewed = await inpaint({
        classifier: withPreviews(clf, { previews: 3, onPreview: (p) => void previews.push(p) }),
        image, hole, iterations: 60, label: 3,
        onProgress: (p) => progress.push(p.step),
      });
      const plain = await inpaint({ classifier: clf, image, hole, iterations: 60, label: 3 });
      expect(Array.from(viewed.images.data)).toEqual(Array.from(plain.images.data));
      expect(Array.from(viewed.losses)).toEqual(Array.from(plain.losses));
      expect(previews.map((p) => p.step)).toEqual([0, 15, 30, 45]);
      expect(Array.from(previews[0]!.images.data)).toEqual(Array.from(plain.starts.data));
      // A preview is the run's current iterate: the same options stepped 30 times by hand.
      const options = { x0: plain.starts, targets: [3], eps: 2, step: 0.1, iterations: 60 };
      const seen: Preview[] = [];
      await withPreviews(clf, { previews: 3, onPreview: (p) => void seen.push(p) }).pgd(options);
      const s = await clf.session(options);
      for (let i = 0; i < 30; i++) await s.step();
      expect(Array.from(seen[2]!.images.data)).toEqual(Array.from((await s.current()).data));
      expect(Array.from(seen[2]!.images.data)).not.toEqual(Array.from(plain.starts.data));
      await s.finish();
      expect(progress.every((s, i) => i === 0 || s >= progress[i - 1]!)).toBe(true);
      expect(progress[progress.length - 1]).toBe(60);
    } finally {
      await clf.dispose();
      setThreads('auto');
    }
  });
});

describe('zip', () => {
  it('writes an archive that Python reads back', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    const dir = tempDir();
    const path = join(dir, 'a.zip');
    writeFileSync(path, zipStore([{ name: 'x/a.txt', data: Buffer.from('hello') }, { name: 'x/b.bin', data: Buffer.alloc(1000, 7) }]));
    const out = execFileSync(PYTHON, ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(z.namelist(), z.read("x/a.txt").decode())', path], { encoding: 'utf8' });
    expect(out.trim()).toBe("['x/a.txt', 'x/b.bin'] hello");
  });
});

describe('the server', () => {
  let pg: Playground;
  let robust: Classifier;
  beforeAll(async () => {
    pg = await startPlayground({ port: 0 });
    robust = await Classifier.load('fashion-robust', { device: 'cpu' });
  });
  afterAll(async () => {
    await pg?.close();
    await robust?.dispose();
  });

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(pg.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as any };
  };
  const waitFor = async (id: string) => {
    for (;;) {
      const s = (await (await fetch(`${pg.url}/api/jobs/${id}`)).json()) as any;
      if (s.state === 'done' || s.state === 'failed' || s.state === 'cancelled') return s;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const upload = async (bytes: Buffer, name: string, type: string) => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(bytes)], { type }), name);
    const res = await fetch(`${pg.url}/api/uploads`, { method: 'POST', body: form });
    return { status: res.status, json: (await res.json()) as any };
  };

  it('binds to loopback on a free port and serves the page', async () => {
    expect(pg.host).toBe('127.0.0.1');
    expect(pg.port).toBeGreaterThan(0);
    const res = await fetch(pg.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('robust-synth playground');
    const models = (await (await fetch(`${pg.url}/api/models`)).json()) as any;
    expect(models.models.map((m: any) => m.name)).toEqual(expect.arrayContaining(['fashion-robust', 'fashion-standard']));
  });

  it('refuses a model path, or an unknown name, with the library code', async () => {
    for (const model of ['../models/fashion-robust.pt', join(ROOT, 'models', 'fashion-robust.pt'), 'fashion-robust.pt', '/etc/passwd']) {
      const r = await post('/api/jobs', { model, task: 'inpaint', source: { example: 0 } });
      expect(r.status, model).toBe(400);
      expect(r.json.error.code, model).toBe('ERR_MODEL_NOT_ALLOWED');
    }
    const r = await post('/api/jobs', { model: 'no-such-model', task: 'inpaint', source: { example: 0 } });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('ERR_MODEL_NOT_FOUND');
  });

  it('refuses bad job options with 400 and ERR_BAD_INPUT', async () => {
    const cases: unknown[] = [
      { model: 'fashion-robust', task: 'paint', source: { example: 0 } },
      { model: 'fashion-robust', task: 'inpaint', source: { example: 0 }, iterations: 1e9 },
      { model: 'fashion-robust', task: 'inpaint', source: { example: 0 }, mask: Buffer.alloc(10).toString('base64') },
      { model: 'fashion-robust', task: 'inpaint', source: { upload: 'nope' } },
      { model: 'fashion-robust', task: 'generate' },
      { model: 'fashion-robust', task: 'translate', source: { example: 0 }, class: 99 },
      { model: 'fashion-robust', task: 'inpaint', source: { example: 0 }, extra: 1 },
      { model: 'fashion-robust', task: 'visualizeFeature' },
      { model: 'fashion-robust', task: 'visualizeFeature', feature: 1_000_000 },
      { model: 'fashion-robust', task: 'visualizeFeature', feature: 1, from: 'elsewhere' },
      { model: 'fashion-robust', task: 'visualizeFeature', feature: 1, from: 'image' },
      { model: 'fashion-robust', task: 'paintFeature', source: { example: 0 } },
      { model: 'fashion-robust', task: 'paintFeature', feature: 4, source: { example: 0 }, mask: Buffer.alloc(10).toString('base64') },
      { model: 'fashion-robust', task: 'sketchToImage', source: { example: 0 } },
      { model: 'fashion-robust', task: 'invert' },
    ];
    for (const body of cases) {
      const r = await post('/api/jobs', body);
      expect([400, 404], JSON.stringify(body)).toContain(r.status);
      expect(r.json.error.code, JSON.stringify(body)).toBe('ERR_BAD_INPUT');
    }
  });

  it('runs the feature tasks and sketch-to-image, with the units worth showing in the model details', async () => {
    const details = (await (await fetch(`${pg.url}/api/models/fashion-robust`)).json()) as any;
    const size = representationSize(robust)!;
    expect(details.representation).toEqual({ size, units: spreadUnits(robust, 8, size) });
    expect(Object.keys(details.defaults)).toEqual(expect.arrayContaining(['visualizeFeature', 'paintFeature', 'invert', 'sketchToImage']));
    const unit = details.representation.units[1];
    const hole = Buffer.alloc(28 * 28);
    for (let y = 7; y < 21; y++) hole.fill(1, y * 28 + 7, y * 28 + 21);
    const jobs: Array<[unknown, string[], string]> = [
      [{ task: 'visualizeFeature', feature: unit, count: 2, randomSeed: 3 }, [`noise-unit-${unit}-0.png`, `noise-unit-${unit}-1.png`], `noise:3`],
      [{ task: 'visualizeFeature', feature: unit, from: 'image', source: { example: 0 } }, [`fashion-mnist-test-0-unit-${unit}.png`], 'fashion-mnist-test-0'],
      [{ task: 'paintFeature', feature: unit, source: { example: 0 }, mask: hole.toString('base64') }, [`fashion-mnist-test-0-unit-${unit}.png`], 'fashion-mnist-test-0'],
      [{ task: 'invert', source: { example: 0 } }, ['fashion-mnist-test-0-inverted.png'], 'fashion-mnist-test-0'],
      [{ task: 'sketchToImage', class: 9, source: { example: 0 } }, ['fashion-mnist-test-0-sketch-to-ankle-boot.png'], 'fashion-mnist-test-0'],
    ];
    for (const [body, files, source] of jobs) {
      const r = await post('/api/jobs', { model: 'fashion-robust', iterations: 20, previews: 2, ...(body as object) });
      expect(r.status, JSON.stringify(body)).toBe(202);
      const done = await waitFor(r.json.id);
      expect(done.state, JSON.stringify(done.error)).toBe('done');
      expect(done.task).toBe((body as any).task);
      expect(done.result.entries.map((e: any) => e.file)).toEqual(files);
      for (const e of done.result.entries) {
        expect(e).toMatchObject({ task: (body as any).task, source, settings: { iterations: 20, model: 'fashion-robust' } });
        const png = Buffer.from(await (await fetch(`${pg.url}${done.result.files.find((f: any) => f.name === e.file).url}`)).arrayBuffer());
        expect([(await sharp(png).metadata()).width, (await sharp(png).metadata()).height]).toEqual([28, 28]);
      }
    }
  }, 120_000);

  it('refuses oversized, non-image and other-format uploads, and takes a PNG', async () => {
    const big = await upload(Buffer.alloc(6 * 1024 * 1024, 1), 'big.png', 'image/png');
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('ERR_BAD_IMAGE');
    const text = await upload(Buffer.from('not an image at all'), 'notes.png', 'image/png');
    expect(text.status).toBe(415);
    expect(text.json.error.code).toBe('ERR_BAD_IMAGE');
    const gif = await upload(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } }).gif().toBuffer(), 'a.gif', 'image/gif');
    expect(gif.status).toBe(415);
    expect(gif.json.error.message).toContain('gif');
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#888' } }).png().toBuffer();
    const truncated = await upload(png.subarray(0, png.length - 20), 't.png', 'image/png');
    expect(truncated.status).toBe(415);
    const ok = await upload(png, 'grey.png', 'image/png');
    expect(ok.status).toBe(201);
    expect(ok.json).toMatchObject({ format: 'png', width: 40, height: 30 });
  });

  it('refuses state changes from another origin, and other Host names on loopback', async () => {
    const r = await post('/api/jobs', { model: 'fashion-robust', task: 'inpaint', source: { example: 0 } }, { origin: 'http://evil.example' });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('ERR_BAD_INPUT');
    // fetch() will not forge Host; a raw request does.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: pg.port, path: '/api/models', headers: { host: 'rebind.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });
});

describe.skipIf(!HAS_CHROMIUM)('the page, in Chromium', () => {
  let pg: Playground;
  let context: import('playwright-core').BrowserContext;
  let page: import('playwright-core').Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    pg = await startPlayground({ port: 0 });
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(tempDir('rs-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 720 },
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(pg.url);
    await page.waitForSelector('body[data-ready="true"]');
  });
  afterAll(async () => {
    await context?.close();
    await pg?.close();
  });

  const statusOf = async () => ({ state: await page.getAttribute('#status', 'data-state'), text: (await page.textContent('#status')) ?? '' });

  it('inpaints a hole drawn on the canvas, with live previews, and offers the PNGs and the manifest', async () => {
    expect(await page.inputValue('#model')).toBe('fashion-robust');
    await page.selectOption('#task', 'inpaint');
    await page.click('.example[data-index="0"]'); // an ankle boot
    await page.waitForFunction(() => document.querySelector('.example.selected')?.getAttribute('data-index') === '0');
    // Draw the hole: two strokes across the middle of the image.
    const box = (await page.locator('#canvas').boundingBox())!;
    const at = (fx: number, fy: number) => [box.x + fx * box.width, box.y + fy * box.height] as const;
    await page.mouse.move(...at(0.3, 0.35));
    await page.mouse.down();
    await page.mouse.move(...at(0.7, 0.35), { steps: 12 });
    await page.mouse.move(...at(0.7, 0.55), { steps: 6 });
    await page.mouse.move(...at(0.3, 0.55), { steps: 12 });
    await page.mouse.up();
    await page.fill('#iterations', '400');
    await page.fill('#previews', '8');
    await page.evaluate(() => {
      const img = document.getElementById('preview')!;
      const seen = new Set<string>();
      (window as any).previewSrcs = seen;
      new MutationObserver(() => {
        const src = img.getAttribute('src');
        if (src?.startsWith('data:image/png')) seen.add(src);
      }).observe(img, { attributes: true, attributeFilter: ['src'] });
    });
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/api/jobs') && r.method() === 'POST'),
      page.click('#run'),
    ]);
    const body = request.postDataJSON();
    expect(body).toMatchObject({ model: 'fashion-robust', task: 'inpaint', iterations: 400, previews: 8, source: { example: 0 } });
    const mask = Buffer.from(body.mask, 'base64');
    expect(mask.length).toBe(28 * 28);
    const holePixels = mask.reduce((a, v) => a + v, 0);
    expect(holePixels).toBeGreaterThan(40);
    expect(mask[14 * 28 + 14], 'the centre of the strokes is in the hole').toBe(1);
    expect(mask[2 * 28 + 2], 'a corner is not').toBe(0);

    await page.waitForSelector('#status[data-state="done"]', { timeout: 180_000 });
    const previews = await page.evaluate(() => (window as any).previewSrcs.size as number);
    expect(previews, 'distinct previews seen').toBeGreaterThanOrEqual(2);
    expect(await page.getAttribute('#start', 'src')).toMatch(/^data:image\/png;base64,/);
    expect(await page.textContent('#stats')).toContain('step 400/400');

    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, 'serve.png'), fullPage: true });
    if (process.env.RS_UPDATE_SCREENSHOT) copyFileSync(join(OUT, 'serve.png'), join(ROOT, 'docs', 'playground.png'));

    // Download: each PNG at the model's resolution, and the manifest, by their links.
    const href = (await page.getAttribute('#results a[href$="-inpainted.png"]', 'href'))!;
    const res = await fetch(new URL(href, pg.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await res.arrayBuffer());
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height]).toEqual([28, 28]);
    const manifestHref = (await page.getAttribute('#results a[download="manifest.json"]', 'href'))!;
    const manifest = (await (await fetch(new URL(manifestHref, pg.url))).json()) as any;
    expect(manifest.entries).toHaveLength(1);
    expect(manifest.entries[0]).toMatchObject({ file: 'fashion-mnist-test-0-inpainted.png', task: 'inpaint', source: 'fashion-mnist-test-0', settings: { iterations: 400, model: 'fashion-robust' } });
    const zipHref = (await page.getAttribute('#results a[href$="results.zip"]', 'href'))!;
    const zip = Buffer.from(await (await fetch(new URL(zipHref, pg.url))).arrayBuffer());
    expect(zip.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
    const pageHref = (await page.getAttribute('#results a:text("result page")', 'href'))!;
    const resultPage = await (await fetch(new URL(pageHref, pg.url))).text();
    expect(resultPage).toContain('fashion-mnist-test-0-inpainted.png');
    expect(resultPage).toContain('manifest.json');
  }, 240_000);

  it('offers sketch-to-image and the feature tasks, with the controls each needs', async () => {
    const submit = async () => {
      const [request] = await Promise.all([page.waitForRequest((r) => r.url().endsWith('/api/jobs') && r.method() === 'POST'), page.click('#run')]);
      await page.waitForSelector('#status[data-state="done"]', { timeout: 120_000 });
      return request.postDataJSON();
    };
    await page.fill('#iterations', '20');
    await page.fill('#previews', '2');

    await page.selectOption('#task', 'sketchToImage');
    await page.click('.example[data-index="0"]');
    await page.selectOption('#class', '9');
    expect(await page.textContent('#class-label')).toBe('The sketch shows');
    expect(await page.isVisible('#feature')).toBe(false);
    let body = await submit();
    expect(body).toMatchObject({ task: 'sketchToImage', class: '9', source: { example: 0 } });
    expect(body.mask).toBeUndefined();
    expect(await page.textContent('#preview-caption')).toMatch(/reads as .* \(target Ankle boot\)/);
    expect(await page.locator('#results a[href$="-sketch.png"]').count()).toBe(1);

    // Visualize a unit from noise: no image, no class; the note names units worth a look.
    await page.selectOption('#task', 'visualizeFeature');
    expect(await page.isVisible('#image-choice')).toBe(false);
    expect(await page.isVisible('#class')).toBe(false);
    const note = (await page.textContent('#feature-note'))!;
    const unit = Number(/worth a look: (\d+), (\d+)/.exec(note)![2]);
    await page.fill('#feature', String(unit));
    await page.fill('#count', '2');
    body = await submit();
    expect(body).toMatchObject({ task: 'visualizeFeature', feature: unit, from: 'noise', count: 2 });
    expect(body.source).toBeUndefined();
    expect(body.class).toBeUndefined();
    expect(await page.locator(`#results a[href$="noise-unit-${unit}-1.png"]`).count()).toBe(1);
    // ... and from the image, which brings the image panel back.
    await page.selectOption('#from', 'image');
    expect(await page.isVisible('#image-choice')).toBe(true);
    expect(await page.isVisible('#count')).toBe(false);
    body = await submit();
    expect(body).toMatchObject({ task: 'visualizeFeature', feature: unit, from: 'image', source: { example: 0 } });

    // Paint the unit where a stroke is drawn.
    await page.selectOption('#task', 'paintFeature');
    expect(await page.textContent('#mask-note')).toContain('where to paint');
    await page.click('#clear-mask');
    const box = (await page.locator('#canvas').boundingBox())!;
    await page.mouse.move(box.x + 0.4 * box.width, box.y + 0.5 * box.height);
    await page.mouse.down();
    await page.mouse.move(box.x + 0.6 * box.width, box.y + 0.5 * box.height, { steps: 8 });
    await page.mouse.up();
    body = await submit();
    expect(body).toMatchObject({ task: 'paintFeature', feature: unit, source: { example: 0 } });
    expect(Buffer.from(body.mask, 'base64')[14 * 28 + 14]).toBe(1);

    await page.selectOption('#task', 'invert');
    body = await submit();
    expect(body).toMatchObject({ task: 'invert', source: { example: 0 }, randomSeed: 0 });
    expect(await page.locator('#results a[href$="-inverted.png"]').count()).toBe(1);
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('shows its place in the queue, then cancels a running job (ERR_ABORTED)', async () => {
    // Another client's long job holds the model.
    const blocker = (await (
      await fetch(`${pg.url}/api/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fashion-robust', task: 'generate', class: 7, seed: 'uniform', count: 16, iterations: 10000, previews: 0 }),
      })
    ).json()) as any;
    expect(blocker.state).toBe('running');
    await page.selectOption('#task', 'translate');
    await page.selectOption('#class', '3');
    await page.fill('#iterations', '10000');
    await page.fill('#previews', '0');
    await page.click('#run');
    await page.waitForSelector('#status[data-state="queued"]');
    expect((await statusOf()).text).toContain('position 1');
    await page.waitForFunction(() => /1 waiting/.test(document.getElementById('queue-info')!.textContent ?? ''));
    await fetch(`${pg.url}/api/jobs/${blocker.id}/cancel`, { method: 'POST' });
    await page.waitForSelector('#status[data-state="running"]');
    await page.waitForFunction(() => /step \d+\/10000/.test(document.getElementById('stats')!.textContent ?? ''), undefined, { timeout: 60_000 });
    await page.click('#cancel');
    await page.waitForSelector('#status[data-state="cancelled"]', { timeout: 30_000 });
    const s = await statusOf();
    expect(s.text).toContain('cancelled');
    expect(s.text).toContain('ERR_ABORTED');
    const b = (await (await fetch(`${pg.url}/api/jobs/${blocker.id}`)).json()) as any;
    expect(b.state).toBe('cancelled');
    expect(b.error.code).toBe('ERR_ABORTED');
    expect(await page.isEnabled('#run')).toBe(true);
  }, 180_000);

  it('reports a refused upload on the page with its code', async () => {
    await page.selectOption('#task', 'inpaint');
    await page.setInputFiles('#upload', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('this is not a PNG') });
    await page.waitForFunction(() => (document.getElementById('upload-error')!.textContent ?? '').length > 0);
    expect(await page.textContent('#upload-error')).toContain('ERR_BAD_IMAGE');
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#fff' } }).png().toBuffer();
    await page.setInputFiles('#upload', { name: 'white.png', mimeType: 'image/png', buffer: png });
    await page.waitForFunction(() => !document.querySelector('.example.selected'));
    expect(await page.textContent('#upload-error')).toBe('');
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
