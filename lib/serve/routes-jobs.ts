/**
 * The playground's job routes: uploads, the queue, submitting, watching (server-sent events),
 * cancelling and downloading. Every job and upload belongs to the client that made it
 * (guards.ts); another client's id answers 404, as a missing one does.
 */
import type { FastifyInstance } from 'fastify';
import { SEED_KINDS, type SeedKind } from '../seeds.js';
import { defaultSeedsFor } from '../tasks/generate.js';
import * as is from '../validate.js';
import { representationOf, type Context, type ResolvedSource } from './context.js';
import { httpError } from './http-errors.js';
import { Job, type JobEvent } from './jobs.js';
import { resultPage } from './result-page.js';
import { FEATURE_UNIT_TASKS, needsSource, PLAYGROUND_TASKS as TASKS, type JobSpec } from './run.js';
import { readUpload } from './uploads.js';
import { zipStore } from './zip.js';

const JOB_KEYS = ['model', 'task', 'class', 'seed', 'randomSeed', 'count', 'source', 'mask', 'factor', 'feature', 'from', 'iterations', 'eps', 'step', 'previews'];

export function jobRoutes(app: FastifyInstance, ctx: Context): void {
  const { models, scheduler, limits } = ctx;

  app.post('/api/uploads', async (req, reply) => {
    const up = await readUpload(req, req.client, limits.maxUploadBytes);
    ctx.uploads.add(up);
    return reply.code(201).send({ id: up.id, name: up.name, format: up.format, width: up.width, height: up.height });
  });

  // Every model's load (counts only), and the caller's own jobs on it: never another client's ids.
  app.get('/api/queue', async (req) => ({
    models: [...models.values()].map(({ slot }) => {
      const mine = [slot.running, ...slot.queue].filter((j): j is Job => j !== undefined && j.owner === req.client);
      return {
        name: slot.name,
        running: slot.running ? { task: slot.running.spec.task, mine: slot.running.owner === req.client } : null,
        waiting: slot.queue.length,
        mine: mine.map((j) => ({ id: j.id, task: j.spec.task, state: j.state, position: j.position })),
      };
    }),
  }));

  app.post('/api/jobs', async (req, reply) => {
    const b: unknown = req.body;
    if (!is.isObject(b)) throw httpError(400, 'ERR_BAD_INPUT', 'send the job as a JSON object (content-type: application/json)');
    is.knownKeys('job', b, JOB_KEYS);
    const { slot, card } = ctx.model(b.model);
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
      count: is.integer('count', b.count ?? 1, { min: 1, max: limits.maxCount }),
      previews: is.integer('previews', b.previews ?? 8, { min: 0, max: limits.maxPreviews }),
    };
    if (task === 'generate' && spec.seed !== 'uniform' && !defaultSeedsFor(card?.dataset)) {
      throw httpError(400, 'ERR_BAD_INPUT', `${slot.name} has no seed statistics for '${spec.seed}' seeds; use seed 'uniform'`);
    }
    if (b.iterations !== undefined && b.iterations !== null) spec.iterations = is.integer('iterations', b.iterations, { min: 1, max: limits.maxIterations });
    if (b.eps !== undefined && b.eps !== null) spec.eps = is.finiteNumber('eps', b.eps, { min: 0, max: 1e4 });
    if (b.step !== undefined && b.step !== null) spec.step = is.finiteNumber('step', b.step, { min: 0, max: 1e4 });
    if (FEATURE_UNIT_TASKS.includes(task)) {
      const size = loaded ? await representationOf(loaded).then((r) => r?.size) : (card?.representation as { size?: unknown } | undefined)?.size;
      spec.feature = is.integer('feature', b.feature, { min: 0, max: typeof size === 'number' ? size - 1 : Number.MAX_SAFE_INTEGER });
    }
    if (task === 'visualizeFeature') spec.from = is.oneOf('from', b.from ?? 'noise', ['noise', 'image'] as const);
    // The source as it is now: an upload's bytes travel with the job (newer uploads cannot evict them).
    let source: ResolvedSource | undefined;
    if (needsSource(spec)) source = ctx.parseSource(b.source, req.client);
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
    const job = new Job(spec, req.client, source && (async (clf) => {
      const s = await ctx.sourceImage(source, clf.inputShape);
      if (spec.mask && spec.mask.length !== clf.inputShape[1] * clf.inputShape[2]) {
        throw is.invalid('mask', `one byte per pixel of ${clf.inputShape[1]}x${clf.inputShape[2]}`, `${spec.mask.length} bytes`);
      }
      return s;
    }));
    scheduler.submit(slot, job);
    return reply.code(202).send({ ...job.status(), events: `/api/jobs/${job.id}/events` });
  });

  /** The caller's job by id; another client's job is as good as missing. */
  const job = (id: string, client: string): Job => {
    const j = scheduler.jobs.get(id);
    if (!j || j.owner !== client) throw httpError(404, 'ERR_BAD_INPUT', `no job ${id.slice(0, 64)} (finished jobs are kept in memory, the latest ${scheduler.options.keepJobs})`);
    return j;
  };

  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (req) => job(req.params.id, req.client).status());

  app.post<{ Params: { id: string } }>('/api/jobs/:id/cancel', async (req) => {
    const j = job(req.params.id, req.client);
    scheduler.cancel(models.get(j.spec.model)!.slot, j);
    return j.status();
  });

  app.get<{ Params: { id: string } }>('/api/jobs/:id/events', (req, reply) => {
    const j = job(req.params.id, req.client);
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    ctx.streams.add(res);
    const send = (e: JobEvent) => res.write(`event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
    let unwatch = () => {};
    const end = () => {
      unwatch();
      clearInterval(ping);
      ctx.streams.delete(res);
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
    if (!f) throw httpError(404, 'ERR_BAD_INPUT', j.output ? `job ${j.id} has no file ${name.slice(0, 100)}` : `job ${j.id} has no results (${j.state})`);
    return f;
  };

  app.get<{ Params: { id: string; name: string } }>('/api/jobs/:id/files/:name', async (req, reply) => {
    const f = file(job(req.params.id, req.client), req.params.name);
    return reply.type(f.type).header('content-disposition', `inline; filename="${f.name}"`).send(f.data);
  });

  app.get<{ Params: { id: string } }>('/api/jobs/:id/results.zip', async (req, reply) => {
    const j = job(req.params.id, req.client);
    if (!j.output) throw httpError(404, 'ERR_BAD_INPUT', `job ${j.id} has no results (${j.state})`);
    const name = `robust-synth-${j.spec.task}-${j.id.slice(0, 8)}`;
    const zip = zipStore(j.output.files.map((f) => ({ name: `${name}/${f.name}`, data: f.data })));
    return reply.type('application/zip').header('content-disposition', `attachment; filename="${name}.zip"`).send(zip);
  });

  app.get<{ Params: { id: string } }>('/jobs/:id', async (req, reply) => reply.type('text/html; charset=utf-8').send(resultPage(job(req.params.id, req.client))));
}
