/**
 * `robust-synth serve`: a local web playground. A page (lib/serve/public/, plain HTML and
 * JavaScript) picks a model, a task, a class and an image, draws the inpainting hole, and
 * watches the run over server-sent events: status (with the place in the model's queue),
 * progress (step, loss) and previews (previews.ts). Results stay in memory for download.
 *
 * What it accepts from a request, and why (docs/security.md, "The playground server"):
 *  - model names from the configured list only (the embedded models and --model-dir
 *    directories), never a path: loading a model runs its code;
 *  - uploads up to maxUploadBytes, PNG, JPEG or WebP as sharp decodes them;
 *  - bounded work: iterations, images per job, previews, queue length, a timeout per job;
 *  - loopback by default, and on loopback only Host headers naming it (no DNS rebinding);
 *    state-changing requests from another origin are refused.
 * Every refusal is a 4xx JSON `{ error: { code, message } }` carrying the library's error code.
 */
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { basename, extname, join, resolve } from 'node:path';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import sharp, { type Metadata } from 'sharp';
import { packageRoot } from '../../binding/index.js';
import { Classifier, type Device } from '../classifier.js';
import { FASHION_CLASSES, readFashionMnist, type LabeledImages } from '../datasets.js';
import { RobustSynthError, type ErrorCode } from '../errors.js';
import { decodeImage, encodePng } from '../images.js';
import { listModels, modelsDir, readCard, type ModelCard } from '../models.js';
import { SEED_KINDS, type SeedKind } from '../seeds.js';
import { defaultSettings } from '../tasks/common.js';
import { defaultSeedsFor } from '../tasks/generate.js';
import { representationSize, spreadUnits } from '../tasks/visualizeFeature.js';
import type { ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { Job, ModelSlot, Scheduler, type JobEvent } from './jobs.js';
import { FEATURE_UNIT_TASKS, needsSource, PLAYGROUND_TASKS as TASKS, type JobSpec, type Source } from './run.js';
import { zipStore } from './zip.js';

export interface PlaygroundOptions {
  /** Default 5177; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Directories of further models (.pt with their cards); their names join the embedded ones. */
  modelDirs?: string[];
  device?: Device;
  /** Largest upload accepted, in bytes (default 5 MB). */
  maxUploadBytes?: number;
  /** Most PGD iterations a job may ask for (default 10,000). */
  maxIterations?: number;
  /** Most images a generate job may ask for (default 16). */
  maxCount?: number;
  /** Most previews per run (default 16; each is one copy of the current images, see previews.ts). */
  maxPreviews?: number;
  /** Jobs waiting per model beyond which new ones are refused with 429 (default 8). */
  maxQueue?: number;
  /** A job running longer is aborted (default 10 minutes). */
  jobTimeoutMs?: number;
  /** Finished jobs kept for download (default 50). */
  keepJobs?: number;
  /** Where the Fashion-MNIST examples are read (default: the Debian package's directory). */
  fashionMnistDir?: string;
}

export interface Playground {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly app: FastifyInstance;
  /** Cancels every job, ends the event streams, stops listening and disposes of the models. */
  close(): Promise<void>;
}

const UPLOAD_FORMATS = ['png', 'jpeg', 'webp'];
const MAX_UPLOADS = 64;
const MAX_UPLOAD_PIXELS = 40_000_000;
/** Fashion-MNIST test images offered as examples: the first EXAMPLE_POOL, two of each class listed. */
const EXAMPLE_POOL = 1000;
const EXAMPLES_PER_CLASS = 2;

/** The directory the page is served from: lib/serve/public in the package (also when running from dist/). */
export function publicDir(): string {
  return join(packageRoot(), 'lib', 'serve', 'public');
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

function httpError(status: number, code: ErrorCode, message: string): RobustSynthError {
  return Object.assign(new RobustSynthError(code, message), { statusCode: status });
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  ERR_BAD_INPUT: 400,
  ERR_BAD_IMAGE: 400,
  ERR_MODEL_NOT_ALLOWED: 400,
  ERR_MODEL_NOT_FOUND: 404,
  ERR_OUT_OF_MEMORY: 413,
  ERR_DISPOSED: 503,
};

/** Any error as the HTTP status and the `{ code, message }` the client gets. */
function describe(e: unknown): { status: number; code: ErrorCode; message: string } {
  const err = e as { statusCode?: unknown; code?: unknown; message?: unknown };
  const robust = typeof err?.code === 'string' && err.code.startsWith('ERR_');
  const code = (robust ? err.code : 'ERR_BAD_INPUT') as ErrorCode;
  const given = typeof err?.statusCode === 'number' ? err.statusCode : undefined;
  const status = given ?? (robust ? STATUS[code] ?? 500 : 500);
  if (!robust && status >= 500) return { status, code: 'ERR_INTERNAL', message: String(err?.message ?? e) };
  return { status, code, message: String(err?.message ?? e) };
}

interface Upload {
  id: string;
  name: string;
  format: string;
  width: number;
  height: number;
  bytes: Buffer;
}

interface ModelEntry {
  slot: ModelSlot;
  card?: ModelCard;
}

/** The configured models by name: --model-dir directories first (as name lookup does), then the embedded ones. */
const representations = new WeakMap<Classifier, Promise<{ size: number; units: number[] } | null>>();
/**
 * The size of a model's features() (from its card, else measured once on a blank input) and
 * eight units worth showing (spreadUnits); null for a model without features().
 */
function representationOf(clf: Classifier): Promise<{ size: number; units: number[] } | null> {
  let r = representations.get(clf);
  if (!r) {
    r = (async () => {
      const [c, h, w] = clf.inputShape;
      const size = representationSize(clf) ?? (await clf.features({ data: new Float32Array(c * h * w), shape: [1, c, h, w] })).shape[1];
      return { size, units: spreadUnits(clf, 8, size) };
    })().catch(() => null);
    representations.set(clf, r);
  }
  return r;
}

function configuredModels(dirs: string[], load: (path: string) => Promise<Classifier>): Map<string, ModelEntry> {
  const out = new Map<string, ModelEntry>();
  const embedded = modelsDir();
  const all = listModels(dirs);
  for (const dir of [...dirs.map((d) => resolve(d)), embedded]) {
    for (const m of all) {
      if (resolve(m.path, '..') !== dir) continue;
      const name = basename(m.path, extname(m.path));
      if (out.has(name)) continue;
      out.set(name, { slot: new ModelSlot(name, m.path, () => load(m.path)), card: readCard(m.path) });
    }
  }
  return out;
}

/** Starts the playground; resolves once it listens. */
export async function startPlayground(options: PlaygroundOptions = {}): Promise<Playground> {
  const host = options.host ?? '127.0.0.1';
  const port = is.integer('port', options.port ?? 5177, { min: 0, max: 65535 });
  const modelDirs = (options.modelDirs ?? []).map((d) => resolve(d));
  const device = options.device ?? 'auto';
  const maxUploadBytes = is.integer('maxUploadBytes', options.maxUploadBytes ?? 5 * 1024 * 1024, { min: 1 });
  const maxIterations = is.integer('maxIterations', options.maxIterations ?? 10_000, { min: 1, max: 1e7 });
  const maxCount = is.integer('maxCount', options.maxCount ?? 16, { min: 1, max: 1024 });
  const maxPreviews = is.integer('maxPreviews', options.maxPreviews ?? 16, { min: 0, max: 1000 });
  const loopback = isLoopback(host);

  const models = configuredModels(modelDirs, (path) => Classifier.load(path, { device, allowedDirs: modelDirs }));
  const scheduler = new Scheduler({ maxQueue: options.maxQueue ?? 8, jobTimeoutMs: options.jobTimeoutMs ?? 10 * 60_000, keepJobs: options.keepJobs ?? 50 });
  const uploads = new Map<string, Upload>();
  const streams = new Set<ServerResponse>();

  let examples: LabeledImages | undefined;
  let examplesError: string | undefined;
  const readExamples = (): LabeledImages | undefined => {
    if (examples || examplesError) return examples;
    try {
      examples = readFashionMnist('test', { limit: EXAMPLE_POOL, ...(options.fashionMnistDir ? { dir: options.fashionMnistDir } : {}) });
    } catch (e) {
      examplesError = (e as Error).message;
    }
    return examples;
  };

  /** A model by the name a request gives: configured names only, never a path. */
  const model = (v: unknown): ModelEntry => {
    const name = is.nonEmptyString('model', v);
    const entry = models.get(name);
    if (entry) return entry;
    if (/[/\\]|\.\.|\.pt$/i.test(name) || name.startsWith('~')) {
      throw httpError(400, 'ERR_MODEL_NOT_ALLOWED', `model must be the name of a configured model (${[...models.keys()].join(', ')}); paths are not accepted`);
    }
    throw httpError(404, 'ERR_MODEL_NOT_FOUND', `no model named '${name}'; this server has: ${[...models.keys()].join(', ')}`);
  };

  /** An example's pixels, or an upload's, at the model's input shape. */
  const sourceImage = async (source: Source, shape: [number, number, number]): Promise<{ image: ImageBatch; name: string }> => {
    const [c, h, w] = shape;
    if (source.kind === 'example') {
      const ex = readExamples();
      if (!ex) throw httpError(404, 'ERR_BAD_INPUT', `no examples: ${examplesError}`);
      const plane = 28 * 28;
      const one: ImageBatch = { data: ex.images.data.slice(source.index * plane, (source.index + 1) * plane), shape: [1, 1, 28, 28] };
      const name = `fashion-mnist-test-${source.index}`;
      if (c === 1 && h === 28 && w === 28) return { image: one, name };
      return { image: await decodeImage(await encodePng(one, 0), { channels: c, height: h, width: w }), name };
    }
    const up = uploads.get(source.id);
    if (!up) throw httpError(404, 'ERR_BAD_INPUT', `no upload ${source.id} (uploads are kept in memory, the latest ${MAX_UPLOADS}; upload it again)`);
    return { image: await decodeImage(up.bytes, { channels: c, height: h, width: w }), name: `upload-${up.name}` };
  };

  const parseSource = (v: unknown): Source => {
    if (!is.isObject(v)) throw is.invalid('source', '{ example: INDEX } or { upload: ID }', v);
    if (v.example !== undefined) return { kind: 'example', index: is.integer('source.example', v.example, { min: 0, max: EXAMPLE_POOL - 1 }) };
    if (v.upload !== undefined) {
      const id = is.nonEmptyString('source.upload', v.upload);
      if (!uploads.has(id)) throw httpError(404, 'ERR_BAD_INPUT', `no upload ${id}; upload the image again`);
      return { kind: 'upload', id };
    }
    throw is.invalid('source', '{ example: INDEX } or { upload: ID }', v);
  };

  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024, forceCloseConnections: true });
  await app.register(multipart, { limits: { fileSize: maxUploadBytes, files: 1, fields: 4, parts: 5 } });
  await app.register(fastifyStatic, { root: publicDir(), prefix: '/', index: 'index.html', cacheControl: false });

  app.setErrorHandler((e, _req, reply) => {
    const d = describe(e);
    if (d.status >= 500) console.error(`robust-synth serve: ${d.message}`);
    void reply.code(d.status).type('application/json').send({ error: { code: d.code, message: d.message } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'ERR_BAD_INPUT', message: `no such route: ${req.method} ${req.url.split('?')[0]}` } });
  });

  // Loopback only answers to loopback names (a rebinding page's Host is its own domain), and
  // nothing that changes state is accepted from another origin (a page the user visits cannot
  // start jobs or upload through the user's browser).
  app.addHook('onRequest', async (req) => {
    const hostHeader = req.headers.host ?? '';
    const hostname = hostHeader.replace(/:\d+$/, '');
    if (loopback && !isLoopback(hostname)) {
      throw httpError(403, 'ERR_BAD_INPUT', `Host '${hostHeader}' is not this server's loopback address; open it as http://127.0.0.1 or http://localhost`);
    }
    const origin = req.headers.origin;
    if (req.method !== 'GET' && req.method !== 'HEAD' && origin !== undefined) {
      let same = false;
      try {
        same = new URL(origin).host === hostHeader;
      } catch {
        same = false;
      }
      if (!same) throw httpError(403, 'ERR_BAD_INPUT', `requests from origin ${origin} are refused: the playground takes requests from its own page only`);
    }
  });

  app.get('/api/models', async () => ({
    models: [...models.entries()].map(([name, { card, slot }]) => ({
      name,
      inputShape: card?.inputShape ?? null,
      classes: card?.classes.length ?? null,
      robust: card?.robust ?? null,
      role: card?.role ?? null,
      dataset: card?.dataset ?? null,
      embedded: resolve(slot.path, '..') === modelsDir(),
    })),
    default: models.has('fashion-robust') ? 'fashion-robust' : [...models.keys()][0] ?? null,
  }));

  app.get<{ Params: { name: string } }>('/api/models/:name', async (req) => {
    const { slot, card } = model(req.params.name);
    const clf = await slot.classifier();
    const seeds = defaultSeedsFor(card?.dataset);
    const defaults = Object.fromEntries(TASKS.map((t) => [t, defaultSettings(t, clf.inputShape)]));
    return {
      name: slot.name,
      inputShape: clf.inputShape,
      classes: clf.classes,
      device: clf.device,
      robust: card?.robust ?? null,
      role: card?.role ?? null,
      seedKinds: seeds ? [...SEED_KINDS].reverse() : ['uniform'],
      defaults,
      representation: await representationOf(clf),
      limits: { maxIterations, maxCount, maxPreviews, maxUploadBytes },
    };
  });

  app.get<{ Params: { name: string }; Querystring: { example?: string; upload?: string } }>('/api/models/:name/input.png', async (req, reply) => {
    const { slot } = model(req.params.name);
    const q = req.query;
    const source = parseSource(q.example !== undefined ? { example: Number(q.example) } : q.upload !== undefined ? { upload: q.upload } : undefined);
    const clf = await slot.classifier();
    const { image } = await sourceImage(source, clf.inputShape);
    return reply.type('image/png').header('cache-control', 'no-store').send(await encodePng(image, 0));
  });

  app.get('/api/examples', async () => {
    const ex = readExamples();
    if (!ex) return { available: false, reason: examplesError, items: [] };
    const items: Array<{ index: number; label: number; className: string; url: string }> = [];
    for (let k = 0; k < FASHION_CLASSES.length; k++) {
      let found = 0;
      for (let i = 0; i < ex.labels.length && found < EXAMPLES_PER_CLASS; i++) {
        if (ex.labels[i] !== k) continue;
        items.push({ index: i, label: k, className: FASHION_CLASSES[k]!, url: `/api/examples/${i}.png` });
        found++;
      }
    }
    return { available: true, items };
  });

  app.get<{ Params: { file: string } }>('/api/examples/:file', async (req, reply) => {
    const m = /^(\d+)\.png$/.exec(req.params.file);
    if (!m) throw httpError(404, 'ERR_BAD_INPUT', 'examples are /api/examples/INDEX.png');
    const { image } = await sourceImage({ kind: 'example', index: is.integer('example', Number(m[1]), { min: 0, max: EXAMPLE_POOL - 1 }) }, [1, 28, 28]);
    return reply.type('image/png').header('cache-control', 'max-age=3600').send(await encodePng(image, 0));
  });

  app.post('/api/uploads', async (req, reply) => {
    if (!req.isMultipart()) throw httpError(415, 'ERR_BAD_INPUT', 'upload an image as multipart/form-data (field "image")');
    const part = await req.file();
    if (!part) throw httpError(400, 'ERR_BAD_IMAGE', 'no file in the upload (field "image")');
    const tooLarge = () => httpError(413, 'ERR_BAD_IMAGE', `the upload is larger than ${(maxUploadBytes / 1024 / 1024).toFixed(1)} MB`);
    let bytes: Buffer;
    try {
      bytes = await part.toBuffer();
    } catch (e) {
      if ((e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge();
      throw e;
    }
    // The limit can cut the stream on its last chunk without toBuffer() noticing: check again.
    if (part.file.truncated || bytes.length > maxUploadBytes) throw tooLarge();
    let meta: Metadata;
    try {
      meta = await sharp(bytes, { limitInputPixels: MAX_UPLOAD_PIXELS }).metadata();
    } catch (e) {
      throw httpError(415, 'ERR_BAD_IMAGE', `not an image sharp can read (PNG, JPEG or WebP expected): ${(e as Error).message}`);
    }
    if (!meta.format || !UPLOAD_FORMATS.includes(meta.format)) {
      throw httpError(415, 'ERR_BAD_IMAGE', `${meta.format ?? 'unknown'} images are not accepted; upload a PNG, JPEG or WebP`);
    }
    if (!meta.width || !meta.height || meta.width * meta.height > MAX_UPLOAD_PIXELS) {
      throw httpError(413, 'ERR_BAD_IMAGE', `the image has ${meta.width}x${meta.height} pixels; at most ${MAX_UPLOAD_PIXELS / 1e6} megapixels are accepted`);
    }
    try {
      // Decode it all once (a small copy), so that a truncated or corrupt file is refused now.
      await sharp(bytes, { failOn: 'truncated', limitInputPixels: MAX_UPLOAD_PIXELS }).resize(32, 32, { fit: 'inside' }).raw().toBuffer();
    } catch (e) {
      throw httpError(415, 'ERR_BAD_IMAGE', `the ${meta.format} image cannot be decoded: ${(e as Error).message}`);
    }
    const up: Upload = {
      id: randomUUID(),
      name: (part.filename || 'image').replace(/\.[a-z0-9]+$/i, '').replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 40) || 'image',
      format: meta.format,
      width: meta.width,
      height: meta.height,
      bytes,
    };
    uploads.set(up.id, up);
    for (const old of uploads.keys()) {
      if (uploads.size <= MAX_UPLOADS) break;
      uploads.delete(old);
    }
    return reply.code(201).send({ id: up.id, name: up.name, format: up.format, width: up.width, height: up.height });
  });

  app.get('/api/queue', async () => ({
    models: [...models.values()].map(({ slot }) => ({
      name: slot.name,
      running: slot.running ? { id: slot.running.id, task: slot.running.spec.task } : null,
      waiting: slot.queue.length,
    })),
  }));

  app.post('/api/jobs', async (req, reply) => {
    const b: unknown = req.body;
    if (!is.isObject(b)) throw httpError(400, 'ERR_BAD_INPUT', 'send the job as a JSON object (content-type: application/json)');
    is.knownKeys('job', b, ['model', 'task', 'class', 'seed', 'randomSeed', 'count', 'source', 'mask', 'factor', 'feature', 'from', 'iterations', 'eps', 'step', 'previews']);
    const { slot, card } = model(b.model);
    const task = is.oneOf('task', b.task, TASKS);
    const loaded = slot.loaded ? await slot.loaded.catch(() => undefined) : undefined;
    const classes = loaded?.classes ?? card?.classes;
    const shape = loaded?.inputShape ?? card?.inputShape;
    let classIndex: number | undefined;
    if (b.class !== undefined && b.class !== null && b.class !== '' && b.class !== 'auto') {
      classIndex = is.integer('class', typeof b.class === 'string' && /^\d+$/.test(b.class) ? Number(b.class) : b.class, { min: 0, max: classes ? classes.length - 1 : 100_000 });
    }
    if ((task === 'generate' || task === 'translate' || task === 'sketchToImage') && classIndex === undefined) {
      throw is.invalid('class', task === 'generate' ? 'the class to generate' : task === 'translate' ? 'the class to translate to' : 'the class the sketch depicts', b.class);
    }
    const spec: JobSpec = {
      model: slot.name,
      task,
      classIndex,
      seed: is.oneOf('seed', b.seed ?? 'mvn', SEED_KINDS) as SeedKind,
      randomSeed: is.integer('randomSeed', b.randomSeed ?? 0, { min: 0, max: 2 ** 31 }),
      count: is.integer('count', b.count ?? 1, { min: 1, max: maxCount }),
      previews: is.integer('previews', b.previews ?? 8, { min: 0, max: maxPreviews }),
    };
    if (task === 'generate' && spec.seed !== 'uniform' && !defaultSeedsFor(card?.dataset)) {
      throw httpError(400, 'ERR_BAD_INPUT', `${slot.name} has no seed statistics for '${spec.seed}' seeds; use seed 'uniform'`);
    }
    if (b.iterations !== undefined && b.iterations !== null) spec.iterations = is.integer('iterations', b.iterations, { min: 1, max: maxIterations });
    if (b.eps !== undefined && b.eps !== null) spec.eps = is.finiteNumber('eps', b.eps, { min: 0, max: 1e4 });
    if (b.step !== undefined && b.step !== null) spec.step = is.finiteNumber('step', b.step, { min: 0, max: 1e4 });
    if (FEATURE_UNIT_TASKS.includes(task)) {
      const size = loaded ? await representationOf(loaded).then((r) => r?.size) : (card?.representation as { size?: unknown } | undefined)?.size;
      spec.feature = is.integer('feature', b.feature, { min: 0, max: typeof size === 'number' ? size - 1 : Number.MAX_SAFE_INTEGER });
    }
    if (task === 'visualizeFeature') spec.from = is.oneOf('from', b.from ?? 'noise', ['noise', 'image'] as const);
    let source: Source | undefined;
    if (needsSource(spec)) source = parseSource(b.source);
    if (task === 'superResolve' && b.factor !== undefined && b.factor !== null) {
      spec.factor = is.integer('factor', b.factor, { min: 1, max: shape ? Math.max(shape[1], shape[2]) : 4096 });
    }
    if ((task === 'inpaint' || task === 'paintFeature') && b.mask !== undefined && b.mask !== null) {
      const mask = Buffer.from(is.nonEmptyString('mask', b.mask), 'base64');
      if (shape && mask.length !== shape[1] * shape[2]) {
        throw is.invalid('mask', `base64 of ${shape[1] * shape[2]} bytes (one per pixel of ${shape[1]}x${shape[2]}, 1 on the hole)`, `${mask.length} bytes`);
      }
      spec.mask = new Uint8Array(mask);
    }
    const job = new Job(spec, source && (async (clf) => {
      const s = await sourceImage(source, clf.inputShape);
      if (spec.mask && spec.mask.length !== clf.inputShape[1] * clf.inputShape[2]) {
        throw is.invalid('mask', `one byte per pixel of ${clf.inputShape[1]}x${clf.inputShape[2]}`, `${spec.mask.length} bytes`);
      }
      return s;
    }));
    scheduler.submit(slot, job);
    return reply.code(202).send({
      ...job.status(),
      events: `/api/jobs/${job.id}/events`,
    });
  });

  const job = (id: string): Job => {
    const j = scheduler.jobs.get(id);
    if (!j) throw httpError(404, 'ERR_BAD_INPUT', `no job ${id} (finished jobs are kept in memory, the latest ${scheduler.options.keepJobs})`);
    return j;
  };

  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (req) => job(req.params.id).status());

  app.post<{ Params: { id: string } }>('/api/jobs/:id/cancel', async (req) => {
    const j = job(req.params.id);
    scheduler.cancel(models.get(j.spec.model)!.slot, j);
    return j.status();
  });

  app.get<{ Params: { id: string } }>('/api/jobs/:id/events', (req, reply) => {
    const j = job(req.params.id);
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    streams.add(res);
    const send = (e: JobEvent) => res.write(`event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
    let unwatch = () => {};
    const end = () => {
      unwatch();
      clearInterval(ping);
      streams.delete(res);
      res.end();
    };
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    res.write('retry: 2000\n\n');
    send({ type: 'status', data: j.status() });
    if (j.lastProgress) send({ type: 'progress', data: j.lastProgress });
    if (j.lastPreview) send({ type: 'preview', data: j.lastPreview });
    if (j.finished) return end();
    unwatch = j.watch((e) => {
      send(e);
      if (e.type === 'status' && j.finished) end();
    });
    req.raw.on('close', end);
  });

  const file = (j: Job, name: string) => {
    const f = j.output?.files.find((x) => x.name === name);
    if (!f) throw httpError(404, 'ERR_BAD_INPUT', j.output ? `job ${j.id} has no file ${name}` : `job ${j.id} has no results (${j.state})`);
    return f;
  };

  app.get<{ Params: { id: string; name: string } }>('/api/jobs/:id/files/:name', async (req, reply) => {
    const f = file(job(req.params.id), req.params.name);
    return reply.type(f.type).header('content-disposition', `inline; filename="${f.name}"`).send(f.data);
  });

  app.get<{ Params: { id: string } }>('/api/jobs/:id/results.zip', async (req, reply) => {
    const j = job(req.params.id);
    if (!j.output) throw httpError(404, 'ERR_BAD_INPUT', `job ${j.id} has no results (${j.state})`);
    const name = `robust-synth-${j.spec.task}-${j.id.slice(0, 8)}`;
    const zip = zipStore(j.output.files.map((f) => ({ name: `${name}/${f.name}`, data: f.data })));
    return reply.type('application/zip').header('content-disposition', `attachment; filename="${name}.zip"`).send(zip);
  });

  app.get<{ Params: { id: string } }>('/jobs/:id', async (req, reply) => reply.type('text/html; charset=utf-8').send(resultPage(job(req.params.id))));

  app.addHook('preClose', async () => {
    await scheduler.close([...models.values()].map((m) => m.slot));
    for (const res of streams) res.end();
    streams.clear();
  });

  await app.listen({ port, host });
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const urlHost = isIP(host) === 6 ? `[${host}]` : host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${actualPort}`,
    host,
    port: actualPort,
    app,
    close() {
      closed ??= (async () => {
        await app.close();
        for (const { slot } of models.values()) {
          const clf = await slot.loaded?.catch(() => undefined);
          await clf?.dispose();
        }
      })();
      return closed;
    },
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A job's results as a plain page: each PNG with its link, manifest.json, the zip. */
function resultPage(j: Job): string {
  const st = j.status();
  const rows = (st.result?.files ?? [])
    .filter((f) => f.type === 'image/png')
    .map((f) => {
      const entry = st.result!.entries.find((e) => e.file === f.name);
      const caption = entry ? ` — target ${escapeHtml(entry.target.name)}, predicted ${escapeHtml(entry.predicted.name)}, loss ${entry.loss.toFixed(3)}` : '';
      return `<li><img src="${escapeHtml(f.url)}" alt="${escapeHtml(f.name)}"> <a href="${escapeHtml(f.url)}" download="${escapeHtml(f.name)}">${escapeHtml(f.name)}</a>${caption}</li>`;
    })
    .join('\n');
  const body = st.result
    ? `<ul class="files">\n${rows}\n</ul>\n<p><a href="${escapeHtml(st.result.manifest)}" download="manifest.json">manifest.json</a> · <a href="${escapeHtml(st.result.zip)}">all files (.zip)</a></p>`
    : `<p>This job is ${escapeHtml(st.state)}${st.error ? `: ${escapeHtml(st.error.message)} [${escapeHtml(st.error.code)}]` : ''}.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>robust-synth: ${escapeHtml(st.task)} results</title><link rel="stylesheet" href="/style.css"></head>
<body class="results-page"><h1>${escapeHtml(st.task)} on ${escapeHtml(st.model)}</h1>
<p><a href="/">back to the playground</a></p>
${body}
</body></html>
`;
}

