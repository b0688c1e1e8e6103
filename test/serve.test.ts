// `robust-synth serve`, the web playground: its previews (exact replays), its refusals (model
// paths, uploads, other origins, other Host names, no token, other clients' jobs), and the page in
// a real browser (Debian's chromium through playwright-core): draw a hole, watch previews, cancel,
// queue, download.
//
// The browser tests need /usr/bin/chromium (or RS_CHROMIUM=PATH); without it they FAIL. Set
// RS_SKIP_BROWSER=1 to skip them on purpose (docs/playground.md, "Tests").
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Classifier, inpaint, readFashionMnist, setThreads } from '../lib/index.js';
import { previewSchedule, withPreviews, type Preview } from '../lib/serve/previews.js';
import { startPlayground, type Playground } from '../lib/serve/server.js';
import { crc32, zipStore } from '../lib/serve/zip.js';
import { representationSize, spreadUnits } from '../lib/tasks/visualizeFeature.js';
import { PYTHON, tempDir } from './helpers.js';
import { raw } from './serve-helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CHROMIUM = process.env.RS_CHROMIUM ?? '/usr/bin/chromium';
/** The one way to leave the browser tests out: they fail, not skip, when chromium is missing. */
const SKIP_BROWSER = process.env.RS_SKIP_BROWSER === '1';
const OUT = join(ROOT, 'test-output');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

if (SKIP_BROWSER) console.warn('test/serve.test.ts: SKIPPING the browser tests (RS_SKIP_BROWSER=1)');

/** A new client of `pg`: visits the printed address, follows nothing, keeps the session cookie it is given. */
async function newClient(pg: Playground): Promise<string> {
  const r = await raw(pg.port, 'GET', `/?token=${pg.token}`);
  expect(r.status).toBe(303);
  const set = String(r.headers['set-cookie']);
  return set.split(';')[0]!;
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

describe('lib/serve, as a room of its own', () => {
  it('keeps every file under 400 lines and imports nothing from lib/cli', () => {
    const dir = join(ROOT, 'lib', 'serve');
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files).toEqual(expect.arrayContaining(['guards.ts', 'uploads.ts', 'routes-jobs.ts', 'routes-models.ts', 'result-page.ts', 'server.ts']));
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text.split('\n').length, f).toBeLessThanOrEqual(400);
      expect(text, f).not.toMatch(/from '\.\.\/cli\//);
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

  const bearer = () => ({ authorization: `Bearer ${pg.token}` });
  const get = (path: string) => fetch(pg.url + path, { headers: bearer() });
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(pg.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(), ...headers }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as any };
  };
  const waitFor = async (id: string) => {
    for (;;) {
      const s = (await (await get(`/api/jobs/${id}`)).json()) as any;
      if (s.state === 'done' || s.state === 'failed' || s.state === 'cancelled') return s;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const upload = async (bytes: Buffer, name: string, type: string) => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(bytes)], { type }), name);
    const res = await fetch(`${pg.url}/api/uploads`, { method: 'POST', body: form, headers: bearer() });
    return { status: res.status, json: (await res.json()) as any };
  };

  it('binds to loopback on a free port and serves the page', async () => {
    expect(pg.host).toBe('127.0.0.1');
    expect(pg.port).toBeGreaterThan(0);
    const res = await fetch(pg.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('robust-synth playground');
    const models = (await (await get('/api/models')).json()) as any;
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
    const details = (await (await get('/api/models/fashion-robust')).json()) as any;
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
        const png = Buffer.from(await (await get(done.result.files.find((f: any) => f.name === e.file).url)).arrayBuffer());
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
    // fetch() will not forge Host; a raw request does. Refused even with the token.
    for (const host of ['rebind.example:80', 'rebind.example', '127.0.0.1.rebind.example', 'localhost.rebind.example:80']) {
      expect((await raw(pg.port, 'GET', '/api/models', { host, ...bearer() })).status, host).toBe(403);
    }
    expect((await raw(pg.port, 'GET', '/', { host: 'rebind.example' })).status).toBe(403);
    expect((await raw(pg.port, 'GET', '/api/models', { host: `localhost:${pg.port}`, ...bearer() })).status).toBe(200);
  });
});

