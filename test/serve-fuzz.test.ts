// A bounded fuzz of the playground's HTTP API on loopback: a few thousand random and malformed
// requests (methods, paths, Host/Origin/auth headers, JSON and multipart bodies, huge, negative
// and NaN fields, bad tokens). The server must keep answering, no response may carry a server
// path or a stack trace, and a 5xx may only be the generic ERR_INTERNAL. A model directory with a
// broken model in it makes the library fail with its own (path-carrying) message on purpose.
import { writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { setThreads } from '../lib/index.js';
import { startPlayground, type Playground } from '../lib/serve/server.js';
import { tempDir } from './helpers.js';
import { raw } from './serve-helpers.js';

const ROOT = join(import.meta.dirname, '..');
const RUNS = 3000;

describe('the playground under a fuzz of its HTTP API', () => {
  let pg: Playground;
  let brokenDir: string;
  let cookie: string;
  let png: Buffer;
  const logged: string[] = [];
  beforeAll(async () => {
    setThreads(1);
    brokenDir = tempDir('rs-fuzz-models-');
    writeFileSync(join(brokenDir, 'broken.pt'), 'not a TorchScript archive');
    // Small bounds: the jobs the fuzz gets through are short, and a long one is cut after 2 s.
    pg = await startPlayground({ port: 0, device: 'cpu', modelDirs: [brokenDir], maxIterations: 5, maxCount: 2, maxPreviews: 2, maxQueue: 4, jobTimeoutMs: 2000, maxUploadBytes: 64 * 1024 });
    const visit = await raw(pg.port, 'GET', `/?token=${pg.token}`);
    cookie = String(visit.headers['set-cookie']).split(';')[0]!;
    png = await sharp({ create: { width: 12, height: 12, channels: 3, background: '#456' } }).png().toBuffer();
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void logged.push(a.join(' ')));
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await pg?.close();
    setThreads('auto');
  });

  it(`answers ${RUNS} random and malformed requests without a 5xx that carries a path`, async () => {
    const port = () => pg.port;
    const id = fc.oneof(fc.constantFrom('x', '0', '..', '%2e%2e', 'a'.repeat(300), '%00', '-1', 'NaN'), fc.base64String({ maxLength: 30 }).map((s) => s.replace(/[+/=]/g, '_')), fc.string({ maxLength: 20 }).map(encodeURIComponent));
    const modelName = fc.oneof(fc.constantFrom('fashion-robust', 'fashion-standard', 'broken', '../models/fashion-robust.pt', '/etc/passwd', '', 'broken.pt', '~root'), fc.string({ maxLength: 12 }));
    const path = fc.oneof(
      fc.constantFrom('/', '/index.html', '/app.js', '/style.css', '/api/models', '/api/queue', '/api/examples', '/api/uploads', '/api/jobs', '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '//api/queue', '/api//queue', '/api/queue?token=', '/?token=bad', '/favicon.ico', '/jobs/'),
      fc.tuple(modelName, fc.constantFrom('', '/input.png?example=0', '/input.png?example=-1', '/input.png?example=1e9', '/input.png?upload=x', '/input.png')).map(([m, rest]) => `/api/models/${encodeURIComponent(m)}${rest}`),
      fc.tuple(id, fc.constantFrom('', '/cancel', '/events', '/results.zip', '/files/manifest.json', '/files/..%2f..%2fpackage.json')).map(([j, rest]) => `/api/jobs/${j}${rest}`),
      id.map((j) => `/jobs/${j}`),
      fc.oneof(fc.nat(), fc.integer({ min: -5, max: 5 }), fc.constant(1e20)).map((n) => `/api/examples/${n}.png`),
      fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`),
    );
    const number = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53, 1e308, -1e308, 0.5), fc.string({ maxLength: 5 }), fc.constant(null), fc.boolean());
    const job = fc.record(
      {
        model: modelName,
        task: fc.oneof(fc.constantFrom('generate', 'inpaint', 'superResolve', 'translate', 'visualizeFeature', 'paintFeature', 'invert', 'sketchToImage'), fc.string({ maxLength: 8 })),
        class: number,
        seed: fc.constantFrom('mvn', 'uniform', 'gauss', 1),
        randomSeed: number,
        count: number,
        source: fc.oneof(fc.record({ example: number }), fc.record({ upload: id }), fc.anything()),
        mask: fc.oneof(fc.base64String({ maxLength: 2000 }), number),
        factor: number,
        feature: number,
        from: fc.constantFrom('noise', 'image', 'x'),
        iterations: number,
        eps: number,
        step: number,
        previews: number,
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    );
    // Jobs close to valid ones (a field or two off now and then), so that some run.
    const plausibleJob = fc.record(
      {
        model: fc.oneof({ arbitrary: fc.constantFrom('fashion-robust', 'fashion-standard'), weight: 9 }, { arbitrary: modelName, weight: 1 }),
        task: fc.constantFrom('generate', 'inpaint', 'superResolve', 'translate', 'visualizeFeature', 'paintFeature', 'invert', 'sketchToImage'),
        class: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 9 }), weight: 9 }, { arbitrary: number, weight: 1 }),
        seed: fc.constantFrom('mvn', 'uniform'),
        count: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 2 }), weight: 9 }, { arbitrary: number, weight: 1 }),
        source: fc.oneof({ arbitrary: fc.record({ example: fc.integer({ min: 0, max: 999 }) }), weight: 9 }, { arbitrary: fc.record({ upload: id }), weight: 1 }),
        feature: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 20 }), weight: 9 }, { arbitrary: number, weight: 1 }),
        factor: fc.integer({ min: 1, max: 7 }),
        iterations: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 5 }), weight: 9 }, { arbitrary: number, weight: 1 }),
        previews: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 2 }), weight: 9 }, { arbitrary: number, weight: 1 }),
        eps: fc.oneof({ arbitrary: fc.double({ min: 0, max: 5, noNaN: true }), weight: 9 }, { arbitrary: number, weight: 1 }),
      },
      { requiredKeys: ['model', 'task', 'iterations', 'previews'] },
    );
    const jsonBody = fc.oneof(
      plausibleJob.map((j) => JSON.stringify(j)),
      job.map((j) => JSON.stringify(j)),
      job.map((j) => JSON.stringify(j).replace(/:(-?\d+(\.\d+)?(e[+-]?\d+)?)/i, ':NaN')), // not JSON
      fc.json(),
      fc.string({ maxLength: 100 }),
      fc.constantFrom('', '{', 'null', '[]', '"x"', '{"model":"fashion-robust","task":"inpaint","source":{"example":0},"iterations":Infinity}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}'),
    );
    const boundary = 'fuzzboundary';
    const multipartBody = fc.oneof(
      fc.constant(Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`), png, Buffer.from(`\r\n--${boundary}--\r\n`)])),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n`), Buffer.from(b), Buffer.from(`\r\n--${boundary}--\r\n`)])),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.from(`--${boundary}\r\n`), Buffer.from(b)])), // cut short
      fc.constant(Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n`), Buffer.alloc(80 * 1024, 7), Buffer.from(`\r\n--${boundary}--\r\n`)])),
      fc.constant(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="other"\r\n\r\nvalue\r\n--${boundary}--\r\n`)),
      fc.constant(Buffer.from(`--${boundary}--\r\n`)),
    );
    const body = fc.oneof(
      jsonBody.map((b) => ({ type: 'application/json', data: Buffer.from(b) })),
      multipartBody.map((b) => ({ type: `multipart/form-data; boundary=${boundary}`, data: b })),
      fc.tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/json; charset=utf-16', 'image/png', '*/*'), fc.uint8Array({ maxLength: 200 })).map(([type, b]) => ({ type, data: Buffer.from(b) })),
      fc.constant(undefined),
    );
    const submission = fc.record({
      method: fc.constant('POST'),
      path: fc.constant('/api/jobs'),
      auth: fc.constantFrom('cookie', 'bearer'),
      host: fc.constant('ok'),
      origin: fc.constantFrom(undefined, 'same'),
      body: plausibleJob.map((j) => ({ type: 'application/json', data: Buffer.from(JSON.stringify(j)) })) as fc.Arbitrary<{ type: string; data: Buffer } | undefined>,
    });
    const anyRequest = fc.record({
      method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'POST', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      path,
      // Mostly requests that pass the guards, so that the routes behind them are reached.
      auth: fc.oneof({ arbitrary: fc.constantFrom('cookie', 'bearer'), weight: 8 }, { arbitrary: fc.constantFrom('none', 'bad-bearer', 'bad-cookie', 'token-query'), weight: 2 }),
      host: fc.oneof({ arbitrary: fc.constant('ok'), weight: 8 }, { arbitrary: fc.constantFrom('localhost', 'rebind', 'garbage'), weight: 2 }),
      origin: fc.oneof({ arbitrary: fc.constantFrom(undefined, 'same'), weight: 8 }, { arbitrary: fc.constantFrom('http://evil.example', 'null', 'not a url'), weight: 2 }),
      body,
    });
    const request = fc.oneof({ arbitrary: anyRequest, weight: 4 }, { arbitrary: submission, weight: 1 });

    let sent = 0;
    const fivexx: string[] = [];
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {};
        if (r.host === 'localhost') headers.host = `localhost:${port()}`;
        if (r.host === 'rebind') headers.host = 'rebind.example';
        if (r.host === 'garbage') headers.host = 'a:b:c';
        if (r.auth === 'cookie') headers.cookie = cookie;
        if (r.auth === 'bearer') headers.authorization = `Bearer ${pg.token}`;
        if (r.auth === 'bad-bearer') headers.authorization = `Bearer ${(pg.token ?? "x").slice(0, -1)}A`;
        if (r.auth === 'bad-cookie') headers.cookie = `${cookie.split('=')[0]}=${pg.token}`;
        let p = r.path;
        if (r.auth === 'token-query') p += `${p.includes('?') ? '&' : '?'}token=${pg.token}`;
        if (r.origin === 'same') headers.origin = `http://127.0.0.1:${port()}`;
        else if (r.origin) headers.origin = r.origin;
        const hasBody = r.body && r.method !== 'GET' && r.method !== 'HEAD';
        if (hasBody) headers['content-type'] = r.body!.type;
        let res: Awaited<ReturnType<typeof raw>>;
        try {
          res = await raw(port(), r.method, p, headers, hasBody ? r.body!.data : undefined);
        } catch (e) {
          // The client refusing to send it (an invalid path or header) is not the server's doing.
          if (/ERR_UNESCAPED_CHARACTERS|ERR_INVALID_CHAR|ERR_INVALID_HTTP_TOKEN/.test(String((e as { code?: string }).code))) return;
          throw e;
        }
        sent++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const where = `${r.method} ${p} -> ${res.status}: ${res.body.slice(0, 300)}`;
        for (const secretPath of [ROOT, brokenDir, homedir(), '/tmp/', 'node_modules']) expect(res.body, where).not.toContain(secretPath);
        // (the page's own script is served as it is; everything else is checked for traces)
        if (!String(res.headers['content-type']).includes('javascript')) expect(res.body, where).not.toMatch(/\n\s+at \S+ \(|\.pt\b.*No such file|Error: /);
        if (res.status >= 500 && r.method !== 'HEAD') {
          fivexx.push(`${where}\n  log: ${logged.slice(-3).join(' | ').slice(0, 600)}`);
          expect(JSON.parse(res.body).error.code, where).toBe('ERR_INTERNAL');
          expect(JSON.parse(res.body).error.message, where).toContain('internal error');
        }
      }),
      { numRuns: RUNS, seed: 20261202, endOnFailure: true },
    );
    expect(sent).toBeGreaterThan(RUNS * 0.9);
    // Still answering, and still working: a plain job runs to the end.
    const auth = { authorization: `Bearer ${pg.token}` };
    expect((await raw(pg.port, 'GET', '/api/queue', auth)).status).toBe(200);
    for (const client of [auth, { cookie }]) {
      for (const m of JSON.parse((await raw(pg.port, 'GET', '/api/queue', client)).body).models) {
        for (const j of m.mine) await raw(pg.port, 'POST', `/api/jobs/${j.id}/cancel`, client);
      }
    }
    const submitted = await raw(pg.port, 'POST', '/api/jobs', { ...auth, 'content-type': 'application/json' }, JSON.stringify({ model: 'fashion-robust', task: 'inpaint', source: { example: 3 }, iterations: 5, previews: 2 }));
    expect(submitted.status, submitted.body).toBe(202);
    const jobId = JSON.parse(submitted.body).id as string;
    let state = '';
    while (!['done', 'failed', 'cancelled'].includes(state)) {
      await new Promise((r) => setTimeout(r, 50));
      state = JSON.parse((await raw(pg.port, 'GET', `/api/jobs/${jobId}`, auth)).body).state;
    }
    expect(state).toBe('done');
    if (fivexx.length) console.info(`serve fuzz: the 5xx answers (generic, as required) and what the log says:\n${fivexx.slice(0, 5).join('\n')}`);
    console.info(`serve fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  }, 180_000);
});