describe('the server beyond loopback, and under misuse', () => {
  let pg: Playground;
  beforeAll(async () => {
    pg = await startPlayground({ port: 0, maxQueue: 8 });
  });
  afterAll(async () => {
    await pg?.close();
  });
  const json = (r: { body: string }) => JSON.parse(r.body) as any;
  const as = (cookie: string) => ({ cookie });
  const postJson = (headers: Record<string, string>, path: string, body: unknown) =>
    raw(pg.port, 'POST', path, { 'content-type': 'application/json', ...headers }, JSON.stringify(body));
  const waitFor = async (headers: Record<string, string>, id: string) => {
    for (;;) {
      const s = json(await raw(pg.port, 'GET', `/api/jobs/${id}`, headers));
      if (s.state === 'done' || s.state === 'failed' || s.state === 'cancelled') return s;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('refuses a non-loopback bind without an allowed-host list (ERR_BAD_INPUT; the command exits 2)', async () => {
    for (const host of ['0.0.0.0', '::']) {
      await expect(startPlayground({ port: 0, host })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT', message: expect.stringContaining('--allowed-host') });
    }
    await expect(startPlayground({ port: 0, host: '0.0.0.0', allowedHosts: ['x.test'], token: false })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
    try {
      const { main } = await import('../lib/cli/index.js');
      const code = await Promise.race([main(['serve', '--host', '0.0.0.0', '--port', '0']), new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
      expect(code).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(errors.join('\n')).toContain('--allowed-host');
  });

  it('on 0.0.0.0 answers only its allowed names: a DNS-rebinding page (Host and Origin rebind.example) is refused', async () => {
    const wide = await startPlayground({ port: 0, host: '0.0.0.0', allowedHosts: ['playground.test'] });
    try {
      expect(wide.openUrl).toBe(`http://playground.test:${wide.port}/?token=${wide.token}`);
      const auth = { authorization: `Bearer ${wide.token}` };
      const rebind = { host: `rebind.example:${wide.port}`, origin: `http://rebind.example:${wide.port}` };
      expect((await raw(wide.port, 'GET', '/api/queue', { ...rebind, ...auth })).status).toBe(403);
      expect((await raw(wide.port, 'GET', '/api/queue', rebind)).status).toBe(403);
      const job = { model: 'fashion-robust', task: 'inpaint', source: { example: 0 }, iterations: 1 };
      expect((await raw(wide.port, 'POST', '/api/jobs', { ...rebind, ...auth, 'content-type': 'application/json' }, JSON.stringify(job))).status).toBe(403);
      const named = { host: `PLAYGROUND.test:${wide.port}` };
      expect((await raw(wide.port, 'GET', '/api/queue', named)).status, 'an allowed name still needs the token').toBe(401);
      expect((await raw(wide.port, 'GET', '/api/queue', { ...named, ...auth })).status).toBe(200);
      expect((await raw(wide.port, 'GET', '/api/queue', { host: `127.0.0.1:${wide.port}`, ...auth })).status, 'the machine itself, through loopback').toBe(200);
    } finally {
      await wide.close();
    }
  });

  it('needs its access token: the printed address sets an HttpOnly SameSite=Strict cookie and drops the token', async () => {
    expect(pg.token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, base64url
    expect(pg.openUrl).toBe(`${pg.url}/?token=${pg.token}`);
    expect((await raw(pg.port, 'GET', '/')).status, 'the page itself is public').toBe(200);
    for (const path of ['/api/models', '/api/queue', '/api/examples', '/jobs/x', '/api/jobs/x']) {
      const r = await raw(pg.port, 'GET', path);
      expect(r.status, path).toBe(401);
      expect(json(r).error.message).toContain('token');
    }
    expect((await postJson({}, '/api/jobs', { model: 'fashion-robust', task: 'inpaint', source: { example: 0 } })).status).toBe(401);
    for (const bad of ['', 'x', pg.token!.slice(1), `${pg.token}x`, pg.token!.toUpperCase()]) {
      expect((await raw(pg.port, 'GET', `/?token=${encodeURIComponent(bad)}`)).status, bad).toBe(401);
      expect((await raw(pg.port, 'GET', '/api/queue', { authorization: `Bearer ${bad}` })).status, bad).toBe(401);
      expect((await raw(pg.port, 'GET', '/api/queue', { cookie: `rs_session_${pg.port}=${bad}` })).status, bad).toBe(401);
    }
    const visit = await raw(pg.port, 'GET', `/?token=${pg.token}&x=1`);
    expect(visit.status).toBe(303);
    expect(visit.headers.location).toBe('/?x=1');
    const set = String(visit.headers['set-cookie']);
    expect(set).toMatch(new RegExp(`^rs_session_${pg.port}=[A-Za-z0-9_-]{43}; `));
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).not.toContain(pg.token!);
    expect((await raw(pg.port, 'GET', '/api/queue', { cookie: set.split(';')[0]! })).status).toBe(200);
    expect((await raw(pg.port, 'GET', '/api/queue', { authorization: `Bearer ${pg.token}` })).status).toBe(200);
  });

  it('--no-token (loopback only) still gives each page load its own session, and refuses bad --allowed-host values', async () => {
    await expect(startPlayground({ port: 0, allowedHosts: ['a/b'] })).rejects.toMatchObject({ code: 'ERR_BAD_INPUT' });
    const open = await startPlayground({ port: 0, token: false, allowedHosts: ['pg.test'] });
    try {
      expect(open.token).toBeUndefined();
      expect(open.openUrl).toBe(`${open.url}/`);
      const page = await raw(open.port, 'GET', '/');
      expect(page.status).toBe(200);
      const mine = { cookie: String(page.headers['set-cookie']).split(';')[0]! };
      expect(String(page.headers['set-cookie'])).toContain('HttpOnly');
      expect((await raw(open.port, 'GET', '/api/queue')).status, 'no token to ask for').toBe(200);
      expect((await raw(open.port, 'GET', '/api/queue', { host: 'rebind.example' })).status, 'the Host check stays').toBe(403);
      expect((await raw(open.port, 'GET', '/api/queue', { host: `pg.test:${open.port}` })).status, 'an allowed name').toBe(200);
      const job = JSON.parse((await raw(open.port, 'POST', '/api/jobs', { ...mine, 'content-type': 'application/json' }, JSON.stringify({ model: 'fashion-robust', task: 'generate', class: 1, seed: 'uniform', iterations: 3, previews: 0 }))).body);
      expect((await raw(open.port, 'GET', `/api/jobs/${job.id}`, mine)).status).toBe(200);
      expect((await raw(open.port, 'GET', `/api/jobs/${job.id}`)).status, 'a request without the cookie is another client').toBe(404);
      await raw(open.port, 'POST', `/api/jobs/${job.id}/cancel`, mine);
    } finally {
      await open.close();
    }
  });

  it('gives each client its own jobs and uploads: unguessable ids, another client gets 404', async () => {
    const a = as(await newClient(pg));
    const b = as(await newClient(pg));
    const blocker = json(await postJson(a, '/api/jobs', { model: 'fashion-robust', task: 'generate', class: 7, seed: 'uniform', count: 16, iterations: 10000, previews: 0 }));
    const png = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#777' } }).png().toBuffer();
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'grey.png');
    const up = (await (await fetch(`${pg.url}/api/uploads`, { method: 'POST', body: form, headers: a })).json()) as any;
    const queued = json(await postJson(a, '/api/jobs', { model: 'fashion-robust', task: 'inpaint', source: { upload: up.id }, iterations: 5 }));
    try {
      for (const id of [blocker.id, queued.id, up.id]) expect(id).toMatch(/^[A-Za-z0-9_-]{22,}$/); // >= 128 random bits
      const mine = json(await raw(pg.port, 'GET', '/api/queue', a));
      expect(mine.models.find((m: any) => m.name === 'fashion-robust').mine.map((j: any) => j.id)).toEqual([blocker.id, queued.id]);
      const theirs = await raw(pg.port, 'GET', '/api/queue', b);
      const robustB = json(theirs).models.find((m: any) => m.name === 'fashion-robust');
      expect(robustB).toMatchObject({ waiting: 1, running: { mine: false }, mine: [] });
      for (const id of [blocker.id, queued.id]) {
        expect(theirs.body).not.toContain(id);
        for (const [method, path] of [['GET', `/api/jobs/${id}`], ['POST', `/api/jobs/${id}/cancel`], ['GET', `/api/jobs/${id}/events`], ['GET', `/api/jobs/${id}/results.zip`], ['GET', `/api/jobs/${id}/files/manifest.json`], ['GET', `/jobs/${id}`]] as const) {
          expect((await raw(pg.port, method, path, b)).status, `${method} ${path}`).toBe(404);
        }
      }
      expect(json(await raw(pg.port, 'GET', `/api/jobs/${blocker.id}`, a)).state).toBe('running');
      const stolen = await postJson(b, '/api/jobs', { model: 'fashion-robust', task: 'inpaint', source: { upload: up.id } });
      expect(stolen.status).toBe(404);
      expect((await raw(pg.port, 'GET', `/api/models/fashion-robust/input.png?upload=${up.id}`, b)).status).toBe(404);
      expect((await raw(pg.port, 'GET', `/api/models/fashion-robust/input.png?upload=${up.id}`, a)).status).toBe(200);
    } finally {
      await raw(pg.port, 'POST', `/api/jobs/${queued.id}/cancel`, a);
      await raw(pg.port, 'POST', `/api/jobs/${blocker.id}/cancel`, a);
      await waitFor(a, blocker.id);
    }
  }, 60_000);

  it('a waiting job keeps its upload: 64 newer uploads do not make it fail', async () => {
    const a = as(await newClient(pg));
    const blocker = json(await postJson(a, '/api/jobs', { model: 'fashion-robust', task: 'generate', class: 7, seed: 'uniform', count: 16, iterations: 10000, previews: 0 }));
    const sendPng = async (shade: number) => {
      const png = await sharp({ create: { width: 28, height: 28, channels: 3, background: { r: shade, g: shade, b: shade } } }).png().toBuffer();
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), `shade-${shade}.png`);
      const res = await fetch(`${pg.url}/api/uploads`, { method: 'POST', body: form, headers: a });
      expect(res.status).toBe(201);
      return (await res.json()) as any;
    };
    try {
      const first = await sendPng(200);
      const waiting = json(await postJson(a, '/api/jobs', { model: 'fashion-robust', task: 'inpaint', source: { upload: first.id }, iterations: 5, previews: 0 }));
      expect(waiting.state).toBe('queued');
      for (let i = 0; i < 64; i++) await sendPng(i);
      // The upload itself is gone (the latest 64 are kept) ...
      expect((await postJson(a, '/api/jobs', { model: 'fashion-robust', task: 'inpaint', source: { upload: first.id } })).status).toBe(404);
      await raw(pg.port, 'POST', `/api/jobs/${blocker.id}/cancel`, a);
      // ... but the job took its bytes when it was submitted.
      const done = await waitFor(a, waiting.id);
      expect(done.state, JSON.stringify(done.error)).toBe('done');
      expect(done.result.entries[0].source).toBe('upload-shade-200');
    } finally {
      await raw(pg.port, 'POST', `/api/jobs/${blocker.id}/cancel`, a);
      await waitFor(a, blocker.id);
    }
  }, 120_000);

  it('answers a library error it does not map with a generic 500 and a log line, never a path', async () => {
    const dir = tempDir('rs-broken-model-');
    writeFileSync(join(dir, 'broken.pt'), 'this is not a TorchScript archive');
    const broken = await startPlayground({ port: 0, modelDirs: [dir] });
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
    try {
      const auth = { authorization: `Bearer ${broken.token}` };
      for (const path of ['/api/models/broken', '/api/models/broken/input.png?example=0']) {
        const r = await raw(broken.port, 'GET', path, auth);
        expect(r.status, path).toBe(500);
        expect(json(r).error).toEqual({ code: 'ERR_INTERNAL', message: expect.stringContaining('internal error') });
        expect(r.body).not.toContain(dir);
        expect(r.body).not.toMatch(/\.pt\b|\/tmp\/|\s+at /);
      }
      const job = json(await raw(broken.port, 'POST', '/api/jobs', { ...auth, 'content-type': 'application/json' }, JSON.stringify({ model: 'broken', task: 'inpaint', source: { example: 0 } })));
      const s = await (async () => {
        for (;;) {
          const st = json(await raw(broken.port, 'GET', `/api/jobs/${job.id}`, auth));
          if (st.state === 'failed') return st;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      expect(s.error.message).toContain('internal error');
      expect(JSON.stringify(s)).not.toContain(dir);
    } finally {
      spy.mockRestore();
      await broken.close();
    }
    expect(errors.some((e) => e.includes(dir)), 'the detail goes to the log').toBe(true);
  });

  it('refuses a task without its image with a RobustSynthError', async () => {
    const { runJob } = await import('../lib/serve/run.js');
    const { RobustSynthError } = await import('../lib/errors.js');
    const clf = await Classifier.load('fashion-robust', { device: 'cpu' });
    try {
      const err = await runJob({ model: 'fashion-robust', task: 'inpaint', seed: 'mvn', randomSeed: 0, count: 1, previews: 0, iterations: 1 }, clf, {
        signal: new AbortController().signal, onProgress: () => {}, onPreview: () => {},
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RobustSynthError);
      expect(err).toMatchObject({ code: 'ERR_BAD_INPUT', message: 'inpaint needs a source image' });
    } finally {
      await clf.dispose();
    }
  });
});

describe.skipIf(SKIP_BROWSER)('the page, in Chromium', () => {
  let pg: Playground;
  let context: import('playwright-core').BrowserContext;
  let page: import('playwright-core').Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install it with \`apt-get install chromium\` (scripts/setup-debian.sh does), point RS_CHROMIUM at one, ` +
          'or set RS_SKIP_BROWSER=1 to skip the browser tests on purpose',
      );
    }
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
    // The address serve prints: the token becomes a cookie, and the address loses it.
    await page.goto(pg.openUrl);
    await page.waitForSelector('body[data-ready="true"]');
  });
  afterAll(async () => {
    await context?.close();
    await pg?.close();
  });

  const statusOf = async () => ({ state: await page.getAttribute('#status', 'data-state'), text: (await page.textContent('#status')) ?? '' });
  /** A GET as the page makes it (its session cookie): status, content type, body. */
  const pageGet = (href: string) =>
    page.evaluate(async (h) => {
      const r = await fetch(h);
      const bytes = new Uint8Array(await r.arrayBuffer());
      let s = '';
      for (const b of bytes) s += String.fromCharCode(b);
      return { status: r.status, type: r.headers.get('content-type'), body: btoa(s) };
    }, href).then((r) => ({ ...r, body: Buffer.from(r.body, 'base64') }));
  const bearer = () => ({ authorization: `Bearer ${pg.token}` });

  it('enters with the printed address: the token becomes an HttpOnly, SameSite=Strict cookie and leaves the address', async () => {
    expect(page.url()).toBe(`${pg.url}/`);
    const cookies = await context.cookies(pg.url);
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: `rs_session_${pg.port}`, httpOnly: true, sameSite: 'Strict' });
    expect(cookies[0]!.value).not.toBe(pg.token);
    expect(await page.evaluate(() => document.cookie)).toBe('');
    expect(await page.locator('#no-access').count()).toBe(0);
  });

  it('shows empty frames, not broken images with their alt text, before the first run', async () => {
    expect(await page.isVisible('#start')).toBe(false);
    expect(await page.isVisible('#preview')).toBe(false);
    expect(await page.locator('.figures .frame').count()).toBe(2);
    for (const frame of await page.locator('.figures .frame').all()) {
      const box = (await frame.boundingBox())!;
      expect(box.width).toBeGreaterThan(100);
      expect(box.height).toBeGreaterThan(100);
    }
  });

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
    const res = await pageGet(href);
    expect(res.status).toBe(200);
    expect(res.type).toBe('image/png');
    expect((await fetch(new URL(href, pg.url))).status, 'not without the session').toBe(401);
    expect((await fetch(new URL(href, pg.url), { headers: bearer() })).status, 'nor by another client').toBe(404);
    const png = res.body;
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height]).toEqual([28, 28]);
    const manifestHref = (await page.getAttribute('#results a[download="manifest.json"]', 'href'))!;
    const manifest = JSON.parse((await pageGet(manifestHref)).body.toString('utf8')) as any;
    expect(manifest.entries).toHaveLength(1);
    expect(manifest.entries[0]).toMatchObject({ file: 'fashion-mnist-test-0-inpainted.png', task: 'inpaint', source: 'fashion-mnist-test-0', settings: { iterations: 400, model: 'fashion-robust' } });
    const zipHref = (await page.getAttribute('#results a[href$="results.zip"]', 'href'))!;
    const zip = (await pageGet(zipHref)).body;
    expect(zip.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
    const pageHref = (await page.getAttribute('#results a:text("result page")', 'href'))!;
    const resultPage = (await pageGet(pageHref)).body.toString('utf8');
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
        headers: { 'content-type': 'application/json', ...bearer() },
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
    await fetch(`${pg.url}/api/jobs/${blocker.id}/cancel`, { method: 'POST', headers: bearer() });
    await page.waitForSelector('#status[data-state="running"]');
    await page.waitForFunction(() => /step \d+\/10000/.test(document.getElementById('stats')!.textContent ?? ''), undefined, { timeout: 60_000 });
    await page.click('#cancel');
    await page.waitForSelector('#status[data-state="cancelled"]', { timeout: 30_000 });
    const s = await statusOf();
    expect(s.text).toContain('cancelled');
    expect(s.text).toContain('ERR_ABORTED');
    const b = (await (await fetch(`${pg.url}/api/jobs/${blocker.id}`, { headers: bearer() })).json()) as any;
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

  it('without its session the page says how to get in, and runs nothing', async () => {
    await context.clearCookies();
    await page.goto(pg.url);
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('#no-access')).toContain('token');
    expect(await page.isEnabled('#run')).toBe(false);
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
